//! `Stream<T>` between the host and a Python plugin.
//!
//! * Returned streams (the plugin produces): the method returns any
//!   iterable, typically a generator; [`PyStream`] pulls it in batches
//!   under the GIL and closes it (`generator.close()`, so its `finally`
//!   blocks run) when the host drops the stream.
//! * Argument streams (the host produces): the plugin gets a
//!   [`HostStream`], a Python iterator that pulls the host's producer one
//!   batch at a time, without the GIL (1 item, then 2, 4, … up to
//!   `DEFAULT_BATCH_LIMIT`), so at most one batch is in flight. Dropping or
//!   closing it cancels the producer.

use std::sync::Arc;
use std::time::Duration;

use fidius_guest::__private::{BatchSource, OwnedStream};
use fidius_guest::wit::{Model, Ty};
use fidius_guest::{CallError, DEFAULT_BATCH_LIMIT};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyIterator;

use super::{deadline, value};

/// A stream a Python method returned, pulled by the host.
pub(super) struct PyStream {
    iter: Option<Py<PyIterator>>,
    /// An error raised after some items of a batch: reported on the next
    /// pull, after those items.
    failed: Option<CallError>,
    item: Ty,
    model: Arc<Model>,
    method: &'static str,
    /// Each pull's, and the closing's: the plugin's per-call deadline.
    deadline: Option<Duration>,
}

impl PyStream {
    /// Iterates `value` (any iterable), each pull under `deadline`.
    pub(super) fn new(
        value: &Bound<'_, PyAny>,
        item: Ty,
        model: Arc<Model>,
        method: &'static str,
        deadline: Option<Duration>,
    ) -> PyResult<Self> {
        Ok(Self {
            iter: Some(PyIterator::from_object(value)?.unbind()),
            failed: None,
            item,
            model,
            method,
            deadline,
        })
    }
}

impl BatchSource for PyStream {
    fn next_batch(&mut self, max_items: u32) -> Result<Option<Vec<u8>>, CallError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let Some(iter) = &self.iter else {
            return Ok(None);
        };
        let method = self.method;
        let failed = &mut self.failed;
        let deadline = self.deadline;
        let result = super::attach(|py| {
            deadline::guarded(py, deadline, method, || {
                let mut it = iter.bind(py).clone();
                let mut batch = Vec::new();
                let mut count = 0;
                while count < max_items.max(1) {
                    match it.next() {
                        None => break,
                        Some(Err(e)) if count == 0 => return Err(super::exception(py, method, &e)),
                        Some(Err(e)) => {
                            *failed = Some(super::exception(py, method, &e));
                            break;
                        }
                        Some(Ok(v)) => {
                            value::item_from_py(&self.model, &self.item, &v, &mut batch).map_err(
                                |message| CallError::ResultEncode {
                                    method,
                                    message: format!("stream item: {message}"),
                                },
                            )?;
                            count += 1;
                        }
                    }
                }
                Ok((count > 0).then_some(batch))
            })
        });
        match result {
            Ok(Some(batch)) => {
                if self.failed.is_some() {
                    self.close();
                }
                Ok(Some(batch))
            }
            // The end, or an error that ends the stream.
            other => {
                self.close();
                other
            }
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

impl PyStream {
    /// Closes the iterator (a generator's `finally` blocks run).
    /// Under the deadline too: a `finally` block that loops must not hold
    /// the host's thread.
    fn close(&mut self) {
        if let Some(iter) = self.iter.take() {
            let (deadline, method) = (self.deadline, self.method);
            super::attach(|py| {
                let iter = iter.bind(py);
                if let Ok(close) = iter.getattr(pyo3::intern!(py, "close")) {
                    // A failing `close` has nothing left to report to.
                    let _ = deadline::guarded(py, deadline, method, || {
                        close.call0().map_err(|e| super::exception(py, method, &e))
                    });
                }
            });
        }
    }
}

impl Drop for PyStream {
    fn drop(&mut self) {
        self.close();
    }
}

/// A stream the host produces, as the plugin iterates it.
#[pyclass(module = "fidius", name = "Stream")]
pub(super) struct HostStream {
    /// In a mutex only to be `Sync` (pyo3 needs it): the `PyRefMut` of
    /// `__next__` already makes access exclusive.
    source: std::sync::Mutex<Option<OwnedStream>>,
    item: Ty,
    model: Arc<Model>,
    /// The current batch and where the next item starts in it.
    batch: Vec<u8>,
    at: usize,
    /// Items asked for in the next pull.
    want: u32,
}

impl HostStream {
    pub(super) fn new(source: OwnedStream, item: Ty, model: Arc<Model>) -> Self {
        Self {
            source: std::sync::Mutex::new(Some(source)),
            item,
            model,
            batch: Vec::new(),
            at: 0,
            want: 1,
        }
    }
}

impl HostStream {
    fn take_source(&mut self) -> Option<OwnedStream> {
        self.source
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

#[pymethods]
impl HostStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(mut slf: PyRefMut<'_, Self>, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if slf.at >= slf.batch.len() {
            let Some(mut source) = slf.take_source() else {
                return Ok(None);
            };
            let want = slf.want;
            // The host's producer runs without the GIL: it may call
            // another plugin, or take its time.
            let (source, pulled) = py.detach(move || {
                let pulled = source.next_batch(want);
                (source, pulled)
            });
            match pulled {
                Ok(Some(batch)) => {
                    *slf.source.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(source);
                    slf.batch = batch;
                    slf.at = 0;
                    slf.want = (want * 2).min(DEFAULT_BATCH_LIMIT);
                }
                Ok(None) => return Ok(None),
                Err(e) => {
                    return Err(PyRuntimeError::new_err(format!("input stream failed: {e}")));
                }
            }
        }
        let this = &mut *slf;
        let mut rest = &this.batch[this.at..];
        let before = rest.len();
        let item = value::item_to_py(py, &this.model, &this.item, &mut rest)
            .map_err(|e| PyRuntimeError::new_err(format!("input stream item: {e}")))?;
        this.at += before - rest.len();
        Ok(Some(item.unbind()))
    }

    /// Stops the stream: the host's producer is dropped.
    fn close(&mut self) {
        drop(self.take_source());
        self.batch = Vec::new();
        self.at = 0;
    }
}
