//! Raising an exception asynchronously in another Python thread, through
//! the C API rather than Python code: no bytecode runs, so the interpreter
//! cannot hand the GIL to another thread in the middle (it would, between
//! any two bytecodes of a Python helper). The deadline watchdog relies on
//! that: it sets the exception holding the GIL and its own lock, and a
//! call thread waiting for either can never hold the other.

use pyo3::prelude::*;

/// Sets (`Some`) or withdraws (`None`) the asynchronous exception of the
/// Python thread with identifier `thread` (`threading.get_ident()`); it is
/// raised at that thread's next bytecode. An unknown thread is ignored.
pub(super) fn set(py: Python<'_>, thread: u64, exception: Option<&Bound<'_, PyAny>>) {
    let _ = py;
    let exception = exception.map_or(std::ptr::null_mut(), Bound::as_ptr);
    // The identifier is a C `unsigned long`, passed as the `long` the C
    // API declares (the same bits).
    let id = thread as std::ffi::c_long;
    // SAFETY: `py` proves this thread holds the GIL, which the function
    // requires; `exception` is NULL or an object kept alive by the borrow
    // for the duration of the call (the function takes its own reference).
    // It runs no Python code and returns the number of threads changed,
    // which is all that can go wrong: 0 for a thread that has ended.
    let _ = unsafe { pyo3::ffi::PyThreadState_SetAsyncExc(id, exception) };
}
