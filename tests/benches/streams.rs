//! Stream throughput and configured-instance calls. Every figure has its
//! baseline measured in the same run:
//!
//! * `stream_u64/*`: 100 000 `u64` items plugin → host (`range`) and host →
//!   plugin (`sum`) vs an in-process iterator doing the same work, plain and
//!   behind a `Box<dyn Iterator>`.
//! * `stream_1k/*`: 10 000 1 KiB `Vec<u8>` items each way vs an in-process
//!   iterator allocating and consuming the same items.
//! * `configured/*`: a scalar call on a configured instance (`Scaler::apply`
//!   on `Affine`) beside a plain call on an unconfigured one
//!   (`Calculator::add` on `Basic`).
//!
//! Results are recorded in `docs/src/performance.md`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fidius::PluginLibrary;
use fixture_api::{AffineConfig, CalculatorClient, ScalerClient, StreamsClient};

const SMALL: u64 = 100_000;
const LARGE: u64 = 10_000;

fn streamer() -> StreamsClient {
    PluginLibrary::open(fidius_tests::release_fixture("fixture_features"))
        .unwrap()
        .load("Streamer")
        .unwrap()
}

fn bench_u64(c: &mut Criterion) {
    let s = streamer();
    let mut group = c.benchmark_group("stream_u64");
    group.throughput(Throughput::Elements(SMALL));
    group.bench_function("in_process_iterator", |b| {
        b.iter(|| (0..black_box(SMALL)).map(black_box).sum::<u64>())
    });
    group.bench_function("boxed_dyn_iterator", |b| {
        b.iter(|| {
            let iter: Box<dyn Iterator<Item = u64> + Send> = Box::new(0..black_box(SMALL));
            black_box(iter).map(black_box).sum::<u64>()
        })
    });
    group.bench_function("plugin_to_host", |b| {
        b.iter(|| {
            s.range(0, black_box(SMALL))
                .unwrap()
                .map(|r| black_box(r.unwrap()))
                .sum::<u64>()
        })
    });
    group.bench_function("host_to_plugin", |b| {
        b.iter(|| s.sum(0..black_box(SMALL)).unwrap())
    });
    group.finish();
}

fn bench_1k(c: &mut Criterion) {
    let s = streamer();
    let mut group = c.benchmark_group("stream_1k");
    group.throughput(Throughput::Bytes(LARGE * 1024));
    group.bench_function("in_process_iterator", |b| {
        b.iter(|| {
            (0..black_box(LARGE))
                .map(|i| black_box(vec![i as u8; 1024]))
                .map(|v| v.len() as u64)
                .sum::<u64>()
        })
    });
    group.bench_function("plugin_to_host", |b| {
        b.iter(|| {
            s.chunks(black_box(LARGE), 1024)
                .unwrap()
                .map(|r| r.unwrap().len() as u64)
                .sum::<u64>()
        })
    });
    group.bench_function("host_to_plugin", |b| {
        b.iter(|| {
            s.total_len((0..black_box(LARGE)).map(|i| vec![i as u8; 1024]))
                .unwrap()
        })
    });
    group.finish();
}

fn bench_configured(c: &mut Criterion) {
    let features = PluginLibrary::open(fidius_tests::release_fixture("fixture_features")).unwrap();
    let configured: ScalerClient = features
        .configure(
            "Affine",
            &AffineConfig {
                mul: 2,
                add: 1,
                label: "bench".into(),
            },
        )
        .unwrap();
    let plugins = PluginLibrary::open(fidius_tests::release_fixture("fixture_plugins")).unwrap();
    let plain: CalculatorClient = plugins.load("Basic").unwrap();
    let mut group = c.benchmark_group("configured");
    group.bench_function("plain_call", |b| {
        b.iter(|| plain.add(black_box(20), black_box(22)).unwrap())
    });
    group.bench_function("configured_call", |b| {
        b.iter(|| configured.apply(black_box(20)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_u64, bench_1k, bench_configured);
criterion_main!(benches);
