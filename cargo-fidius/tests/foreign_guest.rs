//! A plugin written in Python: built from the interface's committed WIT by
//! componentize-py (a guest toolchain fidius does not drive), given its
//! metadata by `cargo fidius stamp`, then read by `inspect` and loaded and
//! called by a host through the same typed client as a Rust guest, in the
//! deny-all sandbox.

use std::path::{Path, PathBuf};
use std::process::Command;

use fidius::CallError;
use fixture_api::GreeterClient;

fn repo() -> &'static Path {
    fidius_tests::repo_root()
}

/// componentize-py: `$FIDIUS_COMPONENTIZE_PY` (which `cargo xtask test`
/// sets after installing it from PyPI), else the one on `PATH`.
fn componentize_py() -> PathBuf {
    let exe = std::env::var_os("FIDIUS_COMPONENTIZE_PY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("componentize-py"));
    let found = Command::new(&exe).arg("--version").output();
    assert!(
        found.as_ref().is_ok_and(|o| o.status.success()),
        "componentize-py is needed to build the Python guest: run `cargo xtask test`, which \
         installs it, or `pip install componentize-py` and put it on PATH (tried `{}`: {found:?})",
        exe.display()
    );
    exe
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?} failed:\n{stdout}\n{stderr}");
    format!("{stdout}{stderr}")
}

#[test]
fn a_python_guest_stamped_by_cargo_fidius_is_loaded_and_called() {
    let dir = fidius_tests::scratch("foreign_guest");
    let component = dir.join("greeter.wasm");
    run(Command::new(componentize_py())
        .arg("-d")
        .arg(repo().join("tests/fixtures/api/wit/greeter.wit"))
        .args(["-w", "greeter-plugin", "componentize", "-p"])
        .arg(repo().join("tests/fixtures/python-greeter"))
        .arg("app")
        .arg("-o")
        .arg(&component));

    // Without metadata, hosts refuse it and say how to add it.
    let err = fidius_tests::wasm_runtime().open(&component).unwrap_err();
    assert!(
        matches!(err, fidius::LoadError::NoComponentMetadata { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("cargo fidius stamp"), "{err}");

    let stamp = |plugin: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-fidius"));
        cmd.args(["fidius", "stamp"])
            .arg(&component)
            .args([
                "-p",
                "fixture-api",
                "--interface",
                "Greeter",
                "--plugin",
                plugin,
            ])
            .arg("--manifest-path")
            .arg(repo().join("tests/fixtures/Cargo.toml"))
            .arg("--target-dir")
            .arg(fidius_tests::fixtures_target());
        cmd
    };
    let stamped = run(&mut stamp("PyGreeter"));
    assert!(
        stamped.contains("plugin PyGreeter of Greeter v3, hash 0xe5c86588c6aa44b9"),
        "{stamped}"
    );
    // Once only.
    let again = stamp("PyGreeter").output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already has fidius metadata"),
        "{again:?}"
    );

    let inspected = run(Command::new(env!("CARGO_BIN_EXE_cargo-fidius"))
        .args(["fidius", "inspect"])
        .arg(&component));
    assert!(inspected.contains("Greeter/PyGreeter"), "{inspected}");
    assert!(inspected.contains("fn greet(&str)->String"), "{inspected}");

    // The host's typed client, as for a Rust guest; the Python guest has no
    // `fast` shortcut, so the runtime calls its typed WIT function.
    let library = fidius_tests::wasm_runtime().open(&component).unwrap();
    let greeter: GreeterClient = library.load("PyGreeter").unwrap();
    assert_eq!(
        greeter.greet("fidius"),
        Ok("Hello from Python, fidius!".to_owned())
    );
    // A Python exception traps the guest: a typed error, and the next call
    // runs on a fresh instance.
    let err = greeter.greet("").unwrap_err();
    assert!(
        matches!(err, CallError::Panic { .. } | CallError::Trapped { .. }),
        "{err:?}"
    );
    assert_eq!(
        greeter.greet("again"),
        Ok("Hello from Python, again!".to_owned())
    );
    let _ = std::fs::remove_dir_all(&dir);
}
