//! `--user USER[:GROUP]` resolved against the IMAGE's /etc/passwd and /etc/group (never the
//! host's): the sandbox reads them after pivot_root, so paths resolve inside the new root.

/// One /etc/passwd entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// One /etc/group entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// The identity the command runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (including the primary one).
    pub groups: Vec<u32>,
    pub home: String,
}

/// Parses /etc/passwd text; malformed lines are skipped.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
                shell: f[6].to_string(),
            })
        })
        .collect()
}

/// Parses /etc/group text; malformed lines are skipped.
pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// Resolves `spec` (`USER`, `UID`, `USER:GROUP`, `UID:GID`, or None for root) against the
/// image's passwd and group texts. A numeric uid absent from passwd is allowed (home "/", gid
/// = uid unless given); an unknown name is an error.
pub fn resolve(spec: Option<&str>, passwd: &str, group: &str) -> Result<Identity, String> {
    let users = parse_passwd(passwd);
    let groups = parse_group(group);
    let (u, g) = match spec {
        None => ("0", None),
        Some(s) => match s.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (s, None),
        },
    };
    if u.is_empty() {
        return Err(format!(
            "invalid user `{}`: empty user name",
            spec.unwrap_or("")
        ));
    }
    let entry = match u.parse::<u32>() {
        Ok(uid) => users.iter().find(|e| e.uid == uid).cloned(),
        Err(_) => Some(
            users
                .iter()
                .find(|e| e.name == u)
                .cloned()
                .ok_or_else(|| format!("user `{u}` not found in the image's /etc/passwd"))?,
        ),
    };
    let uid = entry
        .as_ref()
        .map(|e| e.uid)
        .unwrap_or_else(|| u.parse().unwrap_or(0));
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| format!("group `{g}` not found in the image's /etc/group"))?,
        },
        None => entry.as_ref().map(|e| e.gid).unwrap_or(uid),
    };
    let mut sup = vec![gid];
    if let Some(e) = &entry {
        for gr in &groups {
            if gr.members.iter().any(|m| m == &e.name) && !sup.contains(&gr.gid) {
                sup.push(gr.gid);
            }
        }
    }
    let home = entry
        .map(|e| e.home)
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| if uid == 0 { "/root".into() } else { "/".into() });
    Ok(Identity {
        uid,
        gid,
        groups: sup,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\nbroken\n";
    const GROUP: &str = "root:x:0:\nusers:x:100:alice,bob\nalice:x:1000:\nwheel:x:10:alice\n";

    #[test]
    fn root_by_default() {
        let id = resolve(None, PASSWD, GROUP).unwrap();
        assert_eq!((id.uid, id.gid, id.home.as_str()), (0, 0, "/root"));
        assert_eq!(id.groups, vec![0]);
    }

    #[test]
    fn name_gets_home_and_supplementary_groups() {
        let id = resolve(Some("alice"), PASSWD, GROUP).unwrap();
        assert_eq!((id.uid, id.gid), (1000, 1000));
        assert_eq!(id.home, "/home/alice");
        assert_eq!(id.groups, vec![1000, 100, 10]);
    }

    #[test]
    fn group_override_by_name_and_number() {
        assert_eq!(
            resolve(Some("alice:users"), PASSWD, GROUP).unwrap().gid,
            100
        );
        let id = resolve(Some("4242:4343"), PASSWD, GROUP).unwrap();
        assert_eq!((id.uid, id.gid, id.home.as_str()), (4242, 4343, "/"));
    }

    #[test]
    fn unknown_names_are_errors() {
        let e = resolve(Some("mallory"), PASSWD, GROUP).unwrap_err();
        assert!(e.contains("mallory") && e.contains("/etc/passwd"), "{e}");
        let e = resolve(Some("alice:nogroup"), PASSWD, GROUP).unwrap_err();
        assert!(e.contains("nogroup"), "{e}");
    }
}
