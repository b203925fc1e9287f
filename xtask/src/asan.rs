//! `cargo xtask asan`: the native call and stream tests built with
//! AddressSanitizer on the nightly toolchain (the rest of the project
//! stays on the pinned stable), in a target directory of their own. The
//! host side (the runtime, the typed clients, the test code) is
//! instrumented; the fixture plugin libraries are the ordinary builds
//! (an instrumented library needs the sanitizer's runtime from the
//! executable, which Rust does not export).

use crate::run::{cargo, status, target_dir};

/// `(test binary, filter)`: the native tests of each.
const TESTS: &[(&str, Option<&str>)] = &[
    ("native", None),
    ("configured", None),
    ("streams", Some("native::")),
    ("semantics", Some("native::")),
    ("stream_stress", Some("native_")),
];

pub(crate) fn asan() -> Result<(), String> {
    crate::fuzz::require_nightly()?;
    let fixtures = crate::tasks::build_fixtures()?;
    // The sanitizer needs an explicit target (so that build scripts and
    // proc macros, built for the host without it, stay apart).
    let host = crate::fuzz::host_triple()?;
    for (name, filter) in TESTS {
        let mut test = cargo();
        test.args(["test", "--package", "fidius-tests", "--target", &host])
            .args(["--test", name, "--target-dir"])
            .arg(target_dir().join("asan"))
            .arg("--")
            .args(filter.iter())
            .env("RUSTUP_TOOLCHAIN", "nightly")
            .env("RUSTFLAGS", "-Zsanitizer=address")
            .env("FIDIUS_FIXTURES_DIR", &fixtures)
            // Leaks are memcheck's job (`cargo xtask memcheck`), which
            // knows the toolchain's own; here: invalid accesses.
            .env("ASAN_OPTIONS", "detect_leaks=0");
        status(test).map_err(|e| format!("AddressSanitizer, `{name}` tests: {e}"))?;
    }
    Ok(())
}
