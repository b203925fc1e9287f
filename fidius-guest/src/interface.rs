//! The traits that tie a `#[plugin_interface]` trait to the runtime.

use crate::abi::BufferStrategy;

/// A method of an interface, in vtable order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodInfo {
    /// Method name.
    pub name: &'static str,
    /// Canonical signature, e.g. `fn apply(ApplyInput)->ApplyOutput`.
    pub signature: &'static str,
}

/// Everything static about an interface, produced by `#[plugin_interface]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct InterfaceInfo {
    /// Trait name.
    pub name: &'static str,
    /// `version = N`.
    pub version: u32,
    /// Canonical text the hash is computed from.
    pub canonical: &'static str,
    /// [`interface_hash`](crate::abi::interface_hash) of `canonical`.
    pub hash: u64,
    /// Buffer strategy.
    pub buffer: BufferStrategy,
    /// Methods in vtable order.
    pub methods: &'static [MethodInfo],
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
        }
    }
}

/// Implemented by `#[plugin_interface]` for `dyn Trait`.
pub trait Interface: 'static {
    /// The interface's static description.
    const INFO: InterfaceInfo;
}

/// Implemented by `#[plugin_interface]` for the generated `<Trait>Client`
/// proxy; the runtime builds one after it has validated a plugin.
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
}
