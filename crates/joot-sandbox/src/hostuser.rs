//! `--bind-user`: the invoking user exists inside the env as themselves — same uid, gid, name
//! and groups, home directory bound in — so a developer's files keep their owner on both
//! sides.
//!
//! The image's /etc/passwd and /etc/group get the user's entries in generated copies bound
//! over the originals for the run only (an env's own files are never changed). Rootless, the
//! user namespace maps the user's uid to itself instead of to 0; with a subordinate range the
//! other ids keep the usual places (inside `k` -> `start + k - 1`) except the user's own, so
//! files of other owners still show their owners. Inside uid 0 then has no host id: files the
//! image gives to root are the user's on disk and show as the user's inside.

use std::path::{Path, PathBuf};

use crate::idmap::{IdMap, IdRange, SUB_COUNT};
use crate::user::{PasswdEntry, parse_group, parse_passwd};

/// The invoking user as seen on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostUser {
    pub entry: PasswdEntry,
    /// Supplementary groups (name, gid), the primary one included.
    pub groups: Vec<(String, u32)>,
}

/// The user behind this process: `SUDO_UID` when run through sudo, else the real uid, from the
/// host's /etc/passwd and /etc/group. `None` when the uid has no passwd entry.
pub fn host_user() -> Option<HostUser> {
    let uid: u32 = std::env::var("SUDO_UID")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rustix::process::getuid().as_raw());
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let entry = parse_passwd(&passwd).into_iter().find(|e| e.uid == uid)?;
    let mut groups = Vec::new();
    for g in parse_group(&group) {
        if (g.gid == entry.gid || g.members.iter().any(|m| m == &entry.name))
            && !groups.iter().any(|(_, id)| *id == g.gid)
        {
            groups.push((g.name, g.gid));
        }
    }
    if !groups.iter().any(|(_, id)| *id == entry.gid) {
        groups.insert(0, (entry.name.clone(), entry.gid));
    }
    Some(HostUser { entry, groups })
}

/// The image's `/etc/<name>` as the run will see it: the first regular file found from the top
/// of `dirs` (an env's upper first, then lowers top -> bottom). A symlink, whiteout or other
/// non-regular entry stops the search (nothing is followed outside the root).
pub fn image_file(dirs: &[PathBuf], name: &str) -> String {
    for d in dirs {
        let p = d.join("etc").join(name);
        match std::fs::symlink_metadata(&p) {
            Ok(md) if md.is_file() => return std::fs::read_to_string(&p).unwrap_or_default(),
            Ok(_) => return String::new(),
            Err(_) => {
                if std::fs::symlink_metadata(d.join("etc")).is_ok_and(|m| !m.is_dir()) {
                    return String::new();
                }
            }
        }
    }
    String::new()
}

fn with_newline(text: &str) -> String {
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// `passwd` with the user's entry (home and shell from the host): an entry with the same uid
/// or name is replaced.
pub fn passwd_with(passwd: &str, u: &PasswdEntry) -> String {
    let mut out = String::new();
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 3 && (f[0] == u.name || f[2] == u.uid.to_string()) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!(
        "{}:x:{}:{}::{}:{}\n",
        u.name, u.uid, u.gid, u.home, u.shell
    ));
    out
}

/// `group` with the user as a member of each of `groups` whose gid `mapped` accepts: an image
/// group of that gid gets the user as member, a missing one is added with the host's name
/// (unless the image uses that name for another gid).
pub fn group_with(
    group: &str,
    user: &str,
    groups: &[(String, u32)],
    mapped: impl Fn(u32) -> bool,
) -> String {
    let image = parse_group(group);
    let mut out = String::new();
    for line in group.lines() {
        let f: Vec<&str> = line.splitn(4, ':').collect();
        let gid = f.get(2).and_then(|g| g.parse::<u32>().ok());
        match gid {
            Some(gid) if f.len() == 4 && groups.iter().any(|(_, g)| *g == gid) && mapped(gid) => {
                let mut members: Vec<&str> = f[3].split(',').filter(|m| !m.is_empty()).collect();
                if !members.contains(&user) {
                    members.push(user);
                }
                out.push_str(&format!(
                    "{}:{}:{}:{}\n",
                    f[0],
                    f[1],
                    f[2],
                    members.join(",")
                ));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for (name, gid) in groups {
        if !mapped(*gid) || image.iter().any(|g| g.gid == *gid || &g.name == name) {
            continue;
        }
        out.push_str(&format!("{name}:x:{gid}:{user}\n"));
    }
    with_newline(&out)
}

/// The rootless map of a `--bind-user` run for `uid`/`gid`: the user's own ids to themselves
/// and, with subordinate ranges, every other inside id `1..=65536` where the usual map puts it
/// (`start + k - 1`).
pub fn bind_user_map(uid: u32, gid: u32, sub: Option<(IdRange, IdRange)>) -> IdMap {
    fn ranges(id: u32, sub: Option<IdRange>) -> Vec<IdRange> {
        let mut v = vec![IdRange {
            inside: id,
            outside: id,
            count: 1,
        }];
        if let Some(s) = sub {
            let count = s.count.min(SUB_COUNT);
            // inside k (1..=count) -> s.outside + k - 1, skipping k == id.
            let below = id.saturating_sub(1).min(count);
            if id >= 1 && below > 0 {
                v.push(IdRange {
                    inside: 1,
                    outside: s.outside,
                    count: below,
                });
            }
            let start = if id >= 1 { id + 1 } else { 1 };
            if start <= count {
                v.push(IdRange {
                    inside: start,
                    outside: s.outside + start - 1,
                    count: count - start + 1,
                });
            }
        }
        v
    }
    IdMap {
        uids: ranges(uid, sub.map(|(u, _)| u)),
        gids: ranges(gid, sub.map(|(_, g)| g)),
        helpers: sub.is_some(),
    }
}

/// The subordinate ranges of a detected map (its line for inside uid 1), if it has them.
pub fn sub_ranges(map: &IdMap) -> Option<(IdRange, IdRange)> {
    let find = |v: &[IdRange]| v.iter().find(|r| r.inside == 1).copied();
    Some((find(&map.uids)?, find(&map.gids)?))
}

/// True when `path` exists as a directory on the host.
pub fn is_dir(path: &str) -> bool {
    !path.is_empty() && Path::new(path).is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> PasswdEntry {
        PasswdEntry {
            name: "dev".into(),
            uid: 1002,
            gid: 1002,
            home: "/home/dev".into(),
            shell: "/bin/bash".into(),
        }
    }

    #[test]
    fn passwd_gets_the_user_and_drops_clashes() {
        let p = "root:x:0:0:root:/root:/bin/sh\nold:x:1002:1002::/home/old:/bin/sh\ndev:x:5:5::/:/bin/sh\n";
        let out = passwd_with(p, &alice());
        assert_eq!(
            out,
            "root:x:0:0:root:/root:/bin/sh\ndev:x:1002:1002::/home/dev:/bin/bash\n"
        );
    }

    #[test]
    fn group_adds_membership_and_missing_groups() {
        let g = "root:x:0:\nusers:x:100:alice\nwheel:x:10:\n";
        let groups = vec![
            ("dev".to_string(), 1002),
            ("users".to_string(), 100),
            ("wheel2".to_string(), 10),
            ("docker".to_string(), 999),
        ];
        let out = group_with(g, "dev", &groups, |gid| gid != 999);
        assert_eq!(
            out,
            "root:x:0:\nusers:x:100:alice,dev\nwheel:x:10:dev\ndev:x:1002:dev\n"
        );
    }

    #[test]
    fn rootless_map_keeps_the_user_and_the_range_around_it() {
        let r = IdRange {
            inside: 1,
            outside: 200000,
            count: 65536,
        };
        let m = bind_user_map(1002, 1002, Some((r, r)));
        assert_eq!(
            m.uid_map_text(),
            "1002 1002 1\n1 200000 1001\n1003 201002 64534\n"
        );
        assert!(m.helpers);
        let single = bind_user_map(1002, 1003, None);
        assert_eq!(single.uid_map_text(), "1002 1002 1\n");
        assert_eq!(single.gid_map_text(), "1003 1003 1\n");
        assert!(!single.helpers);
    }
}
