//! `qemu-img`, the reference implementation of the disk containers: convert raw to
//! qcow2/vmdk/vhd/vhdx and back, and inspect untrusted images before reading them. Every call
//! names the format with `-f`/`-O`: probing lets a raw image that looks like qcow2 point qemu at
//! a host file (the classic backing-file attack).

use std::path::Path;

use crate::error::{Error, Result};
use crate::format::DiskFormat;
use crate::tool;

/// How to write the output container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConvertOptions {
    /// qcow2: compress clusters with zstd.
    pub compress: bool,
    /// vmdk: `monolithicSparse` (default) or `streamOptimized`.
    pub vmdk_subformat: Option<String>,
}

/// Converts the raw disk `src` into `dst` of `format` (sparse: zero runs are not written).
pub fn convert_raw(
    src: &Path,
    dst: &Path,
    format: DiskFormat,
    opts: &ConvertOptions,
) -> Result<()> {
    if format == DiskFormat::Qcow2 && opts.compress {
        // zstd where this qemu-img was built with it, else qcow2's original zlib.
        return match convert_qcow2_compressed(src, dst, Some("zstd")) {
            Err(e) if e.to_string().contains("compression") => {
                tracing::warn!("qemu-img cannot write zstd-compressed qcow2 ({e}); using zlib");
                let _ = std::fs::remove_file(dst);
                convert_qcow2_compressed(src, dst, None)
            }
            r => r,
        };
    }
    let mut cmd = tool::command(&tool::QEMU_IMG)?;
    cmd.args(["convert", "-q", "-f", "raw", "-O", format.qemu_name()]);
    match format {
        DiskFormat::Vmdk => {
            if let Some(sub) = &opts.vmdk_subformat {
                cmd.arg("-o").arg(format!("subformat={sub}"));
            }
        }
        // Azure wants a fixed VHD whose size is exactly the raw size (a whole MiB):
        // force_size stops qemu from rounding to CHS geometry.
        DiskFormat::Vhd => {
            cmd.args(["-o", "subformat=fixed,force_size=on"]);
        }
        _ => {}
    }
    cmd.arg(src).arg(dst);
    tool::run(cmd)?;
    Ok(())
}

/// `qemu-img convert -c` to qcow2 with `compression_type` (default: zlib).
fn convert_qcow2_compressed(src: &Path, dst: &Path, compression: Option<&str>) -> Result<()> {
    let mut cmd = tool::command(&tool::QEMU_IMG)?;
    cmd.args(["convert", "-q", "-c", "-f", "raw", "-O", "qcow2"]);
    if let Some(c) = compression {
        cmd.arg("-o").arg(format!("compression_type={c}"));
    }
    cmd.arg(src).arg(dst);
    tool::run(cmd)?;
    Ok(())
}

/// Converts an (inspected) image to a raw sparse file.
pub fn convert_to_raw(src: &Path, format: DiskFormat, dst: &Path) -> Result<()> {
    let mut cmd = tool::command(&tool::QEMU_IMG)?;
    cmd.args(["convert", "-q", "-f", format.qemu_name(), "-O", "raw"])
        .arg(src)
        .arg(dst);
    tool::run(cmd)?;
    Ok(())
}

/// What `qemu-img info` says about an image, reduced to what joot checks.
#[derive(Debug, Clone)]
pub struct Info {
    pub format: String,
    pub virtual_size: u64,
    pub json: serde_json::Value,
}

/// `qemu-img info --output=json -f FORMAT`.
pub fn info(path: &Path, format: DiskFormat) -> Result<Info> {
    let mut cmd = tool::command(&tool::QEMU_IMG)?;
    cmd.args(["info", "--output=json", "-f", format.qemu_name()])
        .arg(path);
    let out = tool::run(cmd).map_err(|e| Error::Refused {
        path: path.to_path_buf(),
        reason: format!("not a readable {} image: {e}", format.name()),
    })?;
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| Error::Refused {
            path: path.to_path_buf(),
            reason: format!("qemu-img info gave unreadable output: {e}"),
        })?;
    Ok(Info {
        format: json["format"].as_str().unwrap_or("").to_string(),
        virtual_size: json["virtual-size"].as_u64().unwrap_or(0),
        json,
    })
}

/// Inspects an untrusted image and refuses anything that would make qemu read other files: a
/// backing file, an external data file, vmdk extents outside the image, a format other than
/// the one probed. Returns the virtual size.
pub fn inspect_untrusted(path: &Path, format: DiskFormat) -> Result<u64> {
    let refuse = |reason: String| Error::Refused {
        path: path.to_path_buf(),
        reason,
    };
    if format == DiskFormat::Vmdk {
        // A text descriptor (as opposed to a sparse vmdk with an embedded one) exists only to
        // point at extent files: refuse before qemu opens anything it names.
        let mut head = [0u8; 64];
        let n = read_prefix(path, &mut head)?;
        if head[..n].starts_with(b"# Disk DescriptorFile") {
            return Err(refuse(
                "a vmdk descriptor file refers to other files (flat or split extents); only single-file vmdk images are imported".into(),
            ));
        }
    }
    let info = info(path, format)?;
    if info.format != format.qemu_name() {
        return Err(refuse(format!(
            "qemu-img reports format {:?}, expected {}",
            info.format,
            format.qemu_name()
        )));
    }
    for key in [
        "backing-filename",
        "full-backing-filename",
        "backing-filename-format",
    ] {
        if let Some(v) = info.json.get(key) {
            return Err(refuse(format!(
                "it names a backing file ({key} = {v}); joot imports only self-contained images"
            )));
        }
    }
    let specific = &info.json["format-specific"]["data"];
    if let Some(df) = specific.get("data-file") {
        return Err(refuse(format!(
            "it names an external data file ({df}); joot imports only self-contained images"
        )));
    }
    if let Some(extents) = specific.get("extents").and_then(|e| e.as_array()) {
        let me = std::fs::canonicalize(path)?;
        for ext in extents {
            let file = ext["filename"].as_str().unwrap_or("");
            let same = std::fs::canonicalize(file)
                .map(|p| p == me)
                .unwrap_or(false);
            if !same {
                return Err(refuse(format!(
                    "a vmdk extent points at another file ({file:?})"
                )));
            }
        }
    }
    if info.virtual_size == 0 {
        return Err(refuse("its virtual size is 0".into()));
    }
    Ok(info.virtual_size)
}

fn read_prefix(path: &Path, buf: &mut [u8]) -> Result<usize> {
    use std::io::Read;
    let mut f = fs_err::File::open(path)?;
    let mut n = 0;
    while n < buf.len() {
        let r = f.read(&mut buf[n..])?;
        if r == 0 {
            break;
        }
        n += r;
    }
    Ok(n)
}

/// `qemu-img check -f FORMAT`: true when the image is consistent.
pub fn check(path: &Path, format: DiskFormat) -> Result<()> {
    let mut cmd = tool::command(&tool::QEMU_IMG)?;
    cmd.args(["check", "-q", "-f", format.qemu_name()])
        .arg(path);
    tool::run(cmd)?;
    Ok(())
}
