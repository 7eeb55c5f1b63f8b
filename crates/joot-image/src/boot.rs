//! `joot boot`: qemu-system-x86_64 with the serial console on the terminal. `-snapshot` unless
//! `--persist`, so booting never alters the image. With `--expect TEXT` the console is watched
//! (and still shown): the first appearance of TEXT ends qemu and the boot succeeds; a timeout or
//! an early qemu exit fails. qemu is always killed and reaped (a guard does it on every path).
//!
//! Acceleration: `auto` uses KVM only when it can boot a stock kernel. On a `kvm_pvm` host
//! (/dev/kvm exists but is the PVM flavour) Debian kernels and OVMF do not boot, so auto falls
//! back to TCG and says so.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::export::Reporter;
use crate::format::DiskFormat;
use crate::tool;

/// Accelerator choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// KVM when it works here, else TCG.
    Auto,
    Kvm,
    Tcg,
}

/// Validated options of one boot.
#[derive(Debug, Clone)]
pub struct BootOptions {
    pub disk: PathBuf,
    pub format: DiskFormat,
    /// qemu `-m` value (`1G`, `512M`).
    pub memory: String,
    pub cpus: u32,
    pub accel: Accel,
    pub uefi: bool,
    pub expect: Option<String>,
    pub timeout: Duration,
    pub persist: bool,
    /// Direct kernel boot.
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub append: Option<String>,
}

/// OVMF firmware (Debian's `ovmf` package).
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// The user's boot request as strings.
#[derive(Debug, Clone, Default)]
pub struct BootRequest {
    pub disk: PathBuf,
    pub format: Option<String>,
    pub memory: String,
    pub cpus: u32,
    pub accel: Option<Accel>,
    pub uefi: bool,
    pub expect: Option<String>,
    pub timeout_secs: u64,
    pub persist: bool,
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub append: Option<String>,
}

impl BootOptions {
    /// Checks the request: the disk exists, its format is known (from `--format`, the
    /// extension, or its content), the memory size is well formed.
    pub fn new(req: &BootRequest) -> Result<BootOptions> {
        if !req.disk.is_file() {
            return Err(Error::invalid(format!(
                "{} does not exist or is not a file",
                req.disk.display()
            )));
        }
        let format = match &req.format {
            Some(f) => {
                let f = if f == "vhd" { "vpc" } else { f.as_str() };
                DiskFormat::from_qemu_name(f).ok_or_else(|| {
                    Error::invalid(format!("--format {f}: use raw, qcow2, vmdk, vhd or vhdx"))
                })?
            }
            None => format_of(&req.disk)?,
        };
        let mem = req.memory.trim();
        let digits = mem.trim_end_matches(['M', 'G', 'm', 'g']);
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(Error::invalid(format!(
                "--memory {mem:?}: use a size such as 512M or 2G"
            )));
        }
        if req.cpus == 0 {
            return Err(Error::invalid("--cpus must be at least 1"));
        }
        if req.initrd.is_some() && req.kernel.is_none() {
            return Err(Error::invalid("--initrd needs --kernel"));
        }
        if req.append.is_some() && req.kernel.is_none() {
            return Err(Error::invalid("--append needs --kernel"));
        }
        for f in [&req.kernel, &req.initrd].into_iter().flatten() {
            if !f.is_file() {
                return Err(Error::invalid(format!("{} does not exist", f.display())));
            }
        }
        if req.uefi && !Path::new(OVMF_CODE).is_file() {
            return Err(Error::ToolMissing {
                tool: OVMF_CODE.into(),
                package: "ovmf".into(),
                reason: "to boot with UEFI".into(),
            });
        }
        Ok(BootOptions {
            disk: req.disk.clone(),
            format,
            memory: mem.to_string(),
            cpus: req.cpus,
            accel: req.accel.unwrap_or(Accel::Auto),
            uefi: req.uefi,
            expect: req.expect.clone().filter(|e| !e.is_empty()),
            timeout: Duration::from_secs(req.timeout_secs.max(1)),
            persist: req.persist,
            kernel: req.kernel.clone(),
            initrd: req.initrd.clone(),
            append: req.append.clone(),
        })
    }
}

/// The disk format from the extension, else from the content.
fn format_of(path: &Path) -> Result<DiskFormat> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    for (ext, f) in [
        (".qcow2", DiskFormat::Qcow2),
        (".vmdk", DiskFormat::Vmdk),
        (".vhdx", DiskFormat::Vhdx),
        (".vhd", DiskFormat::Vhd),
        (".raw", DiskFormat::Raw),
        (".img", DiskFormat::Raw),
    ] {
        if name.ends_with(ext) {
            return Ok(f);
        }
    }
    crate::import::detect(path).ok_or_else(|| {
        Error::invalid(format!(
            "cannot tell the format of {}: pass --format",
            path.display()
        ))
    })
}

/// What `auto` resolves to here, with a note for the user when it falls back.
pub fn resolve_accel(accel: Accel) -> (Accel, Option<String>) {
    if accel != Accel::Auto {
        return (accel, None);
    }
    let pvm = Path::new("/sys/module/kvm_pvm").exists();
    let usable = !pvm
        && std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok();
    choose_accel(accel, pvm, usable)
}

/// The decision of [`resolve_accel`] from what the host has: `kvm_pvm` loaded (a /dev/kvm
/// that cannot boot stock kernels or OVMF), and whether /dev/kvm opens read-write.
pub fn choose_accel(accel: Accel, kvm_pvm: bool, dev_kvm_usable: bool) -> (Accel, Option<String>) {
    match accel {
        Accel::Kvm | Accel::Tcg => (accel, None),
        Accel::Auto if kvm_pvm => (
            Accel::Tcg,
            Some(
                "note: /dev/kvm here is kvm_pvm, which cannot boot stock kernels or OVMF: using TCG (slower)"
                    .into(),
            ),
        ),
        Accel::Auto if dev_kvm_usable => (Accel::Kvm, None),
        Accel::Auto => (
            Accel::Tcg,
            Some("note: /dev/kvm is not usable: using TCG (slower)".into()),
        ),
    }
}

/// The qemu command line (without the program) for these options; `vars` is the writable
/// copy of the OVMF variable store for a UEFI boot.
pub fn qemu_args(opts: &BootOptions, accel: Accel, vars: Option<&Path>) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |s: &str| a.push(s.to_string());
    match accel {
        Accel::Kvm => {
            push("-accel");
            push("kvm");
            push("-cpu");
            push("host");
        }
        _ => {
            push("-accel");
            push("tcg");
        }
    }
    if opts.uefi {
        push("-machine");
        push("q35");
        push("-drive");
        push(&format!(
            "if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"
        ));
        if let Some(v) = vars {
            push("-drive");
            push(&format!("if=pflash,format=raw,unit=1,file={}", v.display()));
        }
    }
    push("-m");
    push(&opts.memory);
    push("-smp");
    push(&opts.cpus.to_string());
    push("-drive");
    push(&format!(
        "file={},format={},if=virtio",
        opts.disk.display().to_string().replace(',', ",,"),
        opts.format.qemu_name()
    ));
    if !opts.persist {
        push("-snapshot");
    }
    if let Some(k) = &opts.kernel {
        push("-kernel");
        push(&k.display().to_string());
        if let Some(i) = &opts.initrd {
            push("-initrd");
            push(&i.display().to_string());
        }
        push("-append");
        push(
            opts.append
                .as_deref()
                .unwrap_or("root=/dev/vda ro console=ttyS0"),
        );
    }
    push("-nic");
    push("none");
    push("-no-reboot");
    if opts.expect.is_some() {
        push("-display");
        push("none");
        push("-serial");
        push("stdio");
        push("-monitor");
        push("none");
    } else {
        push("-nographic");
    }
    a
}

/// Kills and reaps qemu whatever path leaves `boot`.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Boots the disk. Without `expect`, qemu owns the terminal (Ctrl-A X quits) and its exit
/// status is returned. With `expect`, the console is copied to `console` and watched: 0 once
/// the text appears, [`Error::Timeout`] after the timeout, an error if qemu exits first.
pub fn boot(opts: &BootOptions, rep: &dyn Reporter, console: &mut dyn Write) -> Result<i32> {
    let qemu = tool::QEMU_SYSTEM.check()?;
    if opts.format != DiskFormat::Raw {
        crate::qemu_img::inspect_untrusted(&opts.disk, opts.format)?;
    }
    let (accel, note) = resolve_accel(opts.accel);
    if let Some(n) = note {
        rep.note(&n);
    }
    let scratch = tempfile::Builder::new().prefix("joot-boot-").tempdir()?;
    let vars = if opts.uefi {
        let v = scratch.path().join("OVMF_VARS.fd");
        fs_err::copy(OVMF_VARS, &v)?;
        Some(v)
    } else {
        None
    };
    // qemu must not outlive joot even if joot is killed: util-linux setpriv sets the parent
    // death signal and execs qemu (the setting survives exec), where available.
    let mut cmd = match tool::which("setpriv") {
        Some(setpriv) => {
            let mut c = Command::new(setpriv);
            c.args(["--pdeathsig", "KILL", "--"]).arg(&qemu);
            c
        }
        None => Command::new(&qemu),
    };
    cmd.args(qemu_args(opts, accel, vars.as_deref()));
    let argv = tool::argv_string(&cmd);
    tracing::debug!(%argv, "booting");
    let Some(expect) = &opts.expect else {
        rep.step("booting (Ctrl-A X quits)");
        let status = cmd.status().map_err(|e| Error::ToolFailed {
            argv: argv.clone(),
            status: "could not start".into(),
            stderr: e.to_string(),
        })?;
        return Ok(status.code().unwrap_or(128 + 9));
    };
    rep.step(&format!(
        "booting, waiting up to {} s for {expect:?}",
        opts.timeout.as_secs()
    ));
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::ToolFailed {
            argv: argv.clone(),
            status: "could not start".into(),
            stderr: e.to_string(),
        })?;
    let mut reaper = Reaper(child);
    let mut stdout = reaper.0.stdout.take().expect("piped stdout");
    let mut stderr = reaper.0.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + opts.timeout;
    let mut watcher = Watcher::new(expect.as_bytes());
    let outcome = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Outcome::Timeout;
        }
        match rx.recv_timeout(left) {
            Ok(chunk) => {
                let _ = console.write_all(&chunk);
                let _ = console.flush();
                if watcher.feed(&chunk) {
                    break Outcome::Seen;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => break Outcome::Timeout,
            Err(mpsc::RecvTimeoutError::Disconnected) => break Outcome::Exited,
        }
    };
    // Stop qemu before joining the readers (their pipes close when it dies).
    if matches!(reaper.0.try_wait(), Ok(None)) {
        let _ = reaper.0.kill();
    }
    let status = reaper.0.wait()?;
    let _ = reader.join();
    let stderr = err_reader.join().unwrap_or_default();
    match outcome {
        Outcome::Seen => Ok(0),
        Outcome::Timeout => Err(Error::Timeout {
            expect: expect.clone(),
            seconds: opts.timeout.as_secs(),
        }),
        Outcome::Exited => Err(Error::ToolFailed {
            argv,
            status: format!(
                "{} before {expect:?} appeared",
                tool::status_string(&status)
            ),
            stderr: tool::tail(&stderr),
        }),
    }
}

enum Outcome {
    Seen,
    Timeout,
    Exited,
}

/// Finds a byte string in a stream fed in chunks (matches spanning chunks count).
struct Watcher {
    needle: Vec<u8>,
    tail: Vec<u8>,
}

impl Watcher {
    fn new(needle: &[u8]) -> Watcher {
        Watcher {
            needle: needle.to_vec(),
            tail: Vec::new(),
        }
    }

    fn feed(&mut self, chunk: &[u8]) -> bool {
        self.tail.extend_from_slice(chunk);
        if self
            .tail
            .windows(self.needle.len())
            .any(|w| w == self.needle.as_slice())
        {
            return true;
        }
        let keep = self.needle.len().saturating_sub(1);
        if self.tail.len() > keep {
            self.tail.drain(..self.tail.len() - keep);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_accel_avoids_kvm_pvm_and_unusable_kvm() {
        let (a, note) = choose_accel(Accel::Auto, true, true);
        assert_eq!(a, Accel::Tcg);
        assert!(note.unwrap().contains("kvm_pvm"));
        let (a, note) = choose_accel(Accel::Auto, false, false);
        assert_eq!(a, Accel::Tcg);
        assert!(note.unwrap().contains("not usable"));
        assert_eq!(choose_accel(Accel::Auto, false, true), (Accel::Kvm, None));
        // An explicit choice is the user's, whatever the host has.
        assert_eq!(choose_accel(Accel::Kvm, true, false), (Accel::Kvm, None));
        assert_eq!(choose_accel(Accel::Tcg, false, true), (Accel::Tcg, None));
    }

    #[test]
    fn watcher_finds_text_across_chunks() {
        let mut w = Watcher::new(b"login:");
        assert!(!w.feed(b"Debian GNU/Linux 12 host ttyS0\r\n\r\nhost lo"));
        assert!(w.feed(b"gin: "));
        let mut w = Watcher::new(b"x");
        assert!(w.feed(b"abcx"));
    }

    fn opts() -> BootOptions {
        BootOptions {
            disk: PathBuf::from("/tmp/d,isk.qcow2"),
            format: DiskFormat::Qcow2,
            memory: "1G".into(),
            cpus: 2,
            accel: Accel::Tcg,
            uefi: false,
            expect: Some("login:".into()),
            timeout: Duration::from_secs(5),
            persist: false,
            kernel: None,
            initrd: None,
            append: None,
        }
    }

    #[test]
    fn qemu_args_snapshot_by_default_and_format_always_named() {
        let a = qemu_args(&opts(), Accel::Tcg, None).join(" ");
        assert!(a.contains("-snapshot"), "{a}");
        assert!(
            a.contains("file=/tmp/d,,isk.qcow2,format=qcow2,if=virtio"),
            "{a}"
        );
        assert!(a.contains("-accel tcg"), "{a}");
        assert!(a.contains("-serial stdio"), "{a}");
        let mut o = opts();
        o.persist = true;
        o.uefi = true;
        o.expect = None;
        let a = qemu_args(&o, Accel::Kvm, Some(Path::new("/v.fd"))).join(" ");
        assert!(!a.contains("-snapshot"), "{a}");
        assert!(
            a.contains("readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd"),
            "{a}"
        );
        assert!(a.contains("unit=1,file=/v.fd"), "{a}");
        assert!(a.contains("-nographic"), "{a}");
        assert!(a.contains("-cpu host"), "{a}");
    }

    #[test]
    fn requests_are_validated_before_anything_runs() {
        let t = tempfile::tempdir().unwrap();
        let disk = t.path().join("d.qcow2");
        std::fs::write(&disk, b"QFI\xfb").unwrap();
        let req = |f: &dyn Fn(&mut BootRequest)| {
            let mut r = BootRequest {
                disk: disk.clone(),
                memory: "1G".into(),
                cpus: 2,
                timeout_secs: 10,
                ..Default::default()
            };
            f(&mut r);
            BootOptions::new(&r)
        };
        let ok = req(&|_| {}).unwrap();
        assert_eq!(ok.format, DiskFormat::Qcow2);
        assert!(!ok.persist);
        let err = |f: &dyn Fn(&mut BootRequest)| req(f).unwrap_err().to_string();
        assert!(err(&|r| r.memory = "lots".into()).contains("--memory"));
        assert!(err(&|r| r.cpus = 0).contains("--cpus"));
        assert!(err(&|r| r.initrd = Some("/x".into())).contains("--kernel"));
        assert!(err(&|r| r.format = Some("iso".into())).contains("--format"));
        assert!(err(&|r| r.disk = t.path().join("missing.raw")).contains("does not exist"));
    }

    #[test]
    fn explicit_accel_is_kept() {
        assert_eq!(resolve_accel(Accel::Tcg), (Accel::Tcg, None));
    }
}
