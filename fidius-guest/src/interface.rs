//! The traits that tie a `#[plugin_interface]` trait to the runtime.

use crate::abi::BufferStrategy;

/// Static `key = "value"` pairs from `#[interface_meta]` / `#[method_meta]`.
pub type MetaPairs = &'static [(&'static str, &'static str)];

/// A method of an interface, in vtable order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MethodInfo {
    /// Method name.
    pub name: &'static str,
    /// Canonical signature, e.g. `fn apply(ApplyInput)->ApplyOutput`.
    pub signature: &'static str,
    /// `Some(n)` for `#[optional(since = n)]` methods, which do not enter
    /// the interface hash; `None` for required methods.
    pub since: Option<u32>,
    /// `#[method_meta(key = "value")]` pairs.
    pub meta: MetaPairs,
}

impl MethodInfo {
    /// A required method.
    pub const fn required(name: &'static str, signature: &'static str, meta: MetaPairs) -> Self {
        Self {
            name,
            signature,
            since: None,
            meta,
        }
    }

    /// An `#[optional(since = since)]` method.
    pub const fn optional(
        name: &'static str,
        signature: &'static str,
        since: u32,
        meta: MetaPairs,
    ) -> Self {
        Self {
            name,
            signature,
            since: Some(since),
            meta,
        }
    }

    /// Whether the method is `#[optional]`.
    pub const fn is_optional(&self) -> bool {
        self.since.is_some()
    }

    /// The value of metadata `key`, if declared.
    pub fn meta(&self, key: &str) -> Option<&'static str> {
        lookup(self.meta, key)
    }
}

fn lookup(pairs: MetaPairs, key: &str) -> Option<&'static str> {
    pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// Everything static about an interface, produced by `#[plugin_interface]`
/// (or `#[host_interface]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct InterfaceInfo {
    /// Trait name.
    pub name: &'static str,
    /// `version = N`.
    pub version: u32,
    /// Canonical text of the required methods, which the hash is computed
    /// from.
    pub canonical: &'static str,
    /// [`interface_hash`](crate::abi::interface_hash) of `canonical`.
    pub hash: u64,
    /// Buffer strategy.
    pub buffer: BufferStrategy,
    /// Methods in vtable order: required methods first, then optional ones,
    /// each group in declaration order.
    pub methods: &'static [MethodInfo],
    /// `#[interface_meta(key = "value")]` pairs.
    pub meta: MetaPairs,
    /// The `#[host_interface]` plugins of this interface can call, if any.
    pub host: Option<&'static InterfaceInfo>,
    /// The configuration type the interface declares (`config = C`, as
    /// canonical text), if any.
    pub config: Option<&'static str>,
}

impl InterfaceInfo {
    /// Builds the info; the hash is computed here, from `canonical`.
    pub const fn new(
        name: &'static str,
        version: u32,
        canonical: &'static str,
        buffer: BufferStrategy,
        methods: &'static [MethodInfo],
    ) -> Self {
        Self {
            name,
            version,
            canonical,
            hash: crate::abi::interface_hash(canonical),
            buffer,
            methods,
            meta: &[],
            host: None,
            config: None,
        }
    }

    /// Records the declared configuration type.
    #[must_use]
    pub const fn with_config(mut self, config: Option<&'static str>) -> Self {
        self.config = config;
        self
    }

    /// Adds `#[interface_meta]` pairs.
    #[must_use]
    pub const fn with_meta(mut self, meta: MetaPairs) -> Self {
        self.meta = meta;
        self
    }

    /// Names the host interface.
    #[must_use]
    pub const fn with_host(mut self, host: Option<&'static InterfaceInfo>) -> Self {
        self.host = host;
        self
    }

    /// The value of interface metadata `key`, if declared.
    pub fn meta(&self, key: &str) -> Option<&'static str> {
        lookup(self.meta, key)
    }

    /// The method called `name`.
    pub fn method(&self, name: &str) -> Option<&'static MethodInfo> {
        self.methods.iter().find(|m| m.name == name)
    }

    /// Number of required methods (the first entries of the vtable).
    pub const fn required_count(&self) -> usize {
        let mut n = 0;
        while n < self.methods.len() && self.methods[n].since.is_none() {
            n += 1;
        }
        n
    }
}

/// Implemented by `#[plugin_interface]` for `dyn Trait` (with
/// [`WitInterface`](crate::wit::WitInterface), its types).
pub trait Interface: crate::wit::WitInterface + 'static {
    /// The interface's static description.
    const INFO: InterfaceInfo;
    /// The `#[host_interface]` plugins can call (`dyn HostTrait`), or `()`.
    type Host: ?Sized + HostInterface + Send + Sync;
}

/// Implemented by `#[host_interface]` for `dyn Trait` (and by `()`, "no
/// host interface").
pub trait HostInterface: crate::wit::WitInterface + 'static {
    /// Packs the host's implementation into a callback table for plugins.
    #[doc(hidden)]
    fn export(host: std::sync::Arc<Self>) -> crate::__private::HostExport;

    /// Calls method `index` of `host` with its arguments in the wire format
    /// one after another, returning the result in the wire format: how a
    /// sandboxed (WASM) plugin calls the host.
    ///
    /// A stream argument is a `u32` position in `inputs`; a returned
    /// stream is handed to `streams`, which keeps it for the plugin to pull
    /// and gives the handle the result carries.
    ///
    /// # Errors
    /// Why the call failed: arguments that do not decode, a stream
    /// argument missing from `inputs`, or a panic in the host's method.
    #[doc(hidden)]
    fn dispatch(
        host: &Self,
        index: usize,
        args: &[u8],
        inputs: Vec<crate::__private::OwnedStream>,
        streams: &mut dyn FnMut(crate::__private::OwnedStream) -> u32,
    ) -> Result<Vec<u8>, String> {
        let _ = (host, index, args, inputs, streams);
        Err("this interface has no host methods".into())
    }
}

impl HostInterface for () {
    fn export(_: std::sync::Arc<Self>) -> crate::__private::HostExport {
        crate::__private::HostExport::none()
    }
}

/// Implemented by `#[plugin_interface]` for the generated `<Trait>Client`
/// proxy (and by `#[host_interface]` for `<Trait>Proxy`); the runtime builds
/// one after it has validated a plugin.
pub trait PluginClient: Sized + Send + Sync + 'static {
    /// `dyn Trait` of the interface this client calls.
    type Interface: Interface + ?Sized;

    /// Wraps a validated native instance.
    #[doc(hidden)]
    fn from_instance(instance: crate::__private::Instance) -> Self;

    /// The instance this client calls.
    #[doc(hidden)]
    fn instance(&self) -> &crate::__private::Instance;

    /// Name of the plugin this client calls.
    fn plugin_name(&self) -> &str {
        self.instance().plugin_name()
    }

    /// The interface's static description (name, version, hash, methods).
    fn interface_info(&self) -> &'static crate::InterfaceInfo {
        &<Self::Interface as Interface>::INFO
    }

    /// Whether the plugin implements method `name`: always for required
    /// methods, per its capability bit for `#[optional]` ones, `false` for
    /// names the interface does not have.
    fn supports(&self, name: &str) -> bool {
        let info = &<Self::Interface as Interface>::INFO;
        match info.methods.iter().position(|m| m.name == name) {
            Some(index) => self.instance().slot(index).is_some(),
            None => false,
        }
    }
}
