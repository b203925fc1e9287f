//! `cargo fidius build` with nothing to rebuild beside a plain `cargo
//! build` with nothing to rebuild, on the example plugin crate. Both run as
//! processes, as a user runs them. Results are in
//! `docs/src/performance.md`.

use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};

fn workspace() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn run(cmd: &mut Command) {
    let status = cmd.current_dir(workspace()).status().unwrap();
    assert!(status.success(), "{cmd:?}");
}

fn bench_build(c: &mut Criterion) {
    let cargo = || Command::new(env!("CARGO"));
    let plain = || {
        let mut cmd = cargo();
        cmd.args(["build", "--quiet", "--lib", "-p", "image-filter-plugin"]);
        cmd
    };
    let fidius = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-fidius"));
        cmd.args(["fidius", "build", "--quiet", "-p", "image-filter-plugin"]);
        cmd
    };
    // Make both up to date first.
    run(&mut plain());
    run(&mut fidius());
    let mut group = c.benchmark_group("build_noop");
    group.sample_size(10);
    group.bench_function("cargo_build", |b| b.iter(|| run(&mut plain())));
    group.bench_function("cargo_fidius_build", |b| b.iter(|| run(&mut fidius())));
    group.finish();
}

criterion_group!(benches, bench_build);
criterion_main!(benches);
