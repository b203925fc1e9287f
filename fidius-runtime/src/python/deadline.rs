//! Per-call deadlines for Python plugins: a watchdog thread raises
//! `fidius.DeadlineExceeded` (a `BaseException`) asynchronously in the
//! thread of a call that runs past its deadline; the call then reports
//! `CallError::Timeout` and the interpreter stays usable.
//!
//! An asynchronous exception takes effect at the plugin's next bytecode: a
//! call blocked inside C code (a long `time.sleep`, a blocking read) is
//! stopped only when that returns.
//!
//! Lock order: the GIL, then the watch. Calls arm and disarm holding the
//! GIL; the watchdog takes the GIL before it fires, so a deadline never
//! fires between a call's end and its disarming. Nothing done holding the
//! watch may run Python code: the interpreter hands the GIL to another
//! thread between bytecodes, and a call thread that then waits for the
//! watch holding the GIL deadlocks with the watchdog (the soak found
//! that when the exception was raised through a Python helper).

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

use fidius_guest::CallError;

use super::runtime;

/// Runs `run`, everything a call does in Python (the method, converting
/// its result, a stream's pull, the constructor), under `deadline` if
/// there is one: an error once the deadline fired is
/// [`CallError::Timeout`], whatever Python code the exception surfaced in.
/// A deadline that fired after the work was done (its exception not yet
/// surfaced) is withdrawn, and the result stands.
pub(super) fn guarded<T>(
    py: Python<'_>,
    deadline: Option<Duration>,
    method: &'static str,
    run: impl FnOnce() -> Result<T, CallError>,
) -> Result<T, CallError> {
    let Some(after) = deadline else {
        return run();
    };
    let armed = Deadline::arm(py, after).map_err(|e| super::exception(py, method, &e))?;
    let result = run();
    // Withdrawn either way: an exception still pending would surface in
    // the next Python code this thread runs.
    let fired = armed.disarm(py, false);
    match result {
        Err(_) if fired => Err(CallError::Timeout {
            method,
            deadline: after,
        }),
        other => other,
    }
}

struct Entry {
    thread: u64,
    fired: bool,
}

#[derive(Default)]
struct Watch {
    /// By deadline, then arming order.
    armed: BTreeMap<(Instant, u64), Entry>,
    next: u64,
}

struct Watchdog {
    watch: Mutex<Watch>,
    wake: Condvar,
}

fn watchdog() -> &'static Watchdog {
    static WATCHDOG: OnceLock<Watchdog> = OnceLock::new();
    static STARTED: OnceLock<()> = OnceLock::new();
    let dog = WATCHDOG.get_or_init(|| Watchdog {
        watch: Mutex::new(Watch::default()),
        wake: Condvar::new(),
    });
    STARTED.get_or_init(|| {
        // Without the thread no deadline fires; calls still work.
        let _ = std::thread::Builder::new()
            .name("fidius-python-deadline".into())
            .spawn(|| run(watchdog()));
    });
    dog
}

fn lock(dog: &Watchdog) -> MutexGuard<'_, Watch> {
    dog.watch.lock().unwrap_or_else(|e| e.into_inner())
}

/// The first deadline not fired yet.
fn earliest(watch: &Watch) -> Option<Instant> {
    watch
        .armed
        .iter()
        .find(|(_, e)| !e.fired)
        .map(|((at, _), _)| *at)
}

fn run(dog: &'static Watchdog) {
    loop {
        {
            let mut watch = lock(dog);
            loop {
                match earliest(&watch) {
                    Some(at) if at <= Instant::now() => break,
                    Some(at) => {
                        let wait = at.saturating_duration_since(Instant::now());
                        watch = dog
                            .wake
                            .wait_timeout(watch, wait)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                    None => watch = dog.wake.wait(watch).unwrap_or_else(|e| e.into_inner()),
                }
            }
        }
        super::attach(|py| {
            let mut watch = lock(dog);
            let now = Instant::now();
            for ((at, _), entry) in watch.armed.iter_mut() {
                if *at <= now && !entry.fired {
                    entry.fired = true;
                    interrupt(py, entry.thread, true);
                }
            }
        });
    }
}

/// Raises (or, with `raise == false`, withdraws) `DeadlineExceeded` in
/// Python thread `thread`. Runs no Python code (see `async_exc`), so the
/// GIL stays with the caller throughout.
fn interrupt(py: Python<'_>, thread: u64, raise: bool) {
    if !raise {
        super::async_exc::set(py, thread, None);
        return;
    }
    let Ok(rt) = runtime(py) else { return };
    // Nothing to report to if this fails: the call then runs on.
    if let Ok(exception) = rt.sdk.bind(py).getattr("DeadlineExceeded") {
        super::async_exc::set(py, thread, Some(&exception));
    }
}

/// A call's deadline, armed until [`disarm`](Self::disarm)ed.
struct Deadline {
    key: (Instant, u64),
    thread: u64,
}

impl Deadline {
    /// Arms a deadline of `after` for the call about to run on this thread
    /// (which holds the GIL: `py`).
    fn arm(py: Python<'_>, after: Duration) -> PyResult<Self> {
        let thread: u64 = py
            .import("threading")?
            .call_method0("get_ident")?
            .extract()?;
        let dog = watchdog();
        let mut watch = lock(dog);
        let key = (Instant::now() + after, watch.next);
        watch.next += 1;
        let first = earliest(&watch).is_none_or(|at| key.0 < at);
        watch.armed.insert(
            key,
            Entry {
                thread,
                fired: false,
            },
        );
        if first {
            dog.wake.notify_one();
        }
        Ok(Self { key, thread })
    }

    /// Disarms (holding the GIL); whether the deadline fired. An exception
    /// raised but not surfaced (`surfaced == false`: the call ended
    /// before its next bytecode) is withdrawn.
    fn disarm(self, py: Python<'_>, surfaced: bool) -> bool {
        let fired = lock(watchdog())
            .armed
            .remove(&self.key)
            .is_some_and(|e| e.fired);
        if fired && !surfaced {
            interrupt(py, self.thread, false);
        }
        fired
    }
}
