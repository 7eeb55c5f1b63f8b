//! `users`: create accounts inside the image with the image's own `useradd`/`usermod`, so the
//! distro's defaults (skeleton, subuid ranges, login.defs) apply. `sudo: true` adds a drop-in
//! under /etc/sudoers.d; ssh keys go to ~/.ssh/authorized_keys with the right owner and modes.

use serde::{Deserialize, Serialize};

use super::{Cx, valid_account_name};
use crate::node::Node;

/// `users: [...]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Users {
    /// The accounts, created in order.
    pub users: Vec<User>,
}

/// One account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Login name (`[a-z_][a-z0-9_-]*`, at most 32 characters).
    pub name: String,
    /// Numeric uid; the distro picks one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Supplementary groups; they must exist in the image (or be created by an earlier step).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Passwordless sudo through /etc/sudoers.d/<name> (needs the `sudo` package for use).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sudo: bool,
    /// Login shell (absolute path); the distro default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Home directory; /home/<name> when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    /// Lines for ~/.ssh/authorized_keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh_authorized_keys: Vec<String>,
    /// A crypt(3) password hash (`openssl passwd -6`), or `!` for a locked password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// A system account (no aging, uid from the system range).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub system: bool,
}

impl Users {
    pub(crate) fn parse(node: &Node, cx: &mut Cx<'_>) -> Option<Users> {
        let parsed: Vec<Option<User>> = super::parse_items(node, cx, "users")?;
        let mut ok = parsed.iter().all(Option::is_some);
        let indexed: Vec<(usize, User)> = parsed
            .into_iter()
            .enumerate()
            .filter_map(|(i, u)| Some((i, u?)))
            .collect();
        if indexed.is_empty() && ok {
            cx.sink.error(node.loc, "`users` lists no user");
            ok = false;
        }
        let mut err = |loc, msg: String| {
            cx.sink.error(loc, msg);
            ok = false;
        };
        for (n, (i, user)) in indexed.iter().enumerate() {
            let i = *i;
            let item = node.as_seq().and_then(|s| s.get(i)).unwrap_or(node);
            if !valid_account_name(&user.name) {
                err(
                    item.loc_of("name"),
                    format!(
                        "`{}` is not a valid user name (lowercase letters, digits, `_` and `-`, starting with a letter or `_`, at most 32)",
                        user.name
                    ),
                );
            }
            if let Some(g) = user.groups.iter().find(|g| !valid_account_name(g)) {
                err(
                    item.loc_of("groups"),
                    format!("`{g}` is not a valid group name"),
                );
            }
            if let Some(shell) = &user.shell
                && !shell.starts_with('/')
            {
                err(
                    item.loc_of("shell"),
                    format!("shell `{shell}` must be an absolute path such as /bin/bash"),
                );
            }
            if let Some(home) = &user.home
                && let Err(e) = super::check_image_path(home)
            {
                err(item.loc_of("home"), format!("home {e}"));
            }
            if let Some(pw) = &user.password
                && !(pw.starts_with('$') || pw == "!" || pw == "*" || pw == "!*")
            {
                err(
                    item.loc_of("password"),
                    "password must be a crypt(3) hash (make one with `openssl passwd -6`) or `!` to lock it; plain text is refused".into(),
                );
            }
            for key in &user.ssh_authorized_keys {
                if key.contains('\n') || key.trim().is_empty() {
                    err(
                        item.loc_of("ssh_authorized_keys"),
                        "each ssh_authorized_keys entry is one non-empty line".into(),
                    );
                }
            }
            if indexed[..n].iter().any(|(_, o)| o.name == user.name) {
                err(
                    item.loc_of("name"),
                    format!("user `{}` is listed twice", user.name),
                );
            }
        }
        ok.then(|| Users {
            users: indexed.into_iter().map(|(_, u)| u).collect(),
        })
    }

    pub(crate) fn summary(&self) -> String {
        let names: Vec<&str> = self.users.iter().map(|u| u.name.as_str()).collect();
        format!("users {}", names.join(" "))
    }
}
