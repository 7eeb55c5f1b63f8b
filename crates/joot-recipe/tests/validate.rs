//! Recipe parsing and validation through the public API: a full recipe using every module
//! parses into the expected steps, and each kind of mistake is reported with its line and
//! column, all of them in one pass.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use joot_recipe::module::{Mode, Module};
use joot_recipe::{Base, Diagnostics, Loc, ParseOptions, Recipe, parse};

fn dir_with_files() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("motd"), "hello\n").unwrap();
    std::fs::write(d.path().join("site.pp"), "file { '/x': }\n").unwrap();
    std::fs::write(d.path().join("site.yml"), "- hosts: all\n").unwrap();
    std::fs::create_dir_all(d.path().join("modules")).unwrap();
    let m = d.path().join("modules/tune");
    std::fs::write(&m, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o755)).unwrap();
    let n = d.path().join("modules/noexec");
    std::fs::write(&n, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&n, std::fs::Permissions::from_mode(0o644)).unwrap();
    d
}

fn ok(dir: &Path, yaml: &str) -> Recipe {
    match parse(yaml, &dir.join("recipe.yaml"), &ParseOptions::default()) {
        Ok(r) => r,
        Err(d) => panic!("{d}"),
    }
}

fn errs(dir: &Path, yaml: &str) -> Diagnostics {
    match parse(yaml, &dir.join("recipe.yaml"), &ParseOptions::default()) {
        Ok(r) => panic!("expected errors, parsed {r:?}"),
        Err(d) => d,
    }
}

/// Asserts a diagnostic at `line:col` whose message contains `needle`.
fn has(d: &Diagnostics, line: u64, col: u64, needle: &str) {
    assert!(
        d.items
            .iter()
            .any(|i| i.loc == Loc::new(line, col) && i.message.contains(needle)),
        "no error at {line}:{col} containing {needle:?} in:\n{d}"
    );
}

const FULL: &str = r#"version: 1
name: web
from: debian:bookworm
steps:
  - packages: [nginx, curl]
  - users:
      - {name: alice, uid: 1001, groups: [sudo], sudo: true, shell: /bin/bash, ssh_authorized_keys: ["ssh-ed25519 AAAA x"], password: "$6$salt$hash"}
  - files:
      - {src: motd, dst: /etc/motd, mode: "0644", owner: root}
      - {content: "x=1\n", dst: /etc/x.conf, owner: "www-data:adm"}
  - run: |
      echo built > /etc/built
  - run: {script: "echo $A", shell: /bin/bash, env: {A: b}}
  - services: {enable: [nginx], disable: [ssh]}
  - hostname: web
  - puppet: site.pp
  - ansible: {playbook: site.yml, extra_vars: {port: 80}}
  - module: tune
    with: {swappiness: 10}
"#;

#[test]
fn full_recipe_parses_every_module() {
    let d = dir_with_files();
    let r = ok(d.path(), FULL);
    assert_eq!(r.version, 1);
    assert_eq!(r.name.as_deref(), Some("web"));
    assert_eq!(r.from, Base::Distro("debian:bookworm".into()));
    let kinds: Vec<&str> = r.steps.iter().map(|s| s.module.kind()).collect();
    assert_eq!(
        kinds,
        [
            "packages", "users", "files", "run", "run", "services", "hostname", "puppet",
            "ansible", "tune"
        ]
    );
    assert_eq!(r.steps[0].index, 1);
    assert_eq!(r.steps[0].loc, Loc::new(5, 5));
    assert_eq!(r.steps[0].module.summary(), "packages nginx curl");
    match &r.steps[2].module {
        Module::Files(f) => {
            assert_eq!(f.entries[0].mode, Some(Mode(0o644)));
            assert_eq!(
                f.entries[0].src_path.as_deref(),
                Some(d.path().join("motd").as_path())
            );
            let owner = f.entries[1].owner.as_ref().unwrap();
            assert_eq!(
                (owner.user.as_str(), owner.group.as_deref()),
                ("www-data", Some("adm"))
            );
        }
        other => panic!("{other:?}"),
    }
    match &r.steps[9].module {
        Module::Custom(c) => {
            assert_eq!(c.with, serde_json::json!({"swappiness": 10}));
            assert_eq!(c.exe, d.path().join("modules/tune"));
        }
        other => panic!("{other:?}"),
    }
    // Steps that read host files list them as cache inputs.
    let labels: Vec<String> = r
        .steps
        .iter()
        .flat_map(|s| s.inputs())
        .map(|i| i.label)
        .collect();
    assert_eq!(
        labels,
        [
            "files[0].src motd",
            "puppet manifest site.pp",
            "ansible playbook site.yml",
            "module executable tune"
        ]
    );
    // The recipe JSON for custom modules carries the steps.
    let j = r.to_json();
    assert_eq!(
        j["steps"][0]["module"]["packages"],
        serde_json::json!(["nginx", "curl"])
    );
}

#[test]
fn every_error_is_reported_with_its_location() {
    let d = dir_with_files();
    let yaml = r#"version: 1
from: debian:bookworm
colour: blue
steps:
  - pakages: [nginx]
  - files:
      - {src: missing.conf, dst: etc/relative}
      - {src: motd, dst: /etc/a, mode: 644}
  - users:
      - {name: Alice, shell: bash, password: hunter2}
      - {name: bob, frobs: 3}
  - run: {script: "true", bogus: 1}
  - module: nosuch
  - module: noexec
  - hostname: "-bad-"
  - packages: nginx
  - services: {enable: [a b]}
  - run: [1, 2]
  - packages: [x]
    run: y
"#;
    let e = errs(d.path(), yaml);
    has(&e, 3, 1, "unknown field `colour`");
    has(
        &e,
        5,
        5,
        "unknown module `pakages` (did you mean `packages`?)",
    );
    has(&e, 7, 15, "source `missing.conf` not found");
    has(&e, 7, 34, "dst `etc/relative` must be an absolute path");
    has(&e, 8, 40, "write the mode in quotes");
    has(&e, 10, 16, "`Alice` is not a valid user name");
    has(&e, 10, 30, "shell `bash` must be an absolute path");
    has(&e, 10, 46, "password must be a crypt(3) hash");
    has(&e, 11, 21, "unknown field `frobs`");
    has(&e, 12, 27, "unknown field `bogus`");
    has(&e, 13, 13, "custom module `nosuch` not found");
    has(&e, 14, 13, "is not executable");
    has(&e, 15, 15, "`-bad-` is not a valid host name");
    has(&e, 16, 15, "`packages` takes a list");
    has(&e, 17, 25, "`a b` is not a systemd unit name");
    has(&e, 18, 10, "invalid type");
    has(&e, 20, 5, "has 2 modules (packages, run)");
    assert_eq!(e.items.len(), 17, "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("{}: ", d.path().join("recipe.yaml").display())),
        "{text}"
    );
    assert!(
        text.contains("recipe.yaml:5:5: step 1: unknown module"),
        "{text}"
    );
}

#[test]
fn bad_mode_strings() {
    let d = dir_with_files();
    let e = errs(
        d.path(),
        "version: 1\nfrom: base\nsteps:\n  - files: [{content: x, dst: /a, mode: \"0999\"}]\n",
    );
    has(&e, 4, 41, "bad mode `0999`");
    let e = errs(
        d.path(),
        "version: 1\nfrom: base\nsteps:\n  - files: [{content: x, dst: /a, owner: \"a:b:c\"}]\n",
    );
    has(&e, 4, 42, "bad owner `a:b:c`");
}

#[test]
fn header_errors() {
    let d = dir_with_files();
    let e = errs(
        d.path(),
        "version: 2\nfrom: ./nope.tar.zst\nsteps: {}\nname: 'bad name'\n",
    );
    has(&e, 1, 10, "recipe version 2 is not supported");
    has(&e, 2, 7, "rootfs tarball `./nope.tar.zst` not found");
    has(&e, 3, 8, "`steps` must be a list");
    has(&e, 4, 7, "`bad name` is not a valid image name");
    let e = errs(d.path(), "name: x\n");
    has(&e, 1, 1, "missing field `version`");
    has(&e, 1, 1, "missing field `from`");
    has(&e, 1, 1, "missing field `steps`");
    let e = errs(d.path(), "- a\n- b\n");
    has(&e, 1, 1, "a recipe is a mapping");
    let e = errs(d.path(), "version: 1\nfrom: [x\n");
    assert_eq!(e.items.len(), 1, "{e}");
    assert!(e.items[0].loc.line >= 2, "{e}");
}

#[test]
fn module_at_top_level_gets_a_hint() {
    let d = dir_with_files();
    let e = errs(d.path(), "version: 1\nfrom: base\nsteps: []\nrun: echo\n");
    has(&e, 4, 1, "put it in a step under `steps:`");
}

#[test]
fn bases() {
    let d = dir_with_files();
    std::fs::write(d.path().join("root.tar.gz"), b"x").unwrap();
    let r = ok(d.path(), "version: 1\nfrom: root.tar.gz\nsteps:\n");
    assert_eq!(r.from, Base::Tarball(d.path().join("root.tar.gz")));
    assert!(r.steps.is_empty());
    let r = ok(d.path(), "version: 1\nfrom: my-image\nsteps: []\n");
    assert_eq!(r.from, Base::Image("my-image".into()));
    let r = ok(
        d.path(),
        "version: 1\nfrom: localhost:5000/team/app:1.0\nsteps: []\n",
    );
    assert_eq!(
        r.from,
        Base::Reference("localhost:5000/team/app:1.0".into())
    );
    let r = ok(d.path(), "version: 1\nfrom: rocky:9\nsteps: []\n");
    assert_eq!(r.from, Base::Distro("rocky:9".into()));
}

#[test]
fn custom_modules_from_search_path() {
    let d = dir_with_files();
    let extra = tempfile::tempdir().unwrap();
    let m = extra.path().join("elsewhere");
    std::fs::write(&m, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o755)).unwrap();
    let yaml = "version: 1\nfrom: base\nsteps:\n  - module: elsewhere\n";
    errs(d.path(), yaml);
    let opts = ParseOptions {
        module_dirs: vec![extra.path().to_path_buf()],
    };
    let r = parse(yaml, &d.path().join("recipe.yaml"), &opts).unwrap();
    assert_eq!(r.steps[0].module.kind(), "elsewhere");
}

#[test]
fn odd_yaml_is_an_error_not_a_panic() {
    let d = dir_with_files();
    let cases = [
        "",
        "~",
        "[]",
        "version: 1\nfrom: base\nsteps:\n  - ~\n  - []\n  - run:\n  - {}\n",
        "version: 1\nfrom: base\nsteps:\n  - &a {run: x}\n  - *a\n  - *missing\n",
        "version: 1\nfrom: base\nsteps: [{run: !!binary aGVsbG8=}]\n",
        "version: 1\nfrom: base\nsteps: []\n---\nversion: 2\n",
        "version: !!str 1\nfrom: [a]\nsteps: 3\n",
        "version: 99999999999999999999999999999\nfrom: base\nsteps: []\n",
        "version: 1\nfrom: base\nsteps:\n  - users: [{name: a, uid: -1}]\n  - files: [{dst: /x, content: 1}]\n",
        "a: &a [*a]\n",
        "x: &x [&y [&z [1]]]\nversion: 1\n",
        "\t- bad indentation\n",
        "version: 1\nfrom: base\nsteps:\n  - module: ../../bin/sh\n  - module: ''\n",
        "version: 1\nfrom: base\nsteps:\n  - with: {a: 1}\n",
    ];
    for yaml in cases {
        let r = std::panic::catch_unwind(|| {
            parse(
                yaml,
                &d.path().join("recipe.yaml"),
                &ParseOptions::default(),
            )
        });
        let r = r.unwrap_or_else(|_| panic!("panicked on {yaml:?}"));
        if let Err(e) = &r {
            assert!(!e.items.is_empty(), "empty error list for {yaml:?}");
        }
    }
    // A billion-laughs style document is refused by the parser's budget, not expanded.
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    bomb.push_str("version: 1\nfrom: base\nsteps: []\n");
    let r = parse(
        &bomb,
        &d.path().join("recipe.yaml"),
        &ParseOptions::default(),
    );
    let e = r.unwrap_err();
    assert_eq!(e.items.len(), 1, "{e}");
}
