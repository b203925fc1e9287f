//! Native plugin benchmarks. Every figure has its baseline measured in the
//! same run (these machines are noisy; compare ratios, not absolutes):
//!
//! * `add/*`: `add(i64, i64) -> i64` through the generated proxy into the
//!   cdylib vs a direct `dyn Calculator` call of the same implementation.
//! * `echo/*`: `echo(Vec<u8>) -> Vec<u8>` through the proxy vs one copy of
//!   the payload, at 64 B, 4 KiB and 256 KiB.
//! * `load/*`: validate + dlopen + registry + instance vs a plain
//!   `dlopen`/`dlclose` of the same file, and the validation alone.
//!
//! Results are recorded in `docs/src/performance.md`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fidius::PluginLibrary;
use fixture_api::{Calculator, CalculatorClient};
use fixture_plugins::Basic;

fn bench_add(c: &mut Criterion) {
    let lib = PluginLibrary::open(fidius_tests::release_fixture("fixture_plugins")).unwrap();
    let client: CalculatorClient = lib.load("Basic").unwrap();
    let direct: Box<dyn Calculator> = Box::new(Basic::default());
    let direct: &dyn Calculator = black_box(&*direct);

    let mut group = c.benchmark_group("add");
    group.bench_function("dyn_trait", |b| {
        b.iter(|| direct.add(black_box(20), black_box(22)))
    });
    group.bench_function("fidius_proxy", |b| {
        b.iter(|| client.add(black_box(20), black_box(22)).unwrap())
    });
    group.finish();
}

fn bench_echo(c: &mut Criterion) {
    let lib = PluginLibrary::open(fidius_tests::release_fixture("fixture_plugins")).unwrap();
    let client: CalculatorClient = lib.load("Basic").unwrap();
    let mut group = c.benchmark_group("echo");
    for size in [64usize, 4 * 1024, 256 * 1024] {
        let payload = vec![0xa5u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("one_copy", size), &payload, |b, p| {
            b.iter(|| black_box(p.to_vec()))
        });
        // The proxy takes the `Vec` by value like the trait, so the host's
        // clone is part of the call, as it would be for the caller.
        group.bench_with_input(BenchmarkId::new("fidius_proxy", size), &payload, |b, p| {
            b.iter(|| client.echo(black_box(p.clone())).unwrap())
        });
        group.bench_with_input(
            BenchmarkId::new("borrowed_count_bytes", size),
            &payload,
            |b, p| b.iter(|| client.count_bytes(black_box(p)).unwrap()),
        );
    }
    group.finish();
}

fn bench_load(c: &mut Criterion) {
    let path = fidius_tests::release_fixture("fixture_plugins");
    let mut group = c.benchmark_group("load");
    group.bench_function("plain_dlopen", |b| {
        b.iter(|| {
            // SAFETY: the fixture library is ours and has no unsound
            // initialisers.
            let lib = unsafe { libloading::Library::new(&path) }.unwrap();
            drop(black_box(lib));
        })
    });
    group.bench_function("fidius_validate_only", |b| {
        b.iter(|| black_box(PluginLibrary::open(&path).unwrap()))
    });
    group.bench_function("fidius_open_and_load", |b| {
        b.iter(|| {
            let lib = PluginLibrary::open(&path).unwrap();
            let client: CalculatorClient = lib.load("Basic").unwrap();
            drop(black_box(client));
        })
    });
    group.finish();
}

criterion_group!(benches, bench_add, bench_echo, bench_load);
criterion_main!(benches);
