//! The soak's short form (the long form is `cargo xtask soak`): 16
//! threads, the hostile mix on every backend, then every client answers,
//! no thread is stuck, and memory and file descriptors are back within
//! the bounds the reliability page states.

use fidius_tests::soak::{self, Settings};

/// Resident memory may grow by this much over the run: allocator arenas
/// per thread and the interpreter's caches settle within it (measured:
/// see docs/src/reliability.md).
const RSS_GROWTH_KIB: u64 = 64 << 10;

#[test]
fn sixteen_threads_of_hostile_calls_leave_every_client_answering_and_nothing_leaked() {
    let report = soak::run(Settings {
        threads: 16,
        calls: 32_000,
        hostile: true,
    })
    .unwrap_or_else(|e| panic!("soak: {e}"));
    println!("{report}");
    let calls: u64 = report.backends.iter().map(|b| b.1).sum();
    assert_eq!(calls, 32_000);
    // Every kind of operation ran.
    assert_eq!(report.operations.len(), 11, "{:?}", report.operations);
    let (start, end) = report.rss_kib;
    assert!(
        end <= start + RSS_GROWTH_KIB,
        "resident memory grew from {start} KiB to {end} KiB"
    );
    let (start, end) = report.fds;
    assert!(
        end <= start,
        "open file descriptors: {start} at the start, {end} at the end"
    );
}
