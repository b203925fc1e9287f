//! Backpressure, cancellation and bounded memory, measured with the
//! `Streamer` plugin's own counters. Its own test binary (one process, one
//! test) so no other test moves the plugin's global counters.

use fidius::{DEFAULT_BATCH_LIMIT, PluginLibrary};
use fidius_tests::fixture;
use fixture_api::StreamsClient;

/// Peak resident memory of this process in KiB (Linux).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn pulls_drive_the_producer_and_drops_cancel_it() {
    let s: StreamsClient = PluginLibrary::open(fixture("fixture_features"))
        .unwrap()
        .load("Streamer")
        .unwrap();
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

    // 1 GiB in 1 KiB items, plugin to host: in-flight items stay under one
    // batch and peak memory does not grow with the data.
    let count = 1u64 << 20;
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
    assert_eq!(total, 1 << 30);
    // And 1 GiB host to plugin.
    let chunks = (0..count).map(|i| vec![i as u8; 1024]);
    assert_eq!(s.total_len(chunks).unwrap(), 1 << 30);
    if let (Some(before), Some(after)) = (rss_before, peak_rss_kib()) {
        assert!(
            after.saturating_sub(before) < 64 * 1024,
            "peak RSS grew by {} KiB streaming 2 GiB",
            after - before
        );
    }
}
