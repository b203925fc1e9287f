//! WASM plugin benchmarks, each beside a hand-written wasmtime baseline on
//! the same release-built component in the same run (compare ratios):
//!
//! * `wasm_add/*`: `add(i64, i64)` through the generated client vs a raw
//!   `TypedFunc<(i64, i64), (i64,)>` call of the same export.
//! * `wasm_echo/*`: `echo(Vec<u8>)` at 64 B, 4 KiB and 256 KiB vs a raw
//!   `TypedFunc<(&[u8],), (Vec<u8>,)>`.
//! * `wasm_load/*`: `WasmRuntime::open` with a warm cache vs
//!   `Component::deserialize_file` of a precompiled file.
//! * `wasm_instance/*`: a new client (store, instance, `plugin.create`) vs
//!   a raw `InstancePre::instantiate`; and a whole call in
//!   fresh-instance-per-call mode (pooled instance, `create`, `add`,
//!   `destroy`) vs a raw pooled `InstancePre::instantiate`.
//!
//! Results are recorded in `docs/src/performance.md`.

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fidius::wasm::{WasmRuntime, WasmSettings};
use fixture_api::CalculatorClient;
use wasmtime::component::{Component, Linker, ResourceTable, TypedFunc};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

struct Raw {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Raw {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn engine() -> Engine {
    let mut config = Config::new();
    config.wasm_component_model(true);
    Engine::new(&config).unwrap()
}

fn raw_linker(engine: &Engine, component: &Component) -> Linker<Raw> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    // The fixture component holds `Calculator` and `Greeter`; the calls
    // measured use none of their host functions besides `panicked`.
    for host in ["fidius:calculator/host@1.0.0", "fidius:greeter/host@3.0.0"] {
        linker
            .instance(host)
            .unwrap()
            .func_wrap("panicked", |_, (_,): (String,)| Ok(()))
            .unwrap();
    }
    linker.define_unknown_imports_as_traps(component).unwrap();
    linker
}

fn raw_store(engine: &Engine) -> Store<Raw> {
    Store::new(
        engine,
        Raw {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        },
    )
}

/// A raw instance of the fixture with its plugin created, and one typed
/// export of the Calculator interface.
fn raw_func<P, R>(
    engine: &Engine,
    component: &Component,
    name: &str,
) -> (Store<Raw>, TypedFunc<P, R>)
where
    P: wasmtime::component::ComponentNamedList + wasmtime::component::Lower,
    R: wasmtime::component::ComponentNamedList + wasmtime::component::Lift,
{
    let linker = raw_linker(engine, component);
    let mut store = raw_store(engine);
    let instance = linker.instantiate(&mut store, component).unwrap();
    let export = |store: &mut Store<Raw>, iface: &str, func: &str| {
        let parent = instance.get_export_index(&mut *store, None, iface).unwrap();
        instance
            .get_export_index(&mut *store, Some(&parent), func)
            .unwrap()
    };
    // `create-error` is a variant: call `create` dynamically.
    let create = export(&mut store, "fidius:calculator/plugin@1.0.0", "create");
    let create = instance.get_func(&mut store, create).unwrap();
    let mut out = [wasmtime::component::Val::Bool(false)];
    create
        .call(
            &mut store,
            &[
                wasmtime::component::Val::String("Basic".into()),
                wasmtime::component::Val::List(Vec::new()),
            ],
            &mut out,
        )
        .unwrap();
    let func = export(&mut store, "fidius:calculator/calculator@1.0.0", name);
    let func = instance.get_typed_func::<P, R>(&mut store, func).unwrap();
    (store, func)
}

fn runtime() -> WasmRuntime {
    let cache = fidius_tests::fixtures_target().join("wasm-bench-cache");
    WasmRuntime::new(WasmSettings::default().cache_dir(Some(cache))).unwrap()
}

fn bench_add(c: &mut Criterion) {
    let path = fidius_tests::release_wasm_fixture("fixture_plugins");
    let runtime = runtime();
    let client: CalculatorClient = runtime.open(&path).unwrap().load("Basic").unwrap();
    let engine = engine();
    let component = Component::from_file(&engine, &path).unwrap();
    let (mut store, add) = raw_func::<(i64, i64), (i64,)>(&engine, &component, "add");

    let mut group = c.benchmark_group("wasm_add");
    group.bench_function("raw_typed_func", |b| {
        b.iter(|| {
            add.call(&mut store, (black_box(20), black_box(22)))
                .unwrap()
                .0
        })
    });
    group.bench_function("fidius_client", |b| {
        b.iter(|| client.add(black_box(20), black_box(22)).unwrap())
    });
    group.finish();
}

fn bench_echo(c: &mut Criterion) {
    let path = fidius_tests::release_wasm_fixture("fixture_plugins");
    let runtime = runtime();
    let client: CalculatorClient = runtime.open(&path).unwrap().load("Basic").unwrap();
    let engine = engine();
    let component = Component::from_file(&engine, &path).unwrap();
    let (mut store, echo) = raw_func::<(&[u8],), (Vec<u8>,)>(&engine, &component, "echo");

    let mut group = c.benchmark_group("wasm_echo");
    for size in [64usize, 4 * 1024, 256 * 1024] {
        let payload = vec![0xa5u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(
            BenchmarkId::new("raw_typed_func", size),
            &payload,
            |b, p| b.iter(|| echo.call(&mut store, (black_box(p.as_slice()),)).unwrap().0),
        );
        // `echo` takes its `Vec` by value: the copy the caller hands over is
        // made outside the timing, as the raw call borrows its slice.
        group.bench_with_input(BenchmarkId::new("fidius_client", size), &payload, |b, p| {
            b.iter_batched(
                || p.clone(),
                |v| client.echo(black_box(v)).unwrap(),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

fn bench_load(c: &mut Criterion) {
    let path = fidius_tests::release_wasm_fixture("fixture_plugins");
    let runtime = runtime();
    // Warm the cache.
    drop(runtime.open(&path).unwrap());
    let engine = engine();
    let cwasm = fidius_tests::fixtures_target().join("wasm-bench-raw.cwasm");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&cwasm, engine.precompile_component(&bytes).unwrap()).unwrap();

    let mut group = c.benchmark_group("wasm_load");
    group.bench_function("raw_deserialize_file", |b| {
        // SAFETY: the file was just written by `precompile_component` of
        // this engine.
        b.iter(|| unsafe { Component::deserialize_file(&engine, &cwasm) }.unwrap())
    });
    group.bench_function("fidius_open_cached", |b| {
        b.iter(|| runtime.open(&path).unwrap())
    });
    group.finish();
}

fn bench_instance(c: &mut Criterion) {
    let path = fidius_tests::release_wasm_fixture("fixture_plugins");
    let runtime = runtime();
    let library = runtime.open(&path).unwrap();
    let engine = engine();
    let component = Component::from_file(&engine, &path).unwrap();
    let pre = raw_linker(&engine, &component)
        .instantiate_pre(&component)
        .unwrap();

    let mut group = c.benchmark_group("wasm_instance");
    group.bench_function("raw_instantiate_pre", |b| {
        b.iter(|| {
            let mut store = raw_store(&engine);
            pre.instantiate(&mut store).unwrap()
        })
    });
    group.bench_function("fidius_new_client", |b| {
        b.iter(|| library.load::<CalculatorClient>("Basic").unwrap())
    });

    // Fresh instance per call: pooled allocation on both sides.
    let mut config = Config::new();
    config.wasm_component_model(true).allocation_strategy(
        wasmtime::InstanceAllocationStrategy::Pooling(wasmtime::PoolingAllocationConfig::default()),
    );
    let pooled = Engine::new(&config).unwrap();
    let component = Component::from_file(&pooled, &path).unwrap();
    let pre = raw_linker(&pooled, &component)
        .instantiate_pre(&component)
        .unwrap();
    group.bench_function("raw_pooled_instantiate", |b| {
        b.iter(|| {
            let mut store = raw_store(&pooled);
            pre.instantiate(&mut store).unwrap()
        })
    });
    let per_call = WasmRuntime::new(WasmSettings::default().fresh_instance_per_call().cache_dir(
        Some(fidius_tests::fixtures_target().join("wasm-bench-cache")),
    ))
    .unwrap();
    let client: CalculatorClient = per_call.open(&path).unwrap().load("Basic").unwrap();
    group.bench_function("fidius_per_call_add", |b| {
        b.iter(|| client.add(black_box(20), black_box(22)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_add, bench_echo, bench_load, bench_instance);
criterion_main!(benches);
