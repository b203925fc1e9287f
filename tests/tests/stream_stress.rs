//! Stream handles and the WASM instance cache under concurrent use: a
//! stress test standing in for `loom`, which cannot reach code that runs
//! inside wasmtime, a plugin library or the interpreter.
//!
//! The interleaving argument. On every backend one client is shared by 8
//! threads, each opening streams, pulling part of them, dropping them, and
//! now and then making the plugin fail in the middle of a stream:
//!
//! - WASM: every call, every pull and every drop of a stream takes the
//!   client's one lock on its cached instance (`Option<Live>`), and a
//!   stream carries the id of the instance that made it. A trap discards
//!   the instance under that lock, and the next call creates a new one
//!   under it too. So each operation sees one of two states — the
//!   instance its stream came from, or another — and is checked against
//!   the id under the lock: a pull on a discarded instance's stream is a
//!   typed `Protocol` error, never an item of another stream. What remains
//!   is the order in which threads take the lock, which is what the
//!   threads vary here, thousands of times per run.
//! - Native: a stream handle is the plugin's own object, owned by one
//!   host-side `Stream` and used by one thread at a time (`Stream` is
//!   `Send`, not `Sync`); the plugin's instance is shared, and a panic in
//!   one stream ends only that stream.
//! - Python: every pull holds the GIL.
//!
//! Every thread checks every item it gets: a prefix of `from..to` in
//! order, ended by the stream's end or by one typed error naming the
//! plugin's failure (or, on WASM, the discarded instance). Afterwards the
//! client answers.

use std::sync::{Arc, Barrier};

use fidius::CallError;
use fidius_tests::Backend;
use fixture_api::StreamsClient;

const THREADS: u64 = 8;
const ROUNDS: u64 = 300;

fn stress(backend: Backend) {
    let client: Arc<StreamsClient> =
        Arc::new(backend.load("fixture_features", "Streamer").unwrap());
    if backend == Backend::Wasm {
        // The path the threads race for, once in order: a stream open on
        // an instance that another stream's trap discards.
        let mut open = client.count_up(0, 10).unwrap();
        assert_eq!(open.next().map(Result::ok), Some(Some(0)));
        assert!(client.explode_after(0).unwrap().any(|item| item.is_err()));
        match open.next() {
            Some(Err(CallError::Protocol { detail, .. })) if detail.contains("discarded") => {}
            other => panic!("a stream of a discarded instance: {other:?}"),
        }
    }
    let start = Arc::new(Barrier::new(THREADS as usize));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (client, start) = (client.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut discarded = 0;
                for round in 0..ROUNDS {
                    let from = t * 1_000 + round;
                    let stream = if round % 17 == t % 17 {
                        // This one fails after 3 items: on WASM the panic
                        // traps, and the instance every open stream of the
                        // client came from is discarded.
                        client.explode_after(3)
                    } else {
                        client.count_up(from, from + 50)
                    };
                    let stream = match stream {
                        Ok(s) => s,
                        // Opening on an instance being replaced is fine
                        // only as the typed failure of another thread's
                        // panic.
                        Err(e) => panic!("{backend:?}: opening a stream failed: {e:?}"),
                    };
                    let exploding = round % 17 == t % 17;
                    let base = if exploding { 0 } else { from };
                    let take = (round % 60) as usize;
                    let mut next = base;
                    for item in stream.take(take) {
                        match item {
                            Ok(n) => {
                                assert_eq!(n, next, "{backend:?}: thread {t} round {round}");
                                next += 1;
                            }
                            Err(CallError::Protocol { detail, .. })
                                if backend == Backend::Wasm && detail.contains("discarded") =>
                            {
                                discarded += 1;
                                break;
                            }
                            Err(e) if exploding => {
                                assert!(
                                    fidius_tests::plugin_failed(
                                        &e,
                                        "explode_after",
                                        "exploded after 3 items"
                                    ),
                                    "{backend:?}: {e:?}"
                                );
                                break;
                            }
                            Err(e) => panic!("{backend:?}: thread {t} round {round}: {e:?}"),
                        }
                    }
                }
                discarded
            })
        })
        .collect();
    let discarded: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    // The client answers afterwards, on a fresh instance if need be.
    let items: Vec<u64> = client
        .count_up(0, 5)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(items, [0, 1, 2, 3, 4]);
    if backend != Backend::Wasm {
        assert_eq!(discarded, 0);
    }
    println!("{backend:?}: {discarded} pulls met a discarded instance");
}

#[test]
fn native_stream_handles_under_eight_threads() {
    stress(Backend::Native);
}

#[test]
fn wasm_stream_handles_and_the_instance_cache_under_eight_threads() {
    stress(Backend::Wasm);
}

#[test]
fn python_stream_handles_under_eight_threads() {
    stress(Backend::Python);
}
