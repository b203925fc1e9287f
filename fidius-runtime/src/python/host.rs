//! The host object a Python plugin calls (`#[plugin_interface(host =
//! Trait)]`): `host.lookup("key")` encodes the arguments with the host
//! interface's types and calls `HostInterface::dispatch` without the GIL.
//!
//! Streams cross both ways: an iterable argument becomes a stream the host
//! pulls (under the GIL, one batch at a time); a returned stream becomes a
//! `fidius.Stream` iterator. A host method's `Err(PluginError)` is raised
//! as `fidius.PluginError`, another error type as `fidius.Err(value)`, and
//! a failed call (the host panicked) as `fidius.HostError`.

use std::sync::Arc;

use fidius_guest::__private::OwnedStream;
use fidius_guest::wit::{Model, Returns, Ty};
use pyo3::exceptions::{PyAttributeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::{runtime, streams, value};

/// Calls the host's implementation (see [`crate::HostDispatch`]).
pub(super) type HostCall = crate::HostDispatch;

/// The host, as a Python plugin sees it.
#[pyclass(module = "fidius", name = "Host", frozen)]
pub(super) struct Host {
    call: HostCall,
    model: Arc<Model>,
}

impl Host {
    pub(super) fn new(call: HostCall, model: Arc<Model>) -> Self {
        Self { call, model }
    }
}

#[pymethods]
impl Host {
    fn __getattr__(slf: Bound<'_, Self>, name: &str) -> PyResult<HostMethod> {
        let index = slf
            .get()
            .model
            .methods
            .iter()
            .position(|m| m.name == name)
            .ok_or_else(|| PyAttributeError::new_err(format!("the host has no method `{name}`")))?;
        Ok(HostMethod {
            host: slf.unbind(),
            index,
        })
    }
}

/// One method of the host, callable.
#[pyclass(module = "fidius", name = "HostMethod", frozen)]
pub(super) struct HostMethod {
    host: Py<Host>,
    index: usize,
}

#[pymethods]
impl HostMethod {
    #[pyo3(signature = (*args))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let host = self.host.get();
        let model = &host.model;
        let m = &model.methods[self.index];
        if args.len() != m.params.len() {
            return Err(PyTypeError::new_err(format!(
                "host method `{}` takes {} arguments, {} given",
                m.name,
                m.params.len(),
                args.len()
            )));
        }
        let method = super::intern(&m.name);
        let mut bytes = Vec::new();
        let mut inputs = Vec::new();
        for ((param, ty), arg) in m.params.iter().zip(args.iter()) {
            let fail = |e: String| {
                PyTypeError::new_err(format!(
                    "argument `{param}` of host method `{}`: {e}",
                    m.name
                ))
            };
            match ty {
                Ty::Stream(item) => {
                    // Pulled by the host's method, within the plugin's
                    // call and so under its deadline.
                    let stream = streams::PyStream::new(
                        &arg,
                        (**item).clone(),
                        Arc::clone(model),
                        method,
                        None,
                    )
                    .map_err(|e| fail(e.to_string()))?;
                    value::put_varint(&mut bytes, inputs.len() as u64);
                    inputs.push(OwnedStream::from_backend(Box::new(stream), method));
                }
                _ => value::from_py(model, ty, &arg, &mut bytes).map_err(fail)?,
            }
        }
        let call = Arc::clone(&host.call);
        let index = self.index;
        // The host's method runs without the GIL.
        let (result, mut returned) = py.detach(move || {
            let mut returned: Vec<Option<OwnedStream>> = Vec::new();
            let result = call(index, &bytes, inputs, &mut |s| {
                returned.push(Some(s));
                (returned.len() - 1) as u32
            });
            (result, returned)
        });
        let rt = runtime(py)?;
        let sdk = rt.sdk.bind(py);
        let bytes = result.map_err(|e| {
            // As a Rust plugin's `CallError` would read.
            let message = match e.strip_prefix(fidius_guest::__private::PANIC_PREFIX) {
                Some(panic) => format!("`{}` panicked: {panic}", m.name),
                None => format!("`{}`: {e}", m.name),
            };
            match sdk
                .getattr("HostError")
                .and_then(|c| c.call1((message.clone(),)))
            {
                Ok(exc) => PyErr::from_value(exc),
                Err(e) => e,
            }
        })?;
        let mut input: &[u8] = &bytes;
        let mut decode = |ty: &Ty, input: &mut &[u8]| -> PyResult<Bound<'py, PyAny>> {
            let fail = |e: String| {
                PyTypeError::new_err(format!("the result of host method `{}`: {e}", m.name))
            };
            match ty {
                Ty::Stream(item) => {
                    let handle = value::take_u32(input).map_err(fail)?;
                    let source = returned
                        .get_mut(handle as usize)
                        .and_then(Option::take)
                        .ok_or_else(|| fail(format!("no stream number {handle}")))?;
                    Ok(Bound::new(
                        py,
                        streams::HostStream::new(source, (**item).clone(), Arc::clone(model)),
                    )?
                    .into_any())
                }
                _ => value::to_py(py, model, ty, input).map_err(fail),
            }
        };
        match &m.returns {
            Returns::Plain(ty) => decode(ty, &mut input),
            Returns::Fallible(ok, err) => match value::take_u32(&mut input) {
                Ok(0) => decode(ok, &mut input),
                Ok(1) => {
                    let error = decode(err, &mut input)?;
                    let raised = if matches!(err, Ty::Named(n) if n == "plugin-error") {
                        let details = error.get_item("details").ok();
                        let details = details
                            .map(|d| pyo3::types::PyDict::from_sequence(&d))
                            .transpose()?;
                        sdk.getattr("PluginError")?.call1((
                            error.get_item("code")?,
                            error.get_item("message")?,
                            details,
                        ))?
                    } else {
                        sdk.getattr("Err")?.call1((error,))?
                    };
                    Err(PyErr::from_value(raised))
                }
                _ => Err(PyTypeError::new_err(format!(
                    "the result of host method `{}` is not a result",
                    m.name
                ))),
            },
        }
    }
}
