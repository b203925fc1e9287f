//! `cargo fidius` through the real binary.

use std::process::Command;

fn cargo_fidius() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-fidius"));
    cmd.arg("fidius");
    cmd
}

#[test]
fn inspect_lists_plugins_and_methods_without_loading() {
    let lib = fidius_tests::fixture("fixture_plugins");
    let out = cargo_fidius().arg("inspect").arg(&lib).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let expected_tail = "\
Calculator/Basic
  interface: Calculator v1 (hash 0x90b311f6c432a8c6)
  abi:       1 (wire 1), built with fidius 0.1.0
  methods:
    fn add(i64,i64)->i64
    fn echo(Vec<u8>)->Vec<u8>
";
    assert!(stdout.contains(": 3 plugin(s)"), "{stdout}");
    assert!(stdout.contains(expected_tail), "{stdout}");
    assert!(
        stdout.contains("Greeter/Hello\n  interface: Greeter v3"),
        "{stdout}"
    );
}

#[test]
fn inspect_reports_a_typed_error_and_exit_code() {
    let lib = fidius_tests::fixture("fixture_no_meta");
    let out = cargo_fidius().arg("inspect").arg(&lib).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("error: failed to inspect"), "{stderr}");
    assert!(
        stderr.contains("is not a fidius plugin library"),
        "{stderr}"
    );
}

#[test]
fn inspect_shows_optional_methods_metadata_config_and_host() {
    let out = cargo_fidius()
        .arg("inspect")
        .arg(fidius_tests::fixture("evolution_plugin_v2"))
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("Shapes/Triangle\n  interface: Shapes v2 (hash 0x"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  meta:      since_v2 = \"describe, corners\"\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("    fn area(f64)->f64  {unit = \"square metres\"}\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "    fn describe(u8)->String  [optional since 2, implemented]  {cost = \"low\"}\n    fn corners()->u32  [optional since 2, not implemented]\n"
        ),
        "{stdout}"
    );

    let out = cargo_fidius()
        .arg("inspect")
        .arg(fidius_tests::fixture("fixture_features"))
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("Scaler/Affine\n"), "{stdout}");
    assert!(stdout.contains("  config:    AffineConfig\n"), "{stdout}");
    assert!(
        stdout.contains("Scripted/Script\n  interface: Scripted v1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  host:      Services v1 (hash 0x"),
        "{stdout}"
    );
}
