//! The same `Polyglot` plugin written in Rust, JavaScript, C, Python and Go
//! (`tests/fixtures/polyglot`, `tests/fixtures/guests/`), each beside a
//! hand-written wasmtime baseline calling the same export of the same
//! component in the same run (compare ratios):
//!
//! * `guest_add/<lang>/*`: `add(u32, u32)` through the generated client vs
//!   a raw `TypedFunc<(u32, u32), (u32,)>`.
//! * `guest_echo/<lang>/*`: `echo(Vec<u8>)` of 4 KiB vs a raw
//!   `TypedFunc<(&[u8],), (Vec<u8>,)>`.
//! * `guest_stream/<lang>`: all items of `count(100_000)`, a server stream
//!   of `u64`.
//!
//! The guests come from `$FIDIUS_GUESTS_DIR` (`cargo xtask bench` and
//! `cargo xtask test` build them with `cargo fidius package`); the Rust
//! one is the release build of the fixture. Figures are in
//! `docs/src/performance.md`.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use fidius::wasm::{WasmRuntime, WasmSettings};
use fixture_api::{PolyConfig, PolyHost, PolyglotClient};
use wasmtime::component::{Component, Linker, ResourceTable, TypedFunc, Val};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

const GUESTS: &[(&str, &str, &str)] = &[
    ("rust", "", "RustPolyglot"),
    ("js", "polyglot-js", "JsPolyglot"),
    ("c", "polyglot-c", "CPolyglot"),
    ("python", "polyglot-py", "PyPolyglot"),
    ("go", "polyglot-go", "GoPolyglot"),
];

/// The component of a guest (`project` empty: the Rust fixture).
fn component(project: &str) -> PathBuf {
    if project.is_empty() {
        return fidius_tests::release_wasm_fixture("fixture_polyglot");
    }
    let dir = std::env::var_os("FIDIUS_GUESTS_DIR").map(PathBuf::from).expect(
        "the guests are built by `cargo xtask bench` (or `cargo xtask test`), which sets FIDIUS_GUESTS_DIR",
    );
    let path = dir
        .join("fidius")
        .join(project)
        .join("wasm32-wasip2")
        .join(format!("{}.wasm", project.replace('-', "_")));
    assert!(path.is_file(), "no `{}`", path.display());
    path
}

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

/// A raw instance with its plugin created, and one typed export of the
/// `Polyglot` interface. The measured calls use no host function.
fn raw_func<P, R>(
    engine: &Engine,
    component: &Component,
    plugin: &str,
    name: &str,
) -> (Store<Raw>, TypedFunc<P, R>)
where
    P: wasmtime::component::ComponentNamedList + wasmtime::component::Lower,
    R: wasmtime::component::ComponentNamedList + wasmtime::component::Lift,
{
    let mut linker: Linker<Raw> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    stub_fidius_imports(engine, &mut linker, component);
    let mut store = Store::new(
        engine,
        Raw {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        },
    );
    let instance = linker.instantiate(&mut store, component).unwrap();
    let export = |store: &mut Store<Raw>, iface: &str, func: &str| {
        let parent = instance.get_export_index(&mut *store, None, iface).unwrap();
        instance
            .get_export_index(&mut *store, Some(&parent), func)
            .unwrap()
    };
    let create = export(&mut store, "fidius:polyglot/plugin@1.0.0", "create");
    let create = instance.get_func(&mut store, create).unwrap();
    let config = Val::Record(vec![
        ("greeting".into(), Val::String("Hello".into())),
        ("factor".into(), Val::U32(3)),
    ]);
    let mut out = [Val::Bool(false)];
    create
        .call(&mut store, &[Val::String(plugin.into()), config], &mut out)
        .unwrap();
    assert!(matches!(&out[0], Val::Result(Ok(_))), "{plugin}: {out:?}");
    let func = export(&mut store, "fidius:polyglot/polyglot@1.0.0", name);
    let func = instance.get_typed_func::<P, R>(&mut store, func).unwrap();
    (store, func)
}

/// The `fidius:*` imports (host functions, argument streams) as traps.
/// Not `define_unknown_imports_as_traps`, which would also shadow WASI
/// interfaces imported at another patch version than the linker's.
fn stub_fidius_imports(engine: &Engine, linker: &mut Linker<Raw>, component: &Component) {
    use wasmtime::component::types::ComponentItem;
    struct Stub;
    for (name, import) in component.component_type().imports(engine) {
        let ComponentItem::ComponentInstance(instance) = import.ty else {
            continue;
        };
        if !name.starts_with("fidius:") {
            continue;
        }
        let mut scope = linker.instance(name).unwrap();
        for (item, export) in instance.exports(engine) {
            match export.ty {
                ComponentItem::ComponentFunc(_) => scope
                    .func_new(item, |_, _, _, _| {
                        Err(wasmtime::format_err!("not in the bench"))
                    })
                    .unwrap(),
                ComponentItem::Resource(_) => scope
                    .resource(
                        item,
                        wasmtime::component::ResourceType::host::<Stub>(),
                        |_, _| Ok(()),
                    )
                    .unwrap(),
                _ => {}
            }
        }
    }
}

struct NoHost;

impl PolyHost for NoHost {
    fn lookup(&self, _: &str) -> Option<String> {
        None
    }
}

fn client(runtime: &WasmRuntime, path: &PathBuf, plugin: &str) -> PolyglotClient {
    runtime
        .open(path)
        .unwrap()
        .instance(plugin)
        .config(&PolyConfig {
            greeting: "Hello".into(),
            factor: 3,
        })
        .host(std::sync::Arc::new(NoHost) as std::sync::Arc<dyn PolyHost>)
        .build()
        .unwrap()
}

fn bench_guests(c: &mut Criterion) {
    let cache = fidius_tests::fixtures_target().join("wasm-bench-cache");
    let runtime = WasmRuntime::new(WasmSettings::default().cache_dir(Some(cache))).unwrap();
    let mut config = Config::new();
    config.wasm_component_model(true);
    let engine = Engine::new(&config).unwrap();
    let payload = vec![0xa5u8; 4096];
    for (lang, project, plugin) in GUESTS {
        let path = component(project);
        let client = client(&runtime, &path, plugin);
        let raw = Component::from_file(&engine, &path).unwrap();

        let (mut store, add) = raw_func::<(u32, u32), (u32,)>(&engine, &raw, plugin, "add");
        let mut group = c.benchmark_group(format!("guest_add/{lang}"));
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

        let mut group = c.benchmark_group(format!("guest_echo/{lang}"));
        group.throughput(Throughput::Bytes(payload.len() as u64));
        // A fresh instance every 20 000 calls (outside the timing), on both
        // sides: componentize-py and componentize-js guests keep every
        // argument until their instance is dropped (the `ManyCalls` rows of
        // docs/src/languages.md).
        group.bench_function("raw_typed_func", |b| {
            b.iter_custom(|iters| {
                let mut total = std::time::Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let (mut store, echo) =
                        raw_func::<(&[u8],), (Vec<u8>,)>(&engine, &raw, plugin, "echo");
                    let n = (iters - done).min(20_000);
                    let start = std::time::Instant::now();
                    for _ in 0..n {
                        black_box(
                            echo.call(&mut store, (black_box(payload.as_slice()),))
                                .unwrap(),
                        );
                    }
                    total += start.elapsed();
                    done += n;
                }
                total
            })
        });
        // `echo` takes its `Vec` by value: the copy is made outside the
        // timing, as the raw call borrows its slice (and so is the fresh
        // client every 20 000 calls).
        let fresh = std::cell::RefCell::new((self::client(&runtime, &path, plugin), 0u32));
        group.bench_function("fidius_client", |b| {
            b.iter_batched(
                || {
                    let mut fresh = fresh.borrow_mut();
                    fresh.1 += 1;
                    if fresh.1 == 20_000 {
                        *fresh = (self::client(&runtime, &path, plugin), 0);
                    }
                    payload.clone()
                },
                |v| fresh.borrow().0.echo(black_box(v)).unwrap(),
                BatchSize::PerIteration,
            )
        });
        group.finish();

        let mut group = c.benchmark_group("guest_stream");
        group.throughput(Throughput::Elements(100_000));
        group.sample_size(10);
        group.bench_function(*lang, |b| {
            b.iter(|| {
                let total: u64 = client.count(100_000).unwrap().map(Result::unwrap).sum();
                assert_eq!(total, 4_999_950_000);
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_guests);
criterion_main!(benches);
