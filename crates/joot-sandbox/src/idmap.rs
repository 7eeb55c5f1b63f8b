//! User namespace id maps for rootless runs (issue 7).
//!
//! With `newuidmap`/`newgidmap` (package uidmap) and a range in /etc/subuid and /etc/subgid,
//! uid 0 inside maps to the invoking user and 1..=65536 onto the range, so files of other
//! users in an image keep their owners. Without a range only uid/gid 0 is mapped (to the
//! user): files of other owners appear as `nobody` and `chown` to them fails; the run says so
//! with a warning. The maps are written by the parent after the child exists and before it
//! continues (see `run`).

use std::path::Path;

/// One line of a uid_map or gid_map: `inside outside count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// The uid and gid mappings of a run's user namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMap {
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
    /// The maps need the setuid helpers newuidmap/newgidmap (more than the caller's own id).
    pub helpers: bool,
}

/// Number of subordinate ids mapped at most (uids 1..=65536 inside).
pub const SUB_COUNT: u32 = 65536;

/// A subordinate id range from /etc/subuid or /etc/subgid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubRange {
    pub start: u32,
    pub count: u32,
}

/// Finds the first range for `name` or `id` in the text of /etc/subuid or /etc/subgid.
pub fn parse_subid(text: &str, name: &str, id: u32) -> Option<SubRange> {
    let id = id.to_string();
    text.lines().find_map(|line| {
        let mut f = line.trim().split(':');
        let who = f.next()?;
        if who != name && who != id {
            return None;
        }
        let start = f.next()?.trim().parse().ok()?;
        let count = f.next()?.trim().parse().ok()?;
        (count > 0).then_some(SubRange { start, count })
    })
}

impl IdMap {
    /// The mapping for a user with ids `uid`/`gid`, given their subordinate ranges (if any and
    /// if the helpers are installed).
    pub fn build(uid: u32, gid: u32, sub: Option<(SubRange, SubRange)>) -> IdMap {
        let one = |outside| IdRange {
            inside: 0,
            outside,
            count: 1,
        };
        match sub {
            Some((su, sg)) => IdMap {
                uids: vec![
                    one(uid),
                    IdRange {
                        inside: 1,
                        outside: su.start,
                        count: su.count.min(SUB_COUNT),
                    },
                ],
                gids: vec![
                    one(gid),
                    IdRange {
                        inside: 1,
                        outside: sg.start,
                        count: sg.count.min(SUB_COUNT),
                    },
                ],
                helpers: true,
            },
            None => IdMap {
                uids: vec![one(uid)],
                gids: vec![one(gid)],
                helpers: false,
            },
        }
    }

    /// `None` when running as real root (no user namespace needed), [`IdMap::nested`] for
    /// root inside a user namespace (a rootless verb re-executed by
    /// [`crate::userns::reexec`]), else [`IdMap::detect`].
    pub fn for_current_user() -> Option<IdMap> {
        if rustix::process::geteuid().is_root() {
            if crate::userns::in_initial_userns() {
                None
            } else {
                Some(IdMap::nested())
            }
        } else {
            Some(IdMap::detect())
        }
    }

    /// For root inside a user namespace: a nested namespace mapping every id of the current
    /// one to itself. Root there may write such maps directly (it holds CAP_SETUID and
    /// CAP_SETGID over its own namespace), so `helpers` is true: setgroups stays allowed.
    pub fn nested() -> IdMap {
        let read = |p: &str| {
            let ranges = parse_map(&std::fs::read_to_string(p).unwrap_or_default());
            if ranges.is_empty() {
                vec![IdRange {
                    inside: 0,
                    outside: 0,
                    count: 1,
                }]
            } else {
                ranges
            }
        };
        IdMap {
            uids: read("/proc/self/uid_map"),
            gids: read("/proc/self/gid_map"),
            helpers: true,
        }
    }

    /// The mapping for the calling user: with subordinate ranges when /etc/subuid and
    /// /etc/subgid have one for the user and newuidmap/newgidmap are installed, else a single
    /// id (with a warning saying what is lost).
    pub fn detect() -> IdMap {
        let uid = rustix::process::geteuid().as_raw();
        let gid = rustix::process::getegid().as_raw();
        let name = user_name(uid).unwrap_or_default();
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let su = parse_subid(&read("/etc/subuid"), &name, uid);
        let sg = parse_subid(&read("/etc/subgid"), &name, gid);
        let helpers = ["newuidmap", "newgidmap"]
            .iter()
            .all(|t| crate::tool::find_on_path(t).is_some());
        match (su, sg, helpers) {
            (Some(su), Some(sg), true) => IdMap::build(uid, gid, Some((su, sg))),
            _ => {
                tracing::warn!(
                    "no subordinate id range for user {name} (uid {uid}) in /etc/subuid and \
                     /etc/subgid, or newuidmap/newgidmap missing (package uidmap): mapping only \
                     uid 0 inside to you; files an image gives to other users become yours on \
                     import (or show as nobody), and chown to other users fails inside; \
                     `joot doctor` says how to add a range"
                );
                IdMap::build(uid, gid, None)
            }
        }
    }

    /// True when `gid` inside the namespace is mapped.
    pub fn maps_gid(&self, gid: u32) -> bool {
        self.gids
            .iter()
            .any(|r| gid >= r.inside && gid - r.inside < r.count)
    }

    /// Text for /proc/PID/uid_map.
    pub fn uid_map_text(&self) -> String {
        map_text(&self.uids)
    }

    /// Text for /proc/PID/gid_map.
    pub fn gid_map_text(&self) -> String {
        map_text(&self.gids)
    }

    /// Writes the maps of process `pid`: directly for a single id, through newuidmap and
    /// newgidmap (run concurrently) for ranges.
    pub fn apply(&self, pid: i32) -> std::io::Result<()> {
        if self.helpers && rustix::process::geteuid().is_root() {
            // Root of a user namespace writing a nested one's maps (see `nested`).
            return joot_sys::ids::write_id_maps(
                pid,
                &self.uid_map_text(),
                &self.gid_map_text(),
                false,
            );
        }
        if !self.helpers {
            return joot_sys::ids::write_id_maps(
                pid,
                &self.uid_map_text(),
                &self.gid_map_text(),
                true,
            );
        }
        let spawn = |tool: &str, ranges: &[IdRange]| {
            let mut cmd = std::process::Command::new(tool);
            cmd.arg(pid.to_string());
            for r in ranges {
                cmd.args([
                    r.inside.to_string(),
                    r.outside.to_string(),
                    r.count.to_string(),
                ]);
            }
            cmd.stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            tracing::debug!(argv = %crate::tool::argv_string(&cmd), "writing id map");
            cmd.spawn()
        };
        let u = spawn("newuidmap", &self.uids)?;
        let g = spawn("newgidmap", &self.gids)?;
        for (name, child) in [("newuidmap", u), ("newgidmap", g)] {
            let out = child.wait_with_output()?;
            if !out.status.success() {
                return Err(std::io::Error::other(format!(
                    "{name} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        }
        Ok(())
    }
}

/// The identity ranges (`inside == outside`) of the ids mapped by a /proc/PID/uid_map text.
fn parse_map(text: &str) -> Vec<IdRange> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<u32> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (f.len() == 3 && f[2] > 0).then(|| IdRange {
                inside: f[0],
                outside: f[0],
                count: f[2],
            })
        })
        .collect()
}

fn map_text(ranges: &[IdRange]) -> String {
    ranges
        .iter()
        .map(|r| format!("{} {} {}\n", r.inside, r.outside, r.count))
        .collect()
}

/// The login name of `uid` from the host's /etc/passwd.
pub fn user_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string(Path::new("/etc/passwd")).ok()?;
    crate::user::parse_passwd(&text)
        .into_iter()
        .find(|e| e.uid == uid)
        .map(|e| e.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subid_lookup_by_name_or_uid() {
        let text = "bob:100000:65536\nalice:165536:1000\n1001:300000:65536\n";
        assert_eq!(
            parse_subid(text, "alice", 1000),
            Some(SubRange {
                start: 165536,
                count: 1000
            })
        );
        assert_eq!(
            parse_subid(text, "carol", 1001),
            Some(SubRange {
                start: 300000,
                count: 65536
            })
        );
        assert_eq!(parse_subid(text, "dave", 1002), None);
    }

    #[test]
    fn range_map_puts_user_at_zero_and_range_above() {
        let r = SubRange {
            start: 100000,
            count: 200000,
        };
        let m = IdMap::build(1000, 1000, Some((r, r)));
        assert_eq!(m.uid_map_text(), "0 1000 1\n1 100000 65536\n");
        assert!(m.helpers);
        assert!(m.maps_gid(5));
    }

    #[test]
    fn nested_map_is_the_identity_of_the_current_ranges() {
        let r = parse_map("         0       1002          1\n         1     165536      65536\n");
        assert_eq!(
            r,
            vec![
                IdRange {
                    inside: 0,
                    outside: 0,
                    count: 1
                },
                IdRange {
                    inside: 1,
                    outside: 1,
                    count: 65536
                }
            ]
        );
    }

    #[test]
    fn single_map_has_only_root() {
        let m = IdMap::build(1000, 1001, None);
        assert_eq!(m.uid_map_text(), "0 1000 1\n");
        assert_eq!(m.gid_map_text(), "0 1001 1\n");
        assert!(!m.helpers);
        assert!(!m.maps_gid(5));
        assert!(m.maps_gid(0));
    }
}
