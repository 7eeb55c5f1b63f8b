//! Runs real sandboxes as root on a busybox fixture: exit codes, PID 1, isolation of /proc,
//! /sys and /dev, capabilities, fd hygiene, binds resolved in the root, networking, cleanup.

mod common;

use common::{Fixture, assert_nothing_mounted_under};
use joot_sandbox::run;

#[test]
fn exit_codes_are_the_commands() {
    if !joot_test_support::require_root("exit_codes_are_the_commands") {
        return;
    }
    let f = Fixture::new("exit");
    assert_eq!(run(&f.sh("true")).unwrap(), 0);
    assert_eq!(run(&f.sh("exit 3")).unwrap(), 3);
    assert_eq!(run(&f.sh("kill -9 $$")).unwrap(), 128 + 9);
    assert_nothing_mounted_under(f.path());
}
