//! Shared helpers for the end-to-end tests and benchmarks: locating (and,
//! if needed, building once) the fixture plugin libraries in
//! `tests/fixtures/`.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Root of this repository.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
}

/// Directory the fixture workspace is built into: `$FIDIUS_FIXTURES_DIR`
/// when `cargo xtask test` already built it, otherwise `<target>/fixtures`.
pub fn fixtures_target() -> PathBuf {
    if let Some(dir) = std::env::var_os("FIDIUS_FIXTURES_DIR") {
        return PathBuf::from(dir);
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("fixtures")
}

/// Builds the fixture workspace (`release` or the debug profile) into
/// `target_dir`. Cargo makes this a no-op when nothing changed.
pub fn build_fixtures(target_dir: &Path, release: bool) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(repo_root().join("tests/fixtures/Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    if release {
        cmd.arg("--release");
    }
    let status = cmd
        .status()
        .expect("failed to run cargo to build the fixtures");
    assert!(status.success(), "building tests/fixtures failed: {status}");
}

fn library_path(profile: &str, crate_name: &str) -> PathBuf {
    use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
    fixtures_target()
        .join(profile)
        .join(format!("{DLL_PREFIX}{crate_name}{DLL_SUFFIX}"))
}

/// Path of debug fixture library `crate_name` (e.g. `fixture_plugins`),
/// built once per process unless `cargo xtask test` already did.
pub fn fixture(crate_name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        if std::env::var_os("FIDIUS_FIXTURES_DIR").is_none() {
            build_fixtures(&fixtures_target(), false);
        }
    });
    library_path("debug", crate_name)
}

/// Path of the release build of fixture library `crate_name`, for
/// benchmarks (compared against release-built baselines).
pub fn release_fixture(crate_name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| build_fixtures(&fixtures_target(), true));
    library_path("release", crate_name)
}

/// A scratch directory under the target dir, unique per test.
pub fn scratch(test: &str) -> PathBuf {
    let dir = fixtures_target().join("scratch").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}
