//! The soak: threads calling plugins of every backend at once, with good
//! calls mixed with everything that can go wrong (plugin errors, panics,
//! traps, deadline and memory-cap hits, exceptions, streams dropped half
//! way, configured instances created and dropped, libraries opened and
//! closed), then checks that every client still answers, no thread is
//! stuck, and the process's resident memory and open file descriptors are
//! back within a bound of where they started.
//!
//! The short form is `tests/tests/soak.rs` (part of the test command); the
//! long form is `cargo xtask soak [--calls N] [--threads N]`, which runs
//! the `soak` binary in release mode and prints the figures the
//! reliability page reports.

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use fidius::python::PythonLibrary;
use fidius::wasm::{WasmLibrary, WasmRuntime, WasmSettings};
use fidius::{CallError, PluginLibrary};
use fixture_api::{
    AffineConfig, CalculatorClient, HostileClient, HostileConfig, ScalerClient, StreamsClient,
};

use crate::Backend;

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Threads calling at once; thread `t` calls the backend
    /// `BACKENDS[t % 3]`.
    pub threads: usize,
    /// Calls in all (every operation counts as one call, whatever it does
    /// inside).
    pub calls: u64,
    /// With the hostile mix, or good calls only (the baseline the cost of
    /// containment is measured against).
    pub hostile: bool,
}

/// The backends the soak calls.
pub const BACKENDS: [Backend; 3] = [Backend::Native, Backend::Wasm, Backend::Python];

/// The deadline of the WASM and Python instances, which the spinning
/// calls hit.
pub const DEADLINE: Duration = Duration::from_millis(200);

/// The memory cap of the WASM instances, which the growing calls hit.
/// Small, so that a growing call reaches it in a few milliseconds, far
/// inside the deadline even with 16 threads on 2 cores.
pub const MEMORY_LIMIT: u64 = 8 << 20;

/// How long the soak may take in all before a thread counts as stuck.
const STUCK: Duration = Duration::from_secs(30 * 60);

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// The settings it ran with.
    pub settings: Settings,
    /// Per backend: calls made and the wall time of its slowest thread.
    pub backends: Vec<(Backend, u64, Duration)>,
    /// Calls per operation kind, over all threads.
    pub operations: Vec<(&'static str, u64)>,
    /// Resident memory (KiB) after the warm-up round and at the end.
    pub rss_kib: (u64, u64),
    /// Open file descriptors after the warm-up round and at the end.
    pub fds: (usize, usize),
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

impl Report {
    /// Calls per second of `backend`.
    pub fn rate(&self, backend: Backend) -> f64 {
        self.backends
            .iter()
            .find(|(b, ..)| *b == backend)
            .map_or(0.0, |(_, calls, time)| *calls as f64 / time.as_secs_f64())
    }
}

/// The operations, in the order a thread cycles through them; the hostile
/// ones come once per cycle, the good ones fill the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Echo,
    Shout,
    PluginError,
    Panic,
    HalfStream,
    Configured,
    Reopen,
    Spin,
    Grow,
    Recurse,
}

const CYCLE: usize = 64;

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Add => "good: add",
            Op::Echo => "good: echo 4 KiB",
            Op::Shout => "good: shout",
            Op::PluginError => "plugin error",
            Op::Panic => "panic / exception",
            Op::HalfStream => "stream dropped half way",
            Op::Configured => "configured instance created and dropped",
            Op::Reopen => "library opened and closed",
            Op::Spin => "deadline hit",
            Op::Grow => "memory cap hit",
            Op::Recurse => "stack overflow",
        }
    }

    /// The operation at `i` of a cycle on `backend`.
    fn at(i: u64, backend: Backend, hostile: bool) -> Op {
        let slot = (i % CYCLE as u64) as usize;
        let good = [Op::Add, Op::Echo, Op::Shout][slot % 3];
        if !hostile {
            return good;
        }
        let sandboxed = backend != Backend::Native;
        match slot {
            1 | 17 | 33 | 49 => Op::PluginError,
            5 | 37 => Op::Panic,
            9 | 41 => Op::HalfStream,
            13 | 45 => Op::Configured,
            21 => Op::Reopen,
            25 if sandboxed => Op::Spin,
            29 if backend == Backend::Wasm => Op::Grow,
            53 if backend == Backend::Wasm => Op::Recurse,
            _ => good,
        }
    }
}

/// The libraries the threads share.
struct Libraries {
    native: Arc<PluginLibrary>,
    native_features: Arc<PluginLibrary>,
    runtime: Arc<WasmRuntime>,
    wasm: Arc<WasmLibrary>,
    wasm_features: Arc<WasmLibrary>,
    wasm_hostile: Arc<WasmLibrary>,
    python: Arc<PythonLibrary>,
    python_features: Arc<PythonLibrary>,
}

impl Libraries {
    fn open() -> Result<Self, String> {
        fn e(what: &str) -> impl Fn(fidius::LoadError) -> String + '_ {
            move |e| format!("open {what}: {e}")
        }
        let runtime = WasmRuntime::new(
            WasmSettings::default()
                .deadline(DEADLINE)
                .memory_limit(MEMORY_LIMIT)
                .cache_dir(Some(crate::fixtures_target().join("wasm-cache"))),
        )
        .map_err(|e| format!("wasmtime engine: {e}"))?;
        let wasm = |name: &str| {
            runtime
                .open(crate::wasm_fixture(name))
                .map(Arc::new)
                .map_err(e(name))
        };
        Ok(Self {
            native: Arc::new(
                PluginLibrary::open(crate::fixture("fixture_plugins")).map_err(e("plugins"))?,
            ),
            native_features: Arc::new(
                PluginLibrary::open(crate::fixture("fixture_features")).map_err(e("features"))?,
            ),
            wasm: wasm("fixture_plugins")?,
            wasm_features: wasm("fixture_features")?,
            wasm_hostile: wasm("fixture_hostile")?,
            runtime: Arc::new(runtime),
            python: Arc::new(
                PythonLibrary::open(crate::python_fixture("fixture_plugins"))
                    .map_err(e("calculator.py"))?,
            ),
            python_features: Arc::new(
                PythonLibrary::open(crate::python_fixture("fixture_features"))
                    .map_err(e("features.py"))?,
            ),
        })
    }
}

/// One thread's clients.
struct Clients {
    backend: Backend,
    calculator: CalculatorClient,
    streams: StreamsClient,
    hostile: Option<HostileClient>,
}

fn hostile_config() -> HostileConfig {
    HostileConfig {
        label: "soak".into(),
    }
}

fn affine() -> AffineConfig {
    AffineConfig {
        mul: 3,
        add: 1,
        label: "soak".into(),
    }
}

impl Clients {
    fn new(libs: &Libraries, backend: Backend) -> Result<Self, String> {
        let e = |e: fidius::LoadError| format!("{backend:?}: {e}");
        Ok(match backend {
            Backend::Native => Self {
                backend,
                calculator: libs.native.load("Basic").map_err(e)?,
                streams: libs.native_features.load("Streamer").map_err(e)?,
                hostile: None,
            },
            Backend::Python => Self {
                backend,
                calculator: libs.python.load("Basic").map_err(e)?,
                streams: libs.python_features.load("Streamer").map_err(e)?,
                hostile: Some(
                    libs.python
                        .instance("Guest")
                        .config(&hostile_config())
                        .deadline(DEADLINE)
                        .build()
                        .map_err(e)?,
                ),
            },
            _ => Self {
                backend,
                calculator: libs.wasm.load("Basic").map_err(e)?,
                streams: libs.wasm_features.load("Streamer").map_err(e)?,
                hostile: Some(
                    libs.wasm_hostile
                        .instance("Guest")
                        .config(&hostile_config())
                        .build()
                        .map_err(e)?,
                ),
            },
        })
    }

    /// Runs `op` (the `i`-th call) and checks its outcome exactly.
    fn run(&self, libs: &Libraries, op: Op, i: u64) -> Result<(), String> {
        let backend = self.backend;
        let unexpected = |what: &dyn std::fmt::Debug| Err(format!("{backend:?} {op:?}: {what:?}"));
        let hostile = || self.hostile.as_ref().ok_or("no hostile client");
        match op {
            Op::Add => {
                let a = i as i64;
                match self.calculator.add(a, 1) {
                    Ok(sum) if sum == a + 1 => Ok(()),
                    other => unexpected(&other),
                }
            }
            Op::Echo => {
                let data = vec![(i % 251) as u8; 4096];
                match self.calculator.echo(data.clone()) {
                    Ok(back) if back == data => Ok(()),
                    other => unexpected(&other.map(|v| v.len())),
                }
            }
            Op::Shout => match self.calculator.shout("soak") {
                Ok(s) if s == "SOAK" => Ok(()),
                other => unexpected(&other),
            },
            Op::PluginError => match self.calculator.divide(1, 0) {
                Ok(Err(e)) if e.code == "division_by_zero" => Ok(()),
                other => unexpected(&other),
            },
            Op::Panic => match self.calculator.panic_with("soak".into()) {
                Err(e) if crate::plugin_failed(&e, "panic_with", "soak") => Ok(()),
                other => unexpected(&other),
            },
            Op::HalfStream => {
                let stream = self.streams.count_up(0, 1_000).map_err(|e| e.to_string())?;
                let first: Vec<u64> = stream
                    .take(10)
                    .collect::<Result<_, _>>()
                    .map_err(|e| e.to_string())?;
                if first == (0..10).collect::<Vec<_>>() {
                    Ok(())
                } else {
                    unexpected(&first)
                }
            }
            Op::Configured => {
                let scaler: ScalerClient = match backend {
                    Backend::Native => libs.native_features.configure("Affine", &affine()),
                    Backend::Python => libs
                        .python_features
                        .instance("Affine")
                        .config(&affine())
                        .build(),
                    _ => libs
                        .wasm_features
                        .instance("Affine")
                        .config(&affine())
                        .build(),
                }
                .map_err(|e| e.to_string())?;
                match scaler.apply(i as i64) {
                    Ok(y) if y == 3 * i as i64 + 1 => Ok(()),
                    other => unexpected(&other),
                }
            }
            Op::Reopen => {
                let calculator: CalculatorClient = match backend {
                    Backend::Native => PluginLibrary::open(crate::fixture("fixture_plugins"))
                        .and_then(|lib| lib.load("Doubler")),
                    Backend::Python => {
                        PythonLibrary::open(crate::python_fixture("fixture_plugins"))
                            .and_then(|lib| lib.load("Doubler"))
                    }
                    _ => libs
                        .runtime
                        .open(crate::wasm_fixture("fixture_plugins"))
                        .and_then(|lib| lib.load("Doubler")),
                }
                .map_err(|e| e.to_string())?;
                match calculator.echo(vec![1, 2]) {
                    Ok(v) if v == [1, 2, 1, 2] => Ok(()),
                    other => unexpected(&other),
                }
            }
            Op::Spin => match hostile()?.spin() {
                Err(CallError::Timeout { method: "spin", .. }) => Ok(()),
                other => unexpected(&other),
            },
            Op::Grow => match hostile()?.grow(64) {
                Err(CallError::MemoryLimit { method: "grow", .. }) => Ok(()),
                other => unexpected(&other),
            },
            Op::Recurse => match hostile()?.recurse(u64::MAX) {
                Err(CallError::Trapped {
                    method: "recurse", ..
                }) => Ok(()),
                other => unexpected(&other),
            },
        }
    }

    /// Every client answers a good call.
    fn still_answer(&self) -> Result<(), String> {
        let backend = self.backend;
        match self.calculator.add(40, 2) {
            Ok(42) => {}
            other => return Err(format!("{backend:?}: calculator after the soak: {other:?}")),
        }
        match self
            .streams
            .count_up(0, 3)
            .map(|s| s.collect::<Result<Vec<_>, _>>())
        {
            Ok(Ok(v)) if v == [0, 1, 2] => {}
            other => return Err(format!("{backend:?}: streams after the soak: {other:?}")),
        }
        if let Some(hostile) = &self.hostile {
            match hostile.label() {
                Ok(label) if label == "soak" => {}
                other => return Err(format!("{backend:?}: hostile after the soak: {other:?}")),
            }
        }
        Ok(())
    }
}

/// Resident memory of this process in KiB (`VmRSS`).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Runs the soak. Every thread first makes one cycle of calls (the
/// warm-up, after which the start figures are taken), then its share of
/// `settings.calls`.
///
/// # Errors
/// The first unexpected outcome, a client that no longer answers, or a
/// stuck thread.
pub fn run(settings: Settings) -> Result<Report, String> {
    let libs = Arc::new(Libraries::open()?);
    let threads = settings.threads.max(1);
    let per_thread = settings.calls / threads as u64;
    // Warm-up done by every thread / start figures taken / end of run.
    let warm = Arc::new(Barrier::new(threads + 1));
    let go = Arc::new(Barrier::new(threads + 1));
    let (done, finished) = mpsc::channel();
    let mut handles = Vec::new();
    for t in 0..threads {
        let (libs, warm, go, done) = (libs.clone(), warm.clone(), go.clone(), done.clone());
        let backend = BACKENDS[t % BACKENDS.len()];
        handles.push(std::thread::spawn(move || {
            let result = (|| {
                let clients = Clients::new(&libs, backend);
                let warm_up = clients.as_ref().map_err(Clone::clone).and_then(|c| {
                    (0..CYCLE as u64)
                        .try_for_each(|i| c.run(&libs, Op::at(i, backend, settings.hostile), i))
                });
                warm.wait();
                go.wait();
                let clients = clients?;
                warm_up?;
                let mut counts = [0u64; 11];
                let start = Instant::now();
                for i in 0..per_thread {
                    let op = Op::at(i, backend, settings.hostile);
                    clients.run(&libs, op, i)?;
                    counts[op as usize] += 1;
                }
                let elapsed = start.elapsed();
                clients.still_answer()?;
                Ok::<_, String>((counts, elapsed))
            })();
            let _ = done.send((t, backend, result));
        }));
    }
    warm.wait();
    let start_figures = (rss_kib(), open_fds());
    go.wait();
    let start = Instant::now();
    let mut backends: Vec<(Backend, u64, Duration)> =
        BACKENDS.iter().map(|b| (*b, 0, Duration::ZERO)).collect();
    let mut counts = [0u64; 11];
    for _ in 0..threads {
        let (t, backend, result) = finished
            .recv_timeout(STUCK.saturating_sub(start.elapsed()))
            .map_err(|_| format!("a thread is stuck after {:?}", start.elapsed()))?;
        let (thread_counts, elapsed) = result.map_err(|e| format!("thread {t}: {e}"))?;
        for (sum, n) in counts.iter_mut().zip(thread_counts) {
            *sum += n;
        }
        let entry = backends.iter_mut().find(|(b, ..)| *b == backend).unwrap();
        entry.1 += thread_counts.iter().sum::<u64>();
        entry.2 = entry.2.max(elapsed);
    }
    let elapsed = start.elapsed();
    for handle in handles {
        handle
            .join()
            .map_err(|_| "a soak thread panicked".to_owned())?;
    }
    // The libraries stay open, as a host keeps them; only the threads'
    // clients are gone.
    let end_figures = (rss_kib(), open_fds());
    drop(libs);
    let ops = [
        Op::Add,
        Op::Echo,
        Op::Shout,
        Op::PluginError,
        Op::Panic,
        Op::HalfStream,
        Op::Configured,
        Op::Reopen,
        Op::Spin,
        Op::Grow,
        Op::Recurse,
    ];
    Ok(Report {
        settings,
        backends: backends
            .into_iter()
            .filter(|(_, calls, _)| *calls > 0)
            .collect(),
        operations: ops
            .iter()
            .map(|op| (op.name(), counts[*op as usize]))
            .filter(|(_, n)| *n > 0)
            .collect(),
        rss_kib: (start_figures.0, end_figures.0),
        fds: (start_figures.1, end_figures.1),
        elapsed,
    })
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.settings;
        writeln!(
            f,
            "{} calls on {} threads ({} mix) in {:.2?}",
            self.backends.iter().map(|b| b.1).sum::<u64>(),
            s.threads,
            if s.hostile {
                "hostile"
            } else {
                "good calls only"
            },
            self.elapsed
        )?;
        for (backend, calls, time) in &self.backends {
            writeln!(
                f,
                "  {backend:?}: {calls} calls, {:.0} calls/s",
                *calls as f64 / time.as_secs_f64()
            )?;
        }
        for (op, n) in &self.operations {
            writeln!(f, "  {op}: {n}")?;
        }
        writeln!(
            f,
            "  resident memory: {} KiB after the warm-up, {} KiB at the end ({:+} KiB)",
            self.rss_kib.0,
            self.rss_kib.1,
            self.rss_kib.1 as i64 - self.rss_kib.0 as i64
        )?;
        write!(
            f,
            "  open file descriptors: {} after the warm-up, {} at the end",
            self.fds.0, self.fds.1
        )
    }
}
