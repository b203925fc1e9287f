//! Backpressure, cancellation and bounded memory, measured with the
//! `Streamer` plugin's own counters, once per backend. Its own test binary
//! so no other test moves the native plugin's global counters (a WASM
//! instance has its own); the tests take turns so the peak-memory check
//! sees one stream at a time.

use std::sync::Mutex;

use fidius::DEFAULT_BATCH_LIMIT;
use fidius_tests::{Backend, for_each_backend};
use fixture_api::StreamsClient;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Peak resident memory of this process in KiB since the last
/// [`reset_peak_rss`] (Linux).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    line.split_whitespace()
        .nth(1)
        .and_then(|kib| kib.parse().ok())
        .expect("VmHWM in KiB")
}

/// Sets the peak back to the current resident memory, so that what an
/// earlier test (or backend) reached does not hide this one's peak.
fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5")
        .expect("reset the peak through /proc/self/clear_refs");
}

for_each_backend! {
/// 1 GiB each way natively. A WASM host-to-plugin stream is read inside one
/// call, under the call deadline (5 s in the tests, in a debug build), so
/// 128 MiB there — twice the guest's memory limit — and 16 MiB
/// through the typed WIT exports, where every byte is a component value
/// (the same batching; only the conversion differs). 128 MiB through a
/// Python plugin, where every item is a Python object.
fn volume(backend: Backend) -> u64 {
    match backend {
        Backend::Native => 1 << 30,
        Backend::Wasm | Backend::Python => 128 << 20,
        Backend::WasmTyped => 16 << 20,
    }
}

#[test]
fn pulls_drive_the_producer_and_drops_cancel_it() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // A WASM guest runs under the test engine's 64 MiB memory limit, so
    // streaming the volume through it also shows its memory is bounded.
    let s: StreamsClient = BACKEND.load("fixture_features", "Streamer").unwrap();
    let limit = u64::from(DEFAULT_BATCH_LIMIT);

    // Nothing is produced before the first pull.
    let base = s.stats().unwrap();
    let mut endless = s.count_up(0, u64::MAX).unwrap();
    assert_eq!(
        s.stats().unwrap().produced,
        base.produced,
        "lazy until pulled"
    );
    assert_eq!(s.stats().unwrap().live_iterators, base.live_iterators + 1);
    // The first pull asks for one item only.
    assert_eq!(endless.next().unwrap().unwrap(), 0);
    assert_eq!(s.stats().unwrap().produced, base.produced + 1);
    for consumed in 2..=1000u64 {
        endless.next().unwrap().unwrap();
        let ahead = s.stats().unwrap().produced - base.produced - consumed;
        assert!(ahead < limit, "{ahead} items in flight");
    }
    // Dropping the host's handle drops the plugin's iterator at once.
    drop(endless);
    let after = s.stats().unwrap();
    assert_eq!(after.live_iterators, base.live_iterators);
    assert_eq!(after.dropped, base.dropped + 1);

    // The volume in 1 KiB items, plugin to host: in-flight items stay under
    // one batch and peak memory does not grow with the data.
    let count = volume(BACKEND) >> 10;
    reset_peak_rss();
    let rss_before = peak_rss_kib();
    let base = s.stats().unwrap();
    let mut total = 0u64;
    for (i, chunk) in s.chunks(count, 1024).unwrap().enumerate() {
        let chunk = chunk.unwrap();
        total += chunk.len() as u64;
        if i % 4096 == 0 {
            let ahead = s.stats().unwrap().produced - base.produced - i as u64 - 1;
            assert!(ahead < limit, "{ahead} items in flight at {i}");
        }
    }
    assert_eq!(total, volume(BACKEND));
    // And host to plugin.
    let chunks = (0..count).map(|i| vec![i as u8; 1024]);
    assert_eq!(s.total_len(chunks).unwrap(), volume(BACKEND));
    let after = peak_rss_kib();
    assert!(
        after.saturating_sub(rss_before) < 64 * 1024,
        "peak RSS grew by {} KiB streaming {} MiB",
        after.saturating_sub(rss_before),
        (2 * volume(BACKEND)) >> 20
    );
}
}
