//! Python plugin benchmarks, each beside a hand-written pyo3 baseline
//! calling the same Python method of the same class in the same run
//! (compare ratios). Both sides take the GIL per call, as a host calling
//! from its own threads must.
//!
//! * `python_add/*`: `add(i64, i64)` through the generated client vs
//!   `Python::attach` + `call1((a, b))` + `extract::<i64>()`.
//! * `python_echo/*`: `echo(Vec<u8>)` with 4 KiB vs `PyBytes::new` +
//!   `call1` + copying the returned `bytes` out.
//! * `python_stream/*`: summing 10 000 `u64` items of a returned stream
//!   (a Python `range` iterator) vs iterating it with pyo3 and extracting
//!   each item.
//!
//! Results are recorded in `docs/src/performance.md`.

use std::ffi::CString;
use std::hint::black_box;
use std::path::PathBuf;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use fidius::python::PythonLibrary;
use fixture_api::{CalculatorClient, StreamsClient};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyModule};

fn module_path() -> PathBuf {
    fidius_tests::repo_root().join("tests/fixtures/python/bench/bench.py")
}

/// An instance of class `class` of the bench module, loaded by hand (the
/// fidius runtime has put the `fidius` SDK in `sys.modules` by then).
fn raw_instance(class: &str) -> Py<PyAny> {
    let source = std::fs::read_to_string(module_path()).unwrap();
    Python::attach(|py| {
        let code = CString::new(source).unwrap();
        let module = PyModule::from_code(py, &code, c"bench.py", c"fidius_bench_raw").unwrap();
        module.getattr(class).unwrap().call0().unwrap().unbind()
    })
}

fn bench_python(c: &mut Criterion) {
    let lib = PythonLibrary::open(module_path()).unwrap();
    let calc: CalculatorClient = lib.load("Bench").unwrap();
    let streams: StreamsClient = lib.load("BenchStreams").unwrap();
    let raw = raw_instance("Bench");
    let raw_streams = raw_instance("BenchStreams");
    let (add, echo, range) = Python::attach(|py| {
        (
            raw.getattr(py, "add").unwrap(),
            raw.getattr(py, "echo").unwrap(),
            raw_streams.getattr(py, "range").unwrap(),
        )
    });

    let mut group = c.benchmark_group("python_add");
    group.bench_function("raw_pyo3", |b| {
        b.iter(|| {
            Python::attach(|py| {
                add.bind(py)
                    .call1((black_box(40i64), black_box(2i64)))
                    .unwrap()
                    .extract::<i64>()
                    .unwrap()
            })
        })
    });
    group.bench_function("fidius", |b| {
        b.iter(|| calc.add(black_box(40), black_box(2)).unwrap())
    });
    group.finish();

    let data = vec![7u8; 4096];
    let mut group = c.benchmark_group("python_echo");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("raw_pyo3/4096", |b| {
        b.iter(|| {
            Python::attach(|py| {
                let bytes = PyBytes::new(py, black_box(&data));
                let back = echo.bind(py).call1((bytes,)).unwrap();
                back.cast_into::<PyBytes>().unwrap().as_bytes().to_vec()
            })
        })
    });
    group.bench_function("fidius/4096", |b| {
        b.iter_batched(
            || data.clone(),
            |data| calc.echo(data).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    const ITEMS: u64 = 10_000;
    let mut group = c.benchmark_group("python_stream");
    group.throughput(Throughput::Elements(ITEMS));
    group.bench_function("raw_pyo3", |b| {
        b.iter(|| {
            Python::attach(|py| {
                let items = range.bind(py).call1((0u64, black_box(ITEMS))).unwrap();
                let mut sum = 0u64;
                for item in items.try_iter().unwrap() {
                    sum += item.unwrap().extract::<u64>().unwrap();
                }
                sum
            })
        })
    });
    group.bench_function("fidius", |b| {
        b.iter(|| {
            streams
                .range(0, black_box(ITEMS))
                .unwrap()
                .map(Result::unwrap)
                .sum::<u64>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_python);
criterion_main!(benches);
