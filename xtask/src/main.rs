//! `cargo xtask <task>`: the project's task runner (the cargo-xtask
//! pattern). Plain std, so it builds in seconds on a fresh machine.
//!
//! * `demo`:  build the example plugin library and run the example host on it.
//! * `test`:  everything CI checks, in order: rustup target set-up
//!   (and componentize-py from PyPI, for the Python guest test),
//!   formatting, the fixture plugins, the whole test suite and doc tests,
//!   `fidius-guest` for wasm32-wasip2, clippy, the demo.
//! * `bench`: the criterion benchmarks (extra arguments go to criterion).
//! * `fuzz`:  the cargo-fuzz targets on the nightly toolchain
//!   (`--seconds N` each, default 60; target names to pick some).
//! * `soak`:  the long soak in release mode (`--calls N`, `--threads N`):
//!   the hostile mix, then good calls only, and their figures.
//! * `hostile-corpus DIR`: writes the hostile corpus into `DIR`.
//! * `memcheck`: the native end-to-end tests under valgrind's memcheck.
//! * `asan`: the native call and stream tests with AddressSanitizer
//!   (nightly).
#![forbid(unsafe_code)]

mod asan;
mod fuzz;
mod memcheck;
mod run;
mod tasks;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    let result = match task.as_deref() {
        Some("demo") => tasks::demo(),
        Some("test") => tasks::test(),
        Some("bench") => tasks::bench(&rest),
        Some("fuzz") => fuzz::fuzz(&rest),
        Some("soak") => tasks::soak(&rest),
        Some("hostile-corpus") => tasks::hostile_corpus(&rest),
        Some("memcheck") => memcheck::memcheck(),
        Some("asan") => asan::asan(),
        Some("-h" | "--help") | None => {
            eprintln!(
                "usage: cargo xtask <demo|test|bench [criterion args]|fuzz [--seconds N] [TARGET ...]|soak [--calls N] [--threads N]|hostile-corpus DIR|memcheck|asan>"
            );
            return if task.is_some() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
        Some(other) => Err(format!(
            "unknown task `{other}`; expected demo, test, bench, fuzz, soak, hostile-corpus, memcheck or asan"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
