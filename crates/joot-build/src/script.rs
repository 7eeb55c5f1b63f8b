//! The shell scripts that built-in modules run inside the env. Generated as text by pure code
//! (unit-tested here) and run with `/bin/sh -e -c`: the image's own tools (apt-get, dnf,
//! useradd, systemctl, puppet) do the work, so their distro conventions apply. Every value from
//! the recipe is single-quoted; nothing from it is ever interpreted by the shell.

use joot_recipe::module::{FileEntry, Packages, Puppet, Services, User};

/// Where the build's helper directory (sources, the step's log) appears inside the env: under
/// the run's private tmpfs `/tmp`, so nothing of it reaches the layer.
pub const HELPER_DIR: &str = "/tmp/.joot-build";

/// `s` as one single-quoted shell word.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn words(items: &[String]) -> String {
    items.iter().map(|s| quote(s)).collect::<Vec<_>>().join(" ")
}

/// Package manager selection: from the image's distro metadata when known, else by looking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageManager {
    Apt,
    Dnf,
    Detect,
}

impl PackageManager {
    /// From the store's `Distro::package_manager` ("apt", "dnf", ...).
    pub fn from_distro(pm: Option<&str>) -> PackageManager {
        match pm {
            Some("apt") | Some("apt-get") => PackageManager::Apt,
            Some("dnf") | Some("yum") => PackageManager::Dnf,
            _ => PackageManager::Detect,
        }
    }
}

fn apt(names: &str) -> String {
    // policy-rc.d keeps maintainer scripts from starting services (invoke-rc.d(8)); bootstrap
    // puts one into Debian images, images from elsewhere get one for the duration of the step.
    format!(
        r#"export DEBIAN_FRONTEND=noninteractive
guard=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  mkdir -p /usr/sbin
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  guard=1
fi
apt-get update -q
apt-get install -y -q --no-install-recommends -- {names}
apt-get clean
rm -rf /var/lib/apt/lists/*
if [ -n "$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi
"#
    )
}

fn dnf(names: &str) -> String {
    format!(
        "dnf install -y --setopt=install_weak_deps=False -- {names}\ndnf clean all\nrm -rf /var/cache/dnf\n"
    )
}

/// `packages`.
pub fn packages(p: &Packages, pm: PackageManager) -> String {
    let names = words(&p.names);
    let mut s = String::from("set -e\n");
    let need = |tool: &str| {
        format!(
            "if ! command -v {tool} >/dev/null 2>&1; then\n  echo 'joot: {tool} not found in the image (its distro metadata names it as the package manager)' >&2\n  exit 127\nfi\n"
        )
    };
    match pm {
        PackageManager::Apt => {
            s.push_str(&need("apt-get"));
            s.push_str(&apt(&names));
        }
        PackageManager::Dnf => {
            s.push_str(&need("dnf"));
            s.push_str(&dnf(&names));
        }
        PackageManager::Detect => {
            s.push_str("if command -v apt-get >/dev/null 2>&1; then\n");
            s.push_str(&apt(&names));
            s.push_str("elif command -v dnf >/dev/null 2>&1; then\n");
            s.push_str(&dnf(&names));
            s.push_str("else\n  echo 'joot: no package manager (apt-get or dnf) in this image' >&2\n  exit 127\nfi\n");
        }
    }
    s
}

/// Appends `user` to the member list of `group` in /etc/group (minimal images without
/// shadow's tools or busybox's adduser).
const ADD_MEMBER: &str = r#"joot_add_member() {
  grep -q "^$1:" /etc/group || { echo "joot: group $1 does not exist in the image" >&2; exit 1; }
  awk -F: -v OFS=: -v g="$1" -v u="$2" '$1 == g { n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) { print; next }; $4 = ($4 == "" ? u : $4 "," u) } { print }' /etc/group > /etc/group.joot-new
  cat /etc/group.joot-new > /etc/group
  rm -f /etc/group.joot-new
}
joot_set_password() {
  if command -v chpasswd >/dev/null 2>&1; then
    printf '%s:%s\n' "$1" "$2" | chpasswd -e
  else
    f=/etc/passwd; [ -f /etc/shadow ] && f=/etc/shadow
    awk -F: -v OFS=: -v u="$1" -v p="$2" '$1 == u { $2 = p } { print }' "$f" > "$f.joot-new"
    cat "$f.joot-new" > "$f"
    rm -f "$f.joot-new"
  fi
}
"#;

/// `users`: shadow's useradd/usermod when present, else busybox adduser/addgroup, else direct
/// edits of /etc/passwd, /etc/group and /etc/shadow (minimal images).
pub fn users(users: &[User]) -> String {
    let mut s = String::from("set -e\n");
    s.push_str(ADD_MEMBER);
    for u in users {
        let name = quote(&u.name);
        let home = quote(
            &u.home
                .clone()
                .unwrap_or_else(|| format!("/home/{}", u.name)),
        );
        let shell = quote(u.shell.as_deref().unwrap_or("/bin/sh"));
        let mut add = String::from("useradd -m");
        let mut bb = String::from("adduser -D");
        let mut modify = String::new();
        if let Some(uid) = u.uid {
            add.push_str(&format!(" -u {uid}"));
            bb.push_str(&format!(" -u {uid}"));
        }
        if let Some(sh) = &u.shell {
            add.push_str(&format!(" -s {}", quote(sh)));
            bb.push_str(&format!(" -s {}", quote(sh)));
            modify.push_str(&format!(" -s {}", quote(sh)));
        }
        if u.home.is_some() {
            add.push_str(&format!(" -d {home}"));
            bb.push_str(&format!(" -h {home}"));
        }
        if u.system {
            add.push_str(" -r");
            bb.push_str(" -S");
        }
        if !u.groups.is_empty() {
            let g = quote(&u.groups.join(","));
            add.push_str(&format!(" -G {g}"));
            modify.push_str(&format!(" -a -G {g}"));
        }
        s.push_str(&format!(
            "if command -v useradd >/dev/null 2>&1; then\n  if id -u {name} >/dev/null 2>&1; then\n"
        ));
        if modify.is_empty() {
            s.push_str("    :\n");
        } else {
            s.push_str(&format!("    usermod{modify} {name}\n"));
        }
        s.push_str(&format!("  else\n    {add} {name}\n  fi\n"));
        s.push_str("elif command -v adduser >/dev/null 2>&1; then\n");
        s.push_str(&format!("  id -u {name} >/dev/null 2>&1 || {bb} {name}\n"));
        for g in &u.groups {
            s.push_str(&format!("  addgroup {name} {}\n", quote(g)));
        }
        s.push_str("else\n");
        let uid_expr = match u.uid {
            Some(uid) => uid.to_string(),
            None => "$(awk -F: 'BEGIN { m = 999 } $3 > m && $3 < 60000 { m = $3 } END { print m + 1 }' /etc/passwd)".into(),
        };
        s.push_str(&format!(
            "  if ! grep -q \"^{n}:\" /etc/passwd; then\n    uid={uid_expr}\n    grep -q \"^{n}:\" /etc/group || echo \"{n}:x:$uid:\" >> /etc/group\n    gid=$(awk -F: -v g={name} '$1 == g {{ print $3 }}' /etc/group)\n    echo \"{n}:x:$uid:$gid::\"{home}\":\"{shell} >> /etc/passwd\n    if [ -f /etc/shadow ]; then echo \"{n}:!:1::::::\" >> /etc/shadow; fi\n    mkdir -p {home}\n    chown \"$uid:$gid\" {home}\n  fi\n",
            n = u.name
        ));
        for g in &u.groups {
            s.push_str(&format!("  joot_add_member {} {name}\n", quote(g)));
        }
        s.push_str("fi\n");
        if let Some(pw) = &u.password {
            s.push_str(&format!("joot_set_password {name} {}\n", quote(pw)));
        }
        if u.sudo {
            s.push_str(&format!(
                "mkdir -p /etc/sudoers.d\nprintf '%s ALL=(ALL:ALL) NOPASSWD: ALL\\n' {name} > /etc/sudoers.d/90-joot-{n}\nchmod 0440 /etc/sudoers.d/90-joot-{n}\n",
                n = u.name
            ));
        }
        if !u.ssh_authorized_keys.is_empty() {
            s.push_str(&format!(
                "home=$(awk -F: -v u={name} '$1 == u {{ print $6 }}' /etc/passwd)\nmkdir -p \"$home/.ssh\"\n: > \"$home/.ssh/authorized_keys\"\n"
            ));
            for k in &u.ssh_authorized_keys {
                s.push_str(&format!(
                    "printf '%s\\n' {} >> \"$home/.ssh/authorized_keys\"\n",
                    quote(k)
                ));
            }
            s.push_str(&format!(
                "chmod 700 \"$home/.ssh\"\nchmod 600 \"$home/.ssh/authorized_keys\"\nchown -R \"$(id -u {name}):$(id -g {name})\" \"$home/.ssh\"\n"
            ));
        }
    }
    s
}

/// `files`: entry `i` was placed by the builder at `HELPER_DIR/src/<i>` (a file or a
/// directory). Copying inside the env resolves `dst` inside the image, never on the host, and
/// owners by the image's own /etc/passwd.
/// Files that the sandbox provides at run time (bound over the image's): a write from inside
/// an env would land on the run's copy. The builder writes these into the layer itself.
pub const RUNTIME_FILES: [&str; 3] = ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"];

/// True for a `dst` the builder writes itself (see [`RUNTIME_FILES`]).
pub fn is_runtime_file(dst: &str) -> bool {
    RUNTIME_FILES.contains(&dst.trim_end_matches('/'))
}

pub fn files(entries: &[FileEntry]) -> String {
    let mut s = String::from("set -e\n");
    for (i, e) in entries.iter().enumerate() {
        if is_runtime_file(&e.dst) {
            continue;
        }
        let src = format!("{HELPER_DIR}/src/{i}");
        let dst = quote(&e.dst);
        let owner = e.owner.as_ref().map_or_else(
            || "0:0".to_string(),
            |o| match &o.group {
                Some(_) => o.to_string(),
                None => format!("{}:", o.user),
            },
        );
        s.push_str(&format!("mkdir -p \"$(dirname {dst})\"\n"));
        s.push_str(&format!(
            "if [ -d {src} ]; then\n  mkdir -p {dst}\n  cp -pR {src}/. {dst}/\n  chown -R {o} {dst}\nelse\n  rm -f {dst}\n  cp -p {src} {dst}\n  chown {o} {dst}\nfi\n",
            o = quote(&owner)
        ));
        let mode = match (&e.mode, &e.content) {
            (Some(m), _) => Some(m.to_string()),
            (None, Some(_)) => Some("0644".into()),
            (None, None) => None,
        };
        if let Some(m) = mode {
            s.push_str(&format!("chmod {m} {dst}\n"));
        }
    }
    s
}

/// `services`, with systemctl working offline on the root (systemd is not running).
pub fn services(sv: &Services) -> String {
    let mut s = String::from(
        "set -e\nif ! command -v systemctl >/dev/null 2>&1; then\n  echo 'joot: systemctl not found in the image: install systemd first' >&2\n  exit 127\nfi\n",
    );
    for (verb, units) in [
        ("enable", &sv.enable),
        ("disable", &sv.disable),
        ("mask", &sv.mask),
    ] {
        if !units.is_empty() {
            s.push_str(&format!("systemctl --root=/ {verb} -- {}\n", words(units)));
        }
    }
    s
}

/// `puppet`: the manifest (and module dir) are at `HELPER_DIR/src/0` (and `/1`).
pub fn puppet(p: &Puppet) -> String {
    let mut cmd = String::from("puppet apply --detailed-exitcodes");
    if p.modulepath.is_some() {
        cmd.push_str(&format!(" --modulepath {HELPER_DIR}/src/1"));
    }
    cmd.push_str(&format!(" {HELPER_DIR}/src/0"));
    format!(
        "if ! command -v puppet >/dev/null 2>&1; then\n  echo 'joot: puppet is not installed in the image: add a `packages: [puppet]` step before' >&2\n  exit 127\nfi\nset +e\n{cmd}\nrc=$?\nset -e\n# --detailed-exitcodes: 0 no change, 2 changes applied; 4 and 6 mean failures.\nif [ $rc -ne 0 ] && [ $rc -ne 2 ]; then exit $rc; fi\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use joot_recipe::module::{Mode, Owner};
    use std::process::Command;

    fn sh_ok(script: &str) {
        let out = Command::new("sh")
            .args(["-n", "-c", script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "syntax error: {}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn quoting_survives_hostile_values() {
        let q = quote("a'b; rm -rf /");
        let out = Command::new("sh")
            .args(["-c", &format!("printf %s {q}")])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a'b; rm -rf /");
    }

    #[test]
    fn package_scripts() {
        let p = Packages {
            names: vec!["nginx".into(), "curl".into()],
        };
        let apt = packages(&p, PackageManager::Apt);
        assert!(apt.contains("apt-get install -y -q --no-install-recommends -- 'nginx' 'curl'"));
        assert!(apt.contains("policy-rc.d"));
        assert!(!apt.contains("dnf"));
        let dnf = packages(&p, PackageManager::Dnf);
        assert!(dnf.contains("dnf install -y"));
        assert!(!dnf.contains("apt-get"));
        assert!(dnf.contains("joot: dnf not found in the image"));
        let any = packages(&p, PackageManager::Detect);
        assert!(any.contains("apt-get") && any.contains("dnf"));
        for s in [apt, dnf, any] {
            sh_ok(&s);
        }
        assert_eq!(
            PackageManager::from_distro(Some("dnf")),
            PackageManager::Dnf
        );
        assert_eq!(PackageManager::from_distro(None), PackageManager::Detect);
    }

    #[test]
    fn user_script() {
        let u = User {
            name: "alice".into(),
            uid: Some(1001),
            groups: vec!["sudo".into(), "adm".into()],
            sudo: true,
            shell: Some("/bin/bash".into()),
            home: None,
            ssh_authorized_keys: vec!["ssh-ed25519 AAAA it's me".into()],
            password: Some("$6$s$h".into()),
            system: false,
        };
        let s = users(&[u]);
        sh_ok(&s);
        assert!(
            s.contains("useradd -m -u 1001 -s '/bin/bash' -G 'sudo,adm' 'alice'"),
            "{s}"
        );
        assert!(
            s.contains("usermod -s '/bin/bash' -a -G 'sudo,adm' 'alice'"),
            "{s}"
        );
        assert!(s.contains("chpasswd -e"), "{s}");
        assert!(s.contains("'$6$s$h'"), "{s}");
        assert!(s.contains("/etc/sudoers.d/90-joot-alice"), "{s}");
        assert!(s.contains(r"'ssh-ed25519 AAAA it'\''s me'"), "{s}");
    }

    #[test]
    fn files_script() {
        let e = FileEntry {
            src: Some("a".into()),
            content: None,
            dst: "/etc/my app/a.conf".into(),
            mode: Some(Mode(0o600)),
            owner: Some(Owner {
                user: "www-data".into(),
                group: None,
            }),
            src_path: None,
        };
        let s = files(&[e]);
        sh_ok(&s);
        assert!(
            s.contains("cp -p /tmp/.joot-build/src/0 '/etc/my app/a.conf'"),
            "{s}"
        );
        assert!(s.contains("chown 'www-data:' '/etc/my app/a.conf'"), "{s}");
        assert!(s.contains("chmod 0600 '/etc/my app/a.conf'"), "{s}");
    }

    #[test]
    fn files_script_really_copies() {
        // Run the generated script against a fake HELPER_DIR by rewriting the paths: checks the
        // shell logic (directory and file branches), not just its text.
        let t = tempfile::tempdir().unwrap();
        let helper = t.path().join("helper");
        std::fs::create_dir_all(helper.join("src/1/sub")).unwrap();
        std::fs::write(helper.join("src/0"), "hello").unwrap();
        std::fs::write(helper.join("src/1/sub/x"), "x").unwrap();
        let root = t.path().join("root");
        let mk = |src: &str, dst: String, mode: Option<Mode>| FileEntry {
            src: Some(src.into()),
            content: None,
            dst,
            mode,
            owner: None,
            src_path: None,
        };
        let entries = vec![
            mk(
                "f",
                format!("{}/etc/f.conf", root.display()),
                Some(Mode(0o640)),
            ),
            mk("d", format!("{}/opt/tree", root.display()), None),
        ];
        let script = files(&entries).replace(HELPER_DIR, &helper.display().to_string());
        let me = format!(
            "{}:{}",
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw()
        );
        let script = script.replace("'0:0'", &quote(&me));
        let out = Command::new("sh").args(["-c", &script]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            std::fs::read_to_string(root.join("etc/f.conf")).unwrap(),
            "hello"
        );
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(root.join("etc/f.conf"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(m & 0o7777, 0o640);
        assert_eq!(
            std::fs::read_to_string(root.join("opt/tree/sub/x")).unwrap(),
            "x"
        );
    }

    #[test]
    fn services_and_puppet_scripts() {
        let sv = Services {
            enable: vec!["nginx".into()],
            disable: vec!["ssh".into()],
            mask: vec![],
        };
        let s = services(&sv);
        sh_ok(&s);
        assert!(s.contains("systemctl --root=/ enable -- 'nginx'"));
        assert!(s.contains("systemctl --root=/ disable -- 'ssh'"));
        assert!(!s.contains("mask"));
        let p = Puppet {
            manifest: "site.pp".into(),
            modulepath: Some("mods".into()),
            manifest_path: Default::default(),
            modulepath_path: None,
        };
        let s = puppet(&p);
        sh_ok(&s);
        assert!(s.contains("puppet apply --detailed-exitcodes --modulepath /tmp/.joot-build/src/1 /tmp/.joot-build/src/0"));
    }
}
