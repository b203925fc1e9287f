//! Python plugins (feature `python`): a Python class implements a Rust
//! interface, called through the same generated clients as native and
//! WASM plugins.
//!
//! * The interpreter is embedded (pyo3) and started on first use; the GIL
//!   is held only around Python work (converting values and calling).
//! * [`PythonLibrary::open`] imports the plugin's module in isolation (see
//!   `loader.py`): its own package namespace, nothing added to `sys.path`,
//!   no `__pycache__` written. The `fidius` module plugins import is the
//!   SDK in `fidius-runtime/python`, embedded.
//! * Values cross as the fidius wire format on the host side and Python
//!   objects on the plugin side, converted guided by the interface's
//!   types (`<dyn Trait as WitInterface>::model()`, see `value.rs`).
//!
//! Python plugins run with the host's authority: this is not a sandbox.
//! Untrusted code belongs in a WASM guest.

#[expect(
    unsafe_code,
    reason = "PyThreadState_SetAsyncExc, which pyo3 has no safe wrapper for"
)]
mod async_exc;
mod deadline;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz;
mod host;
mod streams;
mod value;

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use fidius_guest::__private::{BatchSource, DynInstance, Instance as ClientInstance, OwnedStream};
use fidius_guest::wit::{Model, Returns, Ty, WitInterface};
use fidius_guest::{CallError, Interface, PluginClient, PluginError};
use pyo3::prelude::*;
use pyo3::types::{PyModule, PyTuple};

use crate::LoadError;

/// The SDK plugins import as `fidius`.
const SDK: &str = include_str!("../../python/fidius/__init__.py");
/// Loads plugin modules in isolation.
const LOADER: &str = include_str!("loader.py");

/// What the runtime keeps of the interpreter.
struct Runtime {
    sdk: Py<PyModule>,
    loader: Py<PyModule>,
    plugin_error: Py<PyAny>,
    err: Py<PyAny>,
}

/// Starts the interpreter and loads the SDK and the loader, once.
fn runtime(py: Python<'_>) -> PyResult<&'static Runtime> {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    if let Some(r) = RUNTIME.get() {
        return Ok(r);
    }
    let modules = py.import("sys")?.getattr("modules")?;
    // The SDK is put in `sys.modules` only once it has run, so no thread
    // sees it half made; a host that imported it itself keeps its copy.
    let sdk = match modules.get_item("fidius") {
        Ok(m) => m.cast_into::<PyModule>()?,
        Err(_) => {
            let module = PyModule::new(py, "fidius")?;
            module.setattr("__file__", "<fidius-runtime>/fidius/__init__.py")?;
            py.run(&cstring(SDK), Some(&module.dict()), None)?;
            modules
                .call_method1("setdefault", ("fidius", module))?
                .cast_into::<PyModule>()?
        }
    };
    let loader = PyModule::from_code(py, &cstring(LOADER), c"fidius_loader.py", c"_fidius_loader")?;
    let runtime = Runtime {
        plugin_error: sdk.getattr("PluginError")?.unbind(),
        err: sdk.getattr("Err")?.unbind(),
        sdk: sdk.unbind(),
        loader: loader.unbind(),
    };
    Ok(RUNTIME.get_or_init(|| runtime))
}

fn cstring(text: &str) -> CString {
    // The embedded sources hold no NUL.
    CString::new(text).unwrap_or_default()
}

/// A name that lives as long as the program (host method names, for the
/// `&'static str` in `CallError`s); each distinct name is kept once.
fn intern(name: &str) -> &'static str {
    static NAMES: std::sync::Mutex<std::collections::BTreeSet<&'static str>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    match names.get(name) {
        Some(known) => known,
        None => {
            let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
            names.insert(leaked);
            leaked
        }
    }
}

fn attach<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    Python::initialize();
    Python::attach(f)
}

/// A Python exception as a typed error: type, message, traceback.
fn exception(py: Python<'_>, method: &'static str, e: &PyErr) -> CallError {
    let kind = e
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    let message = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
    let traceback = e
        .traceback(py)
        .and_then(|tb| pyo3::types::PyTracebackMethods::format(&tb).ok())
        .unwrap_or_default();
    let traceback = format!("{traceback}{kind}: {message}");
    CallError::Exception {
        method,
        exception: Box::new(fidius_guest::Exception {
            kind,
            message,
            traceback,
        }),
    }
}

/// What a Python plugin declares with `@fidius.plugin`, and the methods its
/// class defines.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PythonPluginInfo {
    /// The plugin's name (`name=`, else the class's name).
    pub plugin_name: String,
    /// The interface it implements.
    pub interface_name: String,
    /// That interface's version.
    pub interface_version: u32,
    /// That interface's hash.
    pub interface_hash: u64,
    /// The class's name.
    pub class_name: String,
}

/// A Python plugin module, imported.
pub struct PythonLibrary {
    path: PathBuf,
    plugins: Vec<PythonPluginInfo>,
    classes: Vec<Py<PyAny>>,
}

impl std::fmt::Debug for PythonLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PythonLibrary")
            .field("path", &self.path)
            .field("plugins", &self.plugins)
            .finish_non_exhaustive()
    }
}

impl PythonLibrary {
    /// Imports the plugin module at `path` (a `.py` file; modules beside it
    /// are importable from it) and finds its `@fidius.plugin` classes.
    ///
    /// # Errors
    /// [`LoadError::Io`]-like [`LoadError::Python`] when the file is
    /// missing or its import raises (with the traceback), or a declaration
    /// is malformed.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        let path = path.as_ref();
        let fail = |detail: String| LoadError::Python {
            path: path.to_owned(),
            detail,
        };
        if !path.is_file() {
            return Err(fail("no such Python module file".into()));
        }
        attach(|py| {
            let rt = runtime(py).map_err(|e| fail(format!("cannot start Python: {e}")))?;
            let loaded = rt
                .loader
                .bind(py)
                .call_method1("load", (path.to_string_lossy().as_ref(),))
                .map_err(|e| {
                    let e = exception(py, "import", &e);
                    match e {
                        CallError::Exception { exception, .. } => fail(format!(
                            "the module failed to import:\n{}",
                            exception.traceback
                        )),
                        other => fail(other.to_string()),
                    }
                })?;
            let marked = loaded
                .get_item(2)
                .and_then(|m| m.extract::<Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)>>())
                .map_err(|e| fail(e.to_string()))?;
            let mut plugins = Vec::new();
            let mut classes = Vec::new();
            for (class, declaration) in marked {
                let field = |name: &str| {
                    declaration
                        .get_item(name)
                        .map_err(|e| fail(format!("@fidius.plugin without `{name}`: {e}")))
                };
                let class_name: String = class
                    .getattr("__name__")
                    .and_then(|n| n.extract())
                    .map_err(|e| fail(e.to_string()))?;
                let bad = |what: &str, e: PyErr| {
                    fail(format!(
                        "class `{class_name}`: @fidius.plugin's `{what}`: {e}"
                    ))
                };
                plugins.push(PythonPluginInfo {
                    plugin_name: field("name")?.extract().map_err(|e| bad("name", e))?,
                    interface_name: field("interface")?
                        .extract()
                        .map_err(|e| bad("interface", e))?,
                    interface_version: field("version")?
                        .extract()
                        .map_err(|e| bad("version", e))?,
                    interface_hash: field("hash")?.extract().map_err(|e| bad("hash", e))?,
                    class_name,
                });
                classes.push(class.unbind());
            }
            Ok(Self {
                path: path.to_owned(),
                plugins,
                classes,
            })
        })
    }

    /// The file this was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The plugins the module declares.
    pub fn plugins(&self) -> &[PythonPluginInfo] {
        &self.plugins
    }

    /// Loads plugin `name` (no configuration).
    ///
    /// # Errors
    /// As [`PythonInstanceBuilder::build`].
    pub fn load<C: PluginClient>(&self, name: &str) -> Result<C, LoadError> {
        self.instance(name).build()
    }

    /// Starts building an instance of plugin `name`.
    pub fn instance<'a, C: PluginClient>(&'a self, name: &'a str) -> PythonInstanceBuilder<'a, C> {
        PythonInstanceBuilder {
            library: self,
            name,
            config: None,
            host: None,
            deadline: None,
            _client: std::marker::PhantomData,
        }
    }
}

/// Builds one instance of a Python plugin: its configuration, then
/// [`build`](Self::build).
pub struct PythonInstanceBuilder<'a, C> {
    library: &'a PythonLibrary,
    name: &'a str,
    config: Option<Config>,
    host: Option<(host::HostCall, Result<Model, fidius_guest::wit::WitError>)>,
    deadline: Option<std::time::Duration>,
    _client: std::marker::PhantomData<fn() -> C>,
}

/// An instance's configuration: its encoding, and its type traced from the
/// Rust type the host passed (used when the interface declares none).
struct Config {
    bytes: Result<Vec<u8>, fidius_guest::wire::WireError>,
    traced: Result<(Ty, Model), fidius_guest::wit::WitError>,
}

impl<C> std::fmt::Debug for PythonInstanceBuilder<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PythonInstanceBuilder")
            .field("path", &self.library.path)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<C: PluginClient> PythonInstanceBuilder<'_, C> {
    /// The instance's configuration; it crosses once, to the class's
    /// constructor, as the interface's `config = T` when it declares one,
    /// else as `Cfg` (a `dict` for a struct, see the type mapping).
    pub fn config<Cfg: serde::Serialize + serde::de::DeserializeOwned>(
        mut self,
        config: &Cfg,
    ) -> Self {
        let mut builder = fidius_guest::wit::WitBuilder::new(&<C::Interface as Interface>::INFO);
        let traced = builder
            .ty::<Cfg>("the configuration")
            .map(|ty| (ty, builder.model()));
        self.config = Some(Config {
            bytes: fidius_guest::wire::encode(config),
            traced,
        });
        self
    }

    /// An already encoded configuration (from a package's builder, which
    /// does not know its Rust type): it reaches the plugin as the
    /// interface's declared configuration type.
    #[cfg(feature = "package")]
    pub(crate) fn encoded_config(
        mut self,
        config: Option<Result<Vec<u8>, fidius_guest::wire::WireError>>,
    ) -> Self {
        self.config = config.map(|bytes| Config {
            bytes,
            traced: Err(fidius_guest::wit::WitError::unsupported(
                "its Rust type is not known to a package's instance builder, and the \
                 interface declares no configuration type; load the plugin with \
                 `Package::python_library()` and `.config(&value)`",
            )),
        });
        self
    }

    /// How long each call may run (default: no limit). A call past it is
    /// stopped by raising `fidius.DeadlineExceeded` in it and returns
    /// [`CallError::Timeout`]; the instance stays usable. Python checks for
    /// the exception between bytecodes, so a call blocked in C code stops
    /// when that returns.
    pub fn deadline(mut self, deadline: std::time::Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The host's implementation of the interface's `host = Trait`
    /// interface, which the plugin's class gets as its last constructor
    /// argument and calls like any Python object (`host.lookup("key")`).
    pub fn host(mut self, host: Arc<<C::Interface as Interface>::Host>) -> Self {
        let model = <<C::Interface as Interface>::Host as WitInterface>::model();
        let call: host::HostCall = Arc::new(move |index, args, inputs, streams| {
            <<C::Interface as Interface>::Host as fidius_guest::HostInterface>::dispatch(
                &host, index, args, inputs, streams,
            )
        });
        self.host = Some((call, model));
        self
    }

    /// Checks the plugin against the interface, then creates the instance
    /// (the class called with its configuration, once).
    ///
    /// # Errors
    /// [`LoadError::NoSuchPlugin`], [`LoadError::InterfaceMismatch`] (name,
    /// version or hash), [`LoadError::Python`] (a required method missing
    /// or taking another number of arguments, or an interface type with no
    /// Python form), [`LoadError::NeedsConfig`],
    /// [`LoadError::NotConfigurable`], [`LoadError::ConfigEncode`],
    /// [`LoadError::NeedsHost`], or [`LoadError::Create`] (the constructor
    /// raised; `fidius.PluginError` is [`CallError::Rejected`]).
    pub fn build(self) -> Result<C, LoadError> {
        let library = self.library;
        let path = &library.path;
        let info = &<C::Interface as Interface>::INFO;
        let Some(index) = library
            .plugins
            .iter()
            .position(|p| p.plugin_name == self.name)
        else {
            return Err(LoadError::NoSuchPlugin {
                path: path.clone(),
                interface: info.name.to_owned(),
                plugin: self.name.to_owned(),
                available: library
                    .plugins
                    .iter()
                    .map(|p| format!("{}/{}", p.interface_name, p.plugin_name))
                    .collect(),
            });
        };
        let meta = &library.plugins[index];
        crate::error::check_identity(
            path,
            &meta.plugin_name,
            info,
            (
                &meta.interface_name,
                meta.interface_version,
                meta.interface_hash,
            ),
        )?;
        let python = |detail: String| LoadError::Python {
            path: path.clone(),
            detail: format!("plugin `{}`: {detail}", meta.plugin_name),
        };
        let host =
            match (info.host, self.host) {
                (Some(host), None) => {
                    return Err(LoadError::NeedsHost {
                        path: path.clone(),
                        plugin: meta.plugin_name.clone(),
                        host_interface: host.name,
                    });
                }
                (Some(_), Some((call, model))) => Some((
                    call,
                    Arc::new(model.map_err(|e| {
                        python(format!("the host interface has no Python form: {e}"))
                    })?),
                )),
                (None, _) => None,
            };
        let model = <C::Interface as WitInterface>::model()
            .map_err(|e| python(format!("the interface has no Python form: {e}")))?;
        let declared = model.config.clone();
        let takes_config = declared.is_some()
            || attach(|py| {
                let class = library.classes[index].bind(py);
                let arity: Option<usize> = runtime(py)
                    .and_then(|rt| {
                        rt.loader
                            .bind(py)
                            .call_method1("arity", (class.getattr("__init__")?,))
                    })
                    .and_then(|a| a.extract())
                    .unwrap_or(None);
                let fixed = 1 + usize::from(host.is_some());
                arity.is_some_and(|a| a > fixed)
            });
        let config = match (takes_config, self.config) {
            (true, None) => {
                return Err(LoadError::NeedsConfig {
                    path: path.clone(),
                    plugin: meta.plugin_name.clone(),
                    config_type: info.config.unwrap_or("a configuration").to_owned(),
                });
            }
            (false, Some(_)) => {
                return Err(LoadError::NotConfigurable {
                    path: path.clone(),
                    plugin: meta.plugin_name.clone(),
                });
            }
            (
                _,
                Some(Config {
                    bytes: Err(source), ..
                }),
            ) => {
                return Err(LoadError::ConfigEncode {
                    path: path.clone(),
                    plugin: meta.plugin_name.clone(),
                    source,
                });
            }
            (
                true,
                Some(Config {
                    bytes: Ok(bytes),
                    traced,
                }),
            ) => Some(match declared {
                Some(ty) => (ty, None, bytes),
                None => {
                    let (ty, types) = traced.map_err(|e| {
                        python(format!("the configuration has no Python form: {e}"))
                    })?;
                    (ty, Some(types), bytes)
                }
            }),
            (false, None) => None,
        };
        let model = Arc::new(model);
        let required = info.required_count();
        let plugin = attach(|py| -> Result<PythonPlugin, LoadError> {
            let rt = runtime(py).map_err(|e| python(format!("cannot start Python: {e}")))?;
            let loader = rt.loader.bind(py);
            let class = library.classes[index].bind(py);
            let mut slots = Vec::with_capacity(info.methods.len());
            for (i, m) in model.methods.iter().enumerate() {
                let defined = class
                    .getattr(m.name.as_str())
                    .ok()
                    .filter(|f| f.is_callable());
                let Some(function) = defined else {
                    if i < required {
                        return Err(python(format!(
                            "class `{}` has no method `{}`, which the interface requires",
                            meta.class_name, m.name
                        )));
                    }
                    slots.push(None);
                    continue;
                };
                let arity: Option<usize> = loader
                    .call_method1("arity", (function,))
                    .and_then(|a| a.extract())
                    .map_err(|e| python(e.to_string()))?;
                let wanted = m.params.len() + 1;
                if arity.is_some_and(|a| a != wanted) {
                    return Err(python(format!(
                        "method `{}` of class `{}` takes {} arguments besides `self`; the \
                         interface's takes {}",
                        m.name,
                        meta.class_name,
                        arity.unwrap_or(0).saturating_sub(1),
                        m.params.len()
                    )));
                }
                slots.push(Some(i as u32));
            }
            let mut args = Vec::new();
            if let Some((ty, types, bytes)) = &config {
                let mut input: &[u8] = bytes;
                let value = value::to_py(py, types.as_ref().unwrap_or(&model), ty, &mut input)
                    .and_then(|v| {
                        value::end(input)?;
                        Ok(v)
                    })
                    .map_err(|message| LoadError::Create {
                        path: path.clone(),
                        plugin: meta.plugin_name.clone(),
                        source: CallError::ConfigDecode {
                            message: format!(
                                "`{}`: {message}",
                                info.config.unwrap_or("the configuration")
                            ),
                        },
                    })?;
                args.push(value);
            }
            if let Some((call, host_model)) = &host {
                let host = host::Host::new(Arc::clone(call), Arc::clone(host_model));
                args.push(
                    Bound::new(py, host)
                        .map_err(|e| python(e.to_string()))?
                        .into_any(),
                );
            }
            let args = PyTuple::new(py, args).map_err(|e| python(e.to_string()))?;
            // The constructor is plugin code: under the deadline too.
            let instance = deadline::guarded(py, self.deadline, "create", || {
                class.call1(args).map_err(|e| {
                    rejection(py, rt, "create", &e)
                        .map(|error| CallError::Rejected {
                            error: Box::new(error),
                        })
                        .unwrap_or_else(|| exception(py, "create", &e))
                })
            })
            .map_err(|source| LoadError::Create {
                path: path.clone(),
                plugin: meta.plugin_name.clone(),
                source,
            })?;
            let methods = slots
                .iter()
                .zip(&model.methods)
                .map(|(slot, m)| {
                    slot.and_then(|_| instance.getattr(m.name.as_str()).ok())
                        .map(Bound::unbind)
                })
                .collect();
            Ok(PythonPlugin {
                model: Arc::clone(&model),
                methods,
                slots,
                deadline: self.deadline,
                streams: std::sync::Mutex::new(Returned {
                    next: 1,
                    ..Returned::default()
                }),
            })
        })?;
        let slots = plugin.slots.clone();
        let backend: Arc<dyn DynInstance> = Arc::new(plugin);
        Ok(C::from_instance(ClientInstance::from_dynamic(
            backend,
            &meta.plugin_name,
            &slots,
        )))
    }
}

/// A raised `fidius.PluginError`, as one.
fn rejection(
    py: Python<'_>,
    rt: &Runtime,
    _method: &'static str,
    e: &PyErr,
) -> Option<PluginError> {
    let value = e.value(py);
    if !value.is_instance(rt.plugin_error.bind(py)).ok()? {
        return None;
    }
    let code: String = value.getattr("code").ok()?.extract().ok()?;
    let message: String = value.getattr("message").ok()?.extract().ok()?;
    let mut error = PluginError::new(code, message);
    if let Ok(details) = value
        .getattr("details")
        .and_then(|d| d.extract::<std::collections::BTreeMap<String, String>>())
    {
        error.details = details;
    }
    Some(error)
}

/// One instance of a Python plugin: its bound methods.
struct PythonPlugin {
    model: Arc<Model>,
    /// Per method of the interface: the instance's bound method.
    methods: Vec<Option<Py<PyAny>>>,
    slots: Vec<Option<u32>>,
    streams: std::sync::Mutex<Returned>,
    deadline: Option<std::time::Duration>,
}

impl PythonPlugin {
    fn invoke(
        &self,
        index: usize,
        name: &'static str,
        args: &[u8],
        inputs: Vec<OwnedStream>,
    ) -> Result<Vec<u8>, CallError> {
        let m = self
            .model
            .methods
            .get(index)
            .ok_or_else(|| CallError::Protocol {
                method: name,
                detail: format!("no method number {index}"),
            })?;
        let function = self
            .methods
            .get(index)
            .and_then(Option::as_ref)
            .ok_or(CallError::NotImplemented { method: name })?;
        attach(|py| {
            let rt = runtime(py).map_err(|e| exception(py, name, &e))?;
            let mut input = args;
            let mut inputs: Vec<Option<OwnedStream>> = inputs.into_iter().map(Some).collect();
            let mut values = Vec::with_capacity(m.params.len());
            for (param, ty) in &m.params {
                let decode_error = |message: String| CallError::ArgumentDecode {
                    method: name,
                    message: format!("argument `{param}`: {message}"),
                };
                let v = match ty {
                    // A `u32` position among the call's streams.
                    Ty::Stream(item) => {
                        let position = value::take_u32(&mut input).map_err(decode_error)?;
                        let source = inputs
                            .get_mut(position as usize)
                            .and_then(Option::take)
                            .ok_or_else(|| decode_error(format!("no stream number {position}")))?;
                        let stream = streams::HostStream::new(
                            source,
                            (**item).clone(),
                            Arc::clone(&self.model),
                        );
                        Bound::new(py, stream)
                            .map_err(|e| exception(py, name, &e))?
                            .into_any()
                    }
                    _ => value::to_py(py, &self.model, ty, &mut input).map_err(decode_error)?,
                };
                values.push(v);
            }
            if !input.is_empty() {
                return Err(CallError::ArgumentDecode {
                    method: name,
                    message: format!("{} bytes after the last argument", input.len()),
                });
            }
            let args = PyTuple::new(py, values).map_err(|e| exception(py, name, &e))?;
            // The method, and converting what it returned (a generator
            // given for a list runs as it is converted): one deadline.
            deadline::guarded(py, self.deadline, name, || {
                let result = function.bind(py).call1(args);
                let mut out = Vec::new();
                let encoded = match (&m.returns, result) {
                    (Returns::Plain(ty), Ok(v)) => self.encode(ty, &v, name, &mut out),
                    (Returns::Fallible(ok, _), Ok(v)) => {
                        out.push(0);
                        self.encode(ok, &v, name, &mut out)
                    }
                    (Returns::Fallible(_, err), Err(e)) => {
                        if let Some(error) = rejection(py, rt, name, &e)
                            && matches!(err, Ty::Named(n) if n == "plugin-error")
                        {
                            out.push(1);
                            fidius_guest::wire::encode(&error)
                                .map(|bytes| out.extend_from_slice(&bytes))
                                .map_err(|e| e.to_string())
                        } else if e.value(py).is_instance(rt.err.bind(py)).unwrap_or(false) {
                            out.push(1);
                            match e.value(py).getattr("value") {
                                Ok(v) => value::from_py(&self.model, err, &v, &mut out)
                                    .map_err(|m| format!("the error: {m}")),
                                Err(e) => Err(e.to_string()),
                            }
                        } else {
                            return Err(exception(py, name, &e));
                        }
                    }
                    (Returns::Plain(_), Err(e)) => return Err(exception(py, name, &e)),
                };
                encoded.map_err(|message| CallError::ResultEncode {
                    method: name,
                    message,
                })?;
                Ok(out)
            })
        })
    }
}

impl PythonPlugin {
    /// `call_scalar`: scalar arguments from their bits, the result to its
    /// bits, without the wire format; `None` when the method is not all
    /// scalars.
    fn scalar(
        &self,
        index: usize,
        name: &'static str,
        bits: [u64; 4],
    ) -> Result<Option<u64>, CallError> {
        let Some(m) = self.model.methods.get(index) else {
            return Ok(None);
        };
        let ret = match &m.returns {
            Returns::Plain(t) if value::is_scalar(t) || *t == Ty::Unit => t,
            _ => return Ok(None),
        };
        if m.params.len() > 4 || !m.params.iter().all(|(_, t)| value::is_scalar(t)) {
            return Ok(None);
        }
        let function = self
            .methods
            .get(index)
            .and_then(Option::as_ref)
            .ok_or(CallError::NotImplemented { method: name })?;
        attach(|py| {
            let arg = |i: usize| value::scalar_to_py(py, &m.params[i].1, bits[i]);
            let f = function.bind(py);
            deadline::guarded(py, self.deadline, name, || {
                let result = match m.params.len() {
                    0 => f.call0(),
                    1 => arg(0).and_then(|a| f.call1((a,))),
                    2 => arg(0).and_then(|a| f.call1((a, arg(1)?))),
                    3 => arg(0).and_then(|a| f.call1((a, arg(1)?, arg(2)?))),
                    _ => arg(0).and_then(|a| f.call1((a, arg(1)?, arg(2)?, arg(3)?))),
                };
                let v = result.map_err(|e| exception(py, name, &e))?;
                value::scalar_from_py(ret, &v).map(Some).map_err(|message| {
                    CallError::ResultEncode {
                        method: name,
                        message,
                    }
                })
            })
        })
    }

    /// Encodes a result; a returned stream is kept for the client to take
    /// ([`DynInstance::stream`]) and crosses as its handle.
    fn encode(
        &self,
        ty: &Ty,
        v: &Bound<'_, PyAny>,
        name: &'static str,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let Ty::Stream(item) = ty else {
            return value::from_py(&self.model, ty, v, out);
        };
        let stream = streams::PyStream::new(
            v,
            (**item).clone(),
            Arc::clone(&self.model),
            name,
            self.deadline,
        )
        .map_err(|e| format!("expected an iterable, found {}", e))?;
        let mut table = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let handle = table.next;
        table.next = table.next.wrapping_add(1).max(1);
        table.streams.insert(handle, stream);
        value::put_varint(out, u64::from(handle));
        Ok(())
    }
}

impl Drop for PythonPlugin {
    fn drop(&mut self) {
        // Release the instance now, under the GIL, so its `__del__` runs
        // when the client lets go (not at some later GIL acquisition).
        let methods = std::mem::take(&mut self.methods);
        let streams = std::mem::take(
            &mut self
                .streams
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .streams,
        );
        attach(move |_| {
            drop(methods);
            drop(streams);
        });
    }
}

/// Streams a plugin's methods returned, until the client takes them.
#[derive(Default)]
struct Returned {
    next: u32,
    streams: std::collections::HashMap<u32, streams::PyStream>,
}

impl DynInstance for PythonPlugin {
    fn call(&self, index: usize, name: &'static str, args: &[u8]) -> Result<Vec<u8>, CallError> {
        self.invoke(index, name, args, Vec::new())
    }

    fn call_streams(
        &self,
        index: usize,
        name: &'static str,
        args: &[u8],
        inputs: Vec<OwnedStream>,
    ) -> Result<Vec<u8>, CallError> {
        self.invoke(index, name, args, inputs)
    }

    fn call_scalar(
        &self,
        index: usize,
        name: &'static str,
        args: [u64; 4],
    ) -> Result<Option<u64>, CallError> {
        self.scalar(index, name, args)
    }

    fn stream(&self, name: &'static str, handle: u32) -> Result<Box<dyn BatchSource>, CallError> {
        let mut table = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        match table.streams.remove(&handle) {
            Some(stream) => Ok(Box::new(stream)),
            None => Err(CallError::Protocol {
                method: name,
                detail: format!("no returned stream with handle {handle}"),
            }),
        }
    }
}
