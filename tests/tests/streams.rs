//! `Stream<T>` in every position, run once per backend: native, WASM
//! through `fast`, and WASM through the typed WIT exports (the
//! `<method>-stream` and `sources` resources).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use fidius::{CallError, DEFAULT_BATCH_LIMIT, PluginError};
use fidius_tests::{Backend, for_each_backend};
use fixture_api::{AffineConfig, ScalerClient, StreamsClient};

fn streamer_on(backend: Backend) -> StreamsClient {
    backend.load("fixture_features", "Streamer").unwrap()
}

/// A host-side iterator that counts what it produced and notices its drop.
struct Probe {
    next: u64,
    end: u64,
    produced: Arc<AtomicU64>,
    dropped: Arc<AtomicBool>,
}

impl Probe {
    fn new(end: u64) -> (Self, Arc<AtomicU64>, Arc<AtomicBool>) {
        let produced = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicBool::new(false));
        let probe = Self {
            next: 0,
            end,
            produced: produced.clone(),
            dropped: dropped.clone(),
        };
        (probe, produced, dropped)
    }
}

impl Iterator for Probe {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        if self.next == self.end {
            return None;
        }
        self.next += 1;
        self.produced.fetch_add(1, Ordering::SeqCst);
        Some(self.next - 1)
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

for_each_backend! {
#[test]
fn return_position_is_an_iterator_that_ends() {
    let s = streamer_on(BACKEND);
    let items: Vec<u64> = s.count_up(3, 9).unwrap().map(Result::unwrap).collect();
    assert_eq!(items, [3, 4, 5, 6, 7, 8]);
    assert_eq!(s.count_up(5, 5).unwrap().count(), 0);
    let chunks: Vec<Vec<u8>> = s.chunks(3, 4).unwrap().map(Result::unwrap).collect();
    assert_eq!(chunks, [vec![0; 4], vec![1; 4], vec![2; 4]]);
}

#[test]
fn argument_position_accepts_any_into_iterator() {
    let s = streamer_on(BACKEND);
    assert_eq!(s.sum(1..=1000u64).unwrap(), 500_500);
    assert_eq!(s.sum(vec![1u64, 2, 3]).unwrap(), 6);
    assert_eq!(s.sum(std::iter::empty()).unwrap(), 0);
    assert_eq!(s.total_len(vec![vec![0u8; 10], vec![1u8; 5]]).unwrap(), 15);
}

#[test]
fn both_positions_make_a_plugin_owned_transform() {
    let s = streamer_on(BACKEND);
    let out: Vec<u64> = s.scale(0..5u64, 3).unwrap().map(Result::unwrap).collect();
    assert_eq!(out, [0, 3, 6, 9, 12]);
    // Chained: a returned stream fed to another instance.
    let numbers = s.count_up(1, 101).unwrap().map(Result::unwrap);
    assert_eq!(streamer_on(BACKEND).sum(numbers).unwrap(), 5050);
    // Fed back to the instance that returned it. Through the typed WIT
    // exports a WASM instance would have to be entered again from inside
    // the call, which is refused with a typed error; `fast` hands the
    // stream back to the guest itself.
    let numbers = s.count_up(1, 101).unwrap().into_stream();
    match (BACKEND, s.sum(numbers)) {
        (Backend::WasmTyped, Err(CallError::Panic { method, message })) => {
            assert_eq!(method, "sum");
            assert!(message.contains("same WASM plugin instance"), "{message}");
        }
        (_, sum) => assert_eq!(sum.unwrap(), 5050),
    }
    assert_eq!(s.sum(0..4u64).unwrap(), 6, "still usable");
}

#[test]
fn errors_are_items() {
    let s = streamer_on(BACKEND);
    let out: Vec<Result<u64, String>> = s
        .checked(vec![1i64, -2, 3])
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(out, [Ok(1), Err("-2 is negative".to_string()), Ok(3)]);
}

#[test]
fn a_result_of_a_stream_keeps_the_plugin_error_typed() {
    let s = streamer_on(BACKEND);
    assert_eq!(
        s.maybe(true).unwrap().unwrap_err(),
        PluginError::new("refused", "asked to fail")
    );
    let items: Vec<u64> = s
        .maybe(false)
        .unwrap()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(items, [0, 1, 2]);
}

/// A native plugin delivers every item produced before the panic; a
/// panic traps a WASM guest, which loses the batch it was filling (see
/// `docs/src/wasm.md`), so there the items are a shorter prefix.
#[test]
fn a_panic_mid_stream_is_a_typed_error_item_and_the_plugin_stays_usable() {
    let s = streamer_on(BACKEND);
    let mut stream = s.explode_after(5).unwrap();
    let mut items = Vec::new();
    let error = loop {
        match stream.next() {
            Some(Ok(item)) => items.push(item),
            Some(Err(e)) => break e,
            None => panic!("the stream ended without the panic"),
        }
    };
    let expected: Vec<u64> = (0..items.len() as u64).collect();
    assert_eq!(items, expected, "items before the error, in order");
    if matches!(BACKEND, Backend::Native | Backend::Python) {
        assert_eq!(items.len(), 5);
    }
    assert!(
        fidius_tests::plugin_failed(&error, "explode_after", "exploded after 5 items"),
        "expected a panic (exception) item, got {error:?}"
    );
    assert!(stream.next().is_none(), "the stream ends after an error");
    assert_eq!(s.count_up(0, 3).unwrap().count(), 3);
}

#[test]
fn a_host_producer_panic_reaches_the_host_as_a_typed_error() {
    let s = streamer_on(BACKEND);
    let failing = (0..10u64).inspect(|&x| {
        if x == 7 {
            panic!("host producer gave up");
        }
    });
    match s.sum(failing).unwrap_err() {
        CallError::Panic { method, message } => {
            assert_eq!(method, "sum");
            assert!(message.contains("input stream failed"), "{message}");
            assert!(message.contains("host producer gave up"), "{message}");
        }
        // In a Python plugin, the failure is raised where it iterates.
        CallError::Exception { method, exception } if BACKEND == Backend::Python => {
            assert_eq!(method, "sum");
            let message = &exception.message;
            assert!(message.contains("input stream failed"), "{message}");
            assert!(message.contains("host producer gave up"), "{message}");
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_eq!(s.sum(0..4u64).unwrap(), 6, "still usable");
}

#[test]
fn dropping_the_plugin_side_stops_the_host_producer() {
    let s = streamer_on(BACKEND);
    let (probe, produced, dropped) = Probe::new(u64::MAX);
    assert_eq!(s.take_some(probe, 5).unwrap(), 5);
    assert!(dropped.load(Ordering::SeqCst), "host iterator dropped");
    let produced = produced.load(Ordering::SeqCst);
    assert!(
        (5..=5 + u64::from(DEFAULT_BATCH_LIMIT)).contains(&produced),
        "produced {produced}"
    );
}

#[test]
fn a_transform_keeps_few_items_in_flight() {
    let s = streamer_on(BACKEND);
    let (probe, produced, dropped) = Probe::new(200_000);
    let mut consumed = 0u64;
    for item in s.scale(probe, 2).unwrap() {
        assert_eq!(item.unwrap(), consumed * 2);
        consumed += 1;
        let in_flight = produced.load(Ordering::SeqCst) - consumed;
        assert!(
            in_flight <= 2 * u64::from(DEFAULT_BATCH_LIMIT),
            "{in_flight} items in flight after {consumed}"
        );
    }
    assert_eq!(consumed, 200_000);
    assert!(dropped.load(Ordering::SeqCst));
}

#[test]
fn a_batch_limit_of_one_is_item_at_a_time() {
    let s = streamer_on(BACKEND);
    let (probe, produced, _) = Probe::new(1_000);
    let stream = s.scale(probe, 1).unwrap().with_batch_limit(1);
    let mut count = 0;
    for (consumed, item) in stream.enumerate() {
        assert_eq!(item, Ok(consumed as u64));
        // One item in the host's batch, at most a batch in the plugin.
        let ahead = produced.load(Ordering::SeqCst) - consumed as u64 - 1;
        assert!(ahead <= u64::from(DEFAULT_BATCH_LIMIT), "{ahead}");
        count += 1;
    }
    assert_eq!(count, 1_000);
}

#[test]
fn streams_work_on_configured_instances() {
    let config = AffineConfig {
        mul: 3,
        add: 1,
        label: format!("streams-{BACKEND:?}"),
    };
    let scaler: ScalerClient = BACKEND
        .configure("fixture_features", "Affine", &config)
        .unwrap();
    let series: Vec<i64> = scaler.series(4).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(series, [1, 4, 7, 10]);
}

#[test]
fn returned_streams_are_futures_streams_too() {
    let s = streamer_on(BACKEND);
    let items: Vec<u64> = futures_executor::block_on_stream(s.count_up(0, 4).unwrap())
        .map(Result::unwrap)
        .collect();
    assert_eq!(items, [0, 1, 2, 3]);
}

#[test]
fn streams_outlive_the_client_and_cross_threads() {
    let stream = streamer_on(BACKEND).count_up(0, 1000).unwrap();
    // The client is gone; the stream keeps the instance and library alive.
    let total: u64 = std::thread::spawn(move || stream.map(Result::unwrap).sum())
        .join()
        .unwrap();
    assert_eq!(total, 499_500);
}
}

/// What is particular to WASM: a stream lives in its instance.
mod wasm_only {
    use super::*;

    #[test]
    fn a_trap_ends_the_streams_of_the_discarded_instance() {
        let s = streamer_on(Backend::Wasm);
        let mut before = s.count_up(0, 1_000).unwrap();
        assert_eq!(before.next().unwrap().unwrap(), 0);
        // A panic traps the guest; its instance is discarded.
        let mut exploding = s.explode_after(0).unwrap();
        assert_eq!(
            exploding.next(),
            Some(Err(CallError::Panic {
                method: "explode_after",
                message: "exploded after 0 items".into()
            }))
        );
        match before.next() {
            Some(Err(CallError::Protocol { method, detail })) => {
                assert_eq!(method, "count_up");
                assert!(detail.contains("discarded after a trap"), "{detail}");
            }
            other => panic!("expected a typed error, got {other:?}"),
        }
        assert!(before.next().is_none(), "the stream ends after an error");
        assert_eq!(s.count_up(0, 3).unwrap().count(), 3, "a fresh instance");
    }

    #[test]
    fn dropping_a_returned_stream_drops_the_guests_iterator() {
        // Its own instance, so its own counters.
        let s = streamer_on(Backend::Wasm);
        let mut endless = s.count_up(0, u64::MAX).unwrap();
        for expected in 0..10u64 {
            assert_eq!(endless.next().unwrap().unwrap(), expected);
        }
        assert_eq!(s.stats().unwrap().live_iterators, 1);
        drop(endless);
        let stats = s.stats().unwrap();
        assert_eq!((stats.live_iterators, stats.dropped), (0, 1));
        assert!(stats.produced <= 10 + u64::from(DEFAULT_BATCH_LIMIT));
    }

    #[test]
    fn a_fresh_instance_per_call_reads_argument_streams_but_returns_none() {
        let (_runtime, lib) = fidius_tests::per_call_wasm_library("fixture_features");
        let s: StreamsClient = lib.load("Streamer").unwrap();
        assert_eq!(s.sum(1..=100u64).unwrap(), 5050);
        match s.count_up(0, 3) {
            Err(CallError::Unsupported { method, what }) => {
                assert_eq!(method, "count_up");
                assert!(what.contains("fresh instance per call"), "{what}");
            }
            other => panic!("expected Unsupported, got {other:?}"),
        }
    }
}
