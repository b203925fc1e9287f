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

/// Wraps an uncompressed tar stream in the `.fidpkg` gzip framing (see
/// `docs/src/fidpkg.md`): the fixed header with an `FD` extra field holding
/// the CRC-32 of the deflate data and trailer. For tests that build
/// packages byte by byte.
pub fn fidpkg_frame(tar: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(tar).expect("deflate into memory");
    let mut body = encoder.finish().expect("deflate into memory");
    let mut crc = flate2::Crc::new();
    crc.update(tar);
    body.extend_from_slice(&crc.sum().to_le_bytes());
    body.extend_from_slice(&(tar.len() as u32).to_le_bytes());
    let mut framed = b"\x1f\x8b\x08\x04\0\0\0\0\0\xff\x08\0FD\x04\0".to_vec();
    framed.extend_from_slice(&fidpkg_check(&body));
    framed.extend_from_slice(&body);
    framed
}

/// The `FD` check value of the bytes after a package's header.
pub fn fidpkg_check(rest: &[u8]) -> [u8; 4] {
    let mut crc = flate2::Crc::new();
    crc.update(rest);
    crc.sum().to_le_bytes()
}

/// The uncompressed tar stream of a `.fidpkg`.
pub fn fidpkg_tar(package: &[u8]) -> Vec<u8> {
    use std::io::Read as _;
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(package)
        .read_to_end(&mut tar)
        .expect("a valid package");
    tar
}
