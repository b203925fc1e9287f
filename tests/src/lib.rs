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
/// when `cargo xtask test` already built it, otherwise
/// `<target>/fixtures`, built here once per process.
pub fn fixtures_target() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("FIDIUS_FIXTURES_DIR") {
            return PathBuf::from(dir);
        }
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target"))
            .join("fixtures");
        build_fixtures(&target);
        target
    })
}

/// Builds the fixture workspace into `target_dir` (debug profile).
pub fn build_fixtures(target_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .arg("build")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(repo_root().join("tests/fixtures/Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .status()
        .expect("failed to run cargo to build the fixtures");
    assert!(status.success(), "building tests/fixtures failed: {status}");
}

/// Path of fixture library `crate_name` (e.g. `fixture_plugins`).
pub fn fixture(crate_name: &str) -> PathBuf {
    use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
    fixtures_target()
        .join("debug")
        .join(format!("{DLL_PREFIX}{crate_name}{DLL_SUFFIX}"))
}

/// A scratch directory under the target dir, unique per test.
pub fn scratch(test: &str) -> PathBuf {
    let dir = fixtures_target().join("scratch").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}
