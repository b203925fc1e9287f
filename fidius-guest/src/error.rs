//! Errors a call through a plugin proxy can produce.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::wire::WireError;

/// Why a call into a plugin failed, as opposed to the plugin's own error
/// type `E` in a method returning `Result<T, E>`, which the proxy hands back
/// as `Ok(Err(e))`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The other side panicked (the plugin in a call, or whichever side
    /// produced a stream); it stays usable for the next call.
    #[error("`{method}` panicked: {message}")]
    Panic {
        /// Method that panicked (`create` for the constructor).
        method: &'static str,
        /// The panic message, or `<non-string panic payload>`.
        message: String,
    },
    /// The host could not encode an argument.
    #[error("failed to encode argument `{argument}` of `{method}`: {source}")]
    ArgumentEncode {
        /// Method called.
        method: &'static str,
        /// Parameter name.
        argument: &'static str,
        /// What went wrong.
        #[source]
        source: WireError,
    },
    /// The plugin could not decode an argument (the two sides disagree on a
    /// type's shape even though the interface hash matched).
    #[error("plugin failed to decode the arguments of `{method}`: {message}")]
    ArgumentDecode {
        /// Method called.
        method: &'static str,
        /// The plugin's message.
        message: String,
    },
    /// The plugin could not encode its result.
    #[error("plugin failed to encode the result of `{method}`: {message}")]
    ResultEncode {
        /// Method called.
        method: &'static str,
        /// The plugin's message.
        message: String,
    },
    /// The host could not decode the plugin's result or error value.
    #[error("failed to decode the {what} of `{method}` as `{expected}`: {source}")]
    ResultDecode {
        /// Method called.
        method: &'static str,
        /// `result` or `error`.
        what: &'static str,
        /// The Rust type expected.
        expected: &'static str,
        /// What went wrong (boxed: keeps `CallError`, and the `LoadError`
        /// that can carry one, small).
        #[source]
        source: Box<WireError>,
    },
    /// The plugin does not implement this `#[optional]` method; ask
    /// `supports(method)` first to avoid the call.
    #[error("plugin does not implement optional method `{method}`")]
    NotImplemented {
        /// Method called.
        method: &'static str,
    },
    /// The plugin could not decode its configuration (the host's config
    /// value has a different shape than the plugin's config type).
    #[error("plugin rejected its configuration: {message}")]
    ConfigDecode {
        /// The plugin's message, naming the config type.
        message: String,
    },
    /// The plugin's constructor (`configure`) returned an error.
    #[error("plugin constructor failed: {error}")]
    Rejected {
        /// The error, with its code and details.
        error: Box<PluginError>,
    },
    /// The call ran past the per-call deadline and was stopped; the
    /// instance is discarded and the next call runs on a fresh one.
    #[error("`{method}` ran past its deadline of {deadline:?} and was stopped")]
    Timeout {
        /// Method called.
        method: &'static str,
        /// The deadline.
        deadline: core::time::Duration,
    },
    /// The plugin tried to use more memory than the host allows; the
    /// instance is discarded and the next call runs on a fresh one.
    #[error("`{method}` exceeded the memory limit of {limit} bytes")]
    MemoryLimit {
        /// Method called (`create` for the constructor).
        method: &'static str,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The sandboxed plugin trapped (stack overflow, out of fuel, an
    /// invalid memory access, `unreachable`, …); the instance is discarded
    /// and the next call runs on a fresh one.
    #[error("`{method}` trapped: {reason}")]
    Trapped {
        /// Method called (`create` for the constructor).
        method: &'static str,
        /// The trap, e.g. `stack overflow` or `out of fuel`.
        reason: String,
    },
    /// The backend serving this plugin does not support what the call
    /// needs (e.g. a WASM plugin run on a fresh instance per call cannot
    /// return a stream, which would outlive its instance).
    #[error("`{method}`: {what} are not supported by this plugin's backend")]
    Unsupported {
        /// Method called.
        method: &'static str,
        /// What is missing, e.g. `streams`.
        what: &'static str,
    },
    /// A Python plugin raised an exception; the plugin stays usable. (A
    /// value of the wrong shape it returned is a
    /// [`ResultEncode`](Self::ResultEncode) naming the field.)
    #[error("`{method}` raised {}: {}", exception.kind, exception.message)]
    Exception {
        /// Method called (`create` for the constructor).
        method: &'static str,
        /// The exception.
        exception: Box<Exception>,
    },
    /// The plugin broke the ABI: a null buffer, an invalid `bool` or `char`,
    /// invalid UTF-8, or an unknown status code.
    #[error("plugin broke the ABI in `{method}`: {detail}")]
    Protocol {
        /// Method called.
        method: &'static str,
        /// What was wrong.
        detail: String,
    },
}

/// An exception a Python plugin raised ([`CallError::Exception`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    /// The exception's type, e.g. `ValueError`.
    pub kind: String,
    /// Its message (`str(exception)`).
    pub message: String,
    /// The formatted traceback, ending with the exception itself.
    pub traceback: String,
}

/// A ready-made error type for plugin methods: a machine-readable code, a
/// human message and optional structured details.
///
/// Any `E: Serialize + DeserializeOwned` works as a method's error type;
/// this one is for interfaces that do not want to define their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct PluginError {
    /// Stable machine-readable code, e.g. `invalid_input`.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Structured details (field names, limits, offending values, …).
    pub details: BTreeMap<String, String>,
}

impl PluginError {
    /// An error with no details.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            details: BTreeMap::new(),
        }
    }

    /// Adds one detail.
    #[must_use]
    pub fn with_detail(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }
}
