//! The plugin ABI: the one place that defines what crosses a native plugin
//! boundary.
//!
//! A fidius plugin library (a cdylib) exports three kinds of symbols:
//!
//! * [`LIBRARY_SYMBOL`]: a [`LibraryHeader`] saying "this is a fidius
//!   library" and which ABI it speaks (emitted by `fidius_plugin_registry!`).
//! * per plugin, [`META_SYMBOL_PREFIX`]`<Interface>__<Plugin>`: a
//!   pointer-free byte record (see [`crate::meta`]) that tools read straight
//!   from the file, without loading it.
//! * per plugin, [`DESCRIPTOR_SYMBOL_PREFIX`]`<Interface>__<Plugin>`: a
//!   [`PluginDescriptor`] with the vtable and the instance and buffer
//!   functions, read after `dlopen`.
//!
//! Every structure starts with a [`Prefix`] (magic, layout version, size) so
//! a reader checks what it is looking at before it trusts any other field,
//! and a newer host can read an older, shorter descriptor.
//!
//! The full byte-level specification is `docs/src/abi.md`.

use core::ffi::c_void;

/// Version of the native calling convention (descriptor, vtable shapes,
/// status codes). A host only loads plugins with exactly this version.
pub const ABI_VERSION: u32 = 1;

/// Version of the wire format used for serialized arguments and results
/// (see [`crate::wire`]).
pub const WIRE_VERSION: u32 = 1;

/// Magic at the start of a [`LibraryHeader`].
pub const LIBRARY_MAGIC: [u8; 8] = *b"FIDIUSLB";
/// Magic at the start of a [`PluginDescriptor`].
pub const DESCRIPTOR_MAGIC: [u8; 8] = *b"FIDIUSPD";

/// Layout version of [`LibraryHeader`].
pub const LIBRARY_LAYOUT_VERSION: u32 = 1;
/// Layout version of [`PluginDescriptor`].
pub const DESCRIPTOR_LAYOUT_VERSION: u32 = 1;

/// Name of the exported [`LibraryHeader`] symbol.
pub const LIBRARY_SYMBOL: &str = "fidius_library";
/// Prefix of the exported static metadata symbols.
pub const META_SYMBOL_PREFIX: &str = "fidius_meta__";
/// Prefix of the exported [`PluginDescriptor`] symbols.
pub const DESCRIPTOR_SYMBOL_PREFIX: &str = "fidius_desc__";

/// Separator between interface and plugin name in per-plugin symbols.
pub const SYMBOL_SEPARATOR: &str = "__";

/// Status code returned by every vtable entry and by `create`.
pub mod status {
    /// The call succeeded; the result is in the out slot.
    pub const OK: u32 = 0;
    /// The method returned `Err(e)`; the error buffer holds `e` in the wire
    /// format.
    pub const PLUGIN_ERROR: u32 = 1;
    /// The method panicked; the error buffer holds the panic message (UTF-8).
    pub const PANIC: u32 = 2;
    /// The plugin could not decode an argument; the error buffer holds a
    /// UTF-8 message.
    pub const ARGUMENT_DECODE: u32 = 3;
    /// The plugin could not encode its result; the error buffer holds a
    /// UTF-8 message.
    pub const RESULT_ENCODE: u32 = 4;
    /// The plugin does not implement this optional method (its capability
    /// bit is clear). Hosts check the bit first and never call such an
    /// entry; the stub answers this for safety.
    pub const NOT_IMPLEMENTED: u32 = 5;
    /// [`RawStream::next`](super::RawStream::next): the stream is finished;
    /// the out buffer is empty.
    pub const STREAM_END: u32 = 6;
    /// `create`: the configuration could not be decoded; the error buffer
    /// holds a UTF-8 message naming the config type.
    pub const CONFIG_DECODE: u32 = 7;
    /// `create`: the constructor returned `Err(e)`; the error buffer holds
    /// a [`PluginError`](crate::PluginError) in the wire format.
    pub const REJECTED: u32 = 8;
}

/// How result buffers are allocated across the boundary.
///
/// Selected with `#[plugin_interface(buffer = …)]`; recorded in the
/// metadata so host and plugin agree.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BufferStrategy {
    /// The plugin allocates result buffers with its own allocator and the
    /// host hands them back through [`PluginDescriptor::free_buffer`].
    PluginAllocated = 1,
}

impl BufferStrategy {
    /// Decodes the byte stored in the metadata record.
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(Self::PluginAllocated),
            _ => None,
        }
    }
}

/// The fixed prefix of every fidius structure, read first.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    /// [`LIBRARY_MAGIC`] or [`DESCRIPTOR_MAGIC`].
    pub magic: [u8; 8],
    /// Layout version of the structure that follows.
    pub layout_version: u32,
    /// `size_of` the whole structure as the plugin compiled it.
    pub size: u32,
}

/// A borrowed UTF-8 string in a `#[repr(C)]` structure.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct StrRef {
    /// First byte; never null (an empty string points at a static).
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

impl StrRef {
    /// Borrows a `'static` string.
    pub const fn new(s: &'static str) -> Self {
        Self {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }
}

/// A byte buffer owned by the plugin's allocator (a `Vec<u8>` taken apart).
///
/// The host reads `len` bytes at `ptr`, then returns the buffer through
/// [`PluginDescriptor::free_buffer`] exactly once.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RBuf {
    /// Start of the allocation, or null for an empty buffer.
    pub ptr: *mut u8,
    /// Initialized bytes.
    pub len: usize,
    /// Allocated capacity.
    pub cap: usize,
}

impl RBuf {
    /// The empty buffer (nothing to free).
    pub const EMPTY: Self = Self {
        ptr: core::ptr::null_mut(),
        len: 0,
        cap: 0,
    };
}

/// Written into a `create` out slot: the new instance.
pub type InstancePtr = *mut c_void;

/// `create(config_ptr, config_len, host, out_instance, out_error) -> status`:
/// builds one plugin instance. `config` is the wire-encoded configuration
/// (empty for unconfigured plugins); `host` is null or the host's callback
/// table, which the plugin retains if it keeps it.
pub type CreateFn =
    unsafe extern "C" fn(*const u8, usize, *const RawHost, *mut InstancePtr, *mut RBuf) -> u32;
/// `destroy(instance)`: drops an instance made by `create`.
pub type DestroyFn = unsafe extern "C" fn(InstancePtr);
/// `free_buffer(buf)`: returns a result or error buffer to the plugin.
pub type FreeBufferFn = unsafe extern "C" fn(RBuf);

/// Library-wide header exported as [`LIBRARY_SYMBOL`].
#[repr(C)]
#[derive(Debug)]
pub struct LibraryHeader {
    /// Magic, layout version and size.
    pub prefix: Prefix,
    /// [`ABI_VERSION`] the library was built with.
    pub abi_version: u32,
    /// [`WIRE_VERSION`] the library was built with.
    pub wire_version: u32,
    /// Version of `fidius-guest` the library was built with.
    pub fidius_version: StrRef,
}

impl LibraryHeader {
    /// The header of a library built with this crate.
    pub const CURRENT: Self = Self {
        prefix: Prefix {
            magic: LIBRARY_MAGIC,
            layout_version: LIBRARY_LAYOUT_VERSION,
            size: core::mem::size_of::<Self>() as u32,
        },
        abi_version: ABI_VERSION,
        wire_version: WIRE_VERSION,
        fidius_version: StrRef::new(env!("CARGO_PKG_VERSION")),
    };
}

/// One plugin in a library, exported as
/// [`DESCRIPTOR_SYMBOL_PREFIX`]`<Interface>__<Plugin>`.
#[repr(C)]
#[derive(Debug)]
pub struct PluginDescriptor {
    /// Magic, layout version and size.
    pub prefix: Prefix,
    /// [`ABI_VERSION`] of the plugin.
    pub abi_version: u32,
    /// [`WIRE_VERSION`] of the plugin.
    pub wire_version: u32,
    /// Interface (trait) name.
    pub interface_name: StrRef,
    /// Interface version from `#[plugin_interface(version = N)]`.
    pub interface_version: u32,
    /// Number of entries in the vtable: the required methods in declaration
    /// order, then the optional ones in declaration order.
    pub method_count: u32,
    /// [`interface_hash`] of the interface's canonical text.
    pub interface_hash: u64,
    /// Plugin name (the implementing type's name).
    pub plugin_name: StrRef,
    /// The interface's `#[repr(C)]` vtable of function pointers.
    pub vtable: *const c_void,
    /// Returns result and error buffers to the plugin's allocator.
    pub free_buffer: FreeBufferFn,
    /// Builds an instance.
    pub create: CreateFn,
    /// Drops an instance.
    pub destroy: DestroyFn,
    /// Bit `i` is set when the plugin implements the `i`-th optional method
    /// (in vtable order). At most 64 optional methods per interface.
    pub capabilities: u64,
}

/// A pull-based stream of wire-encoded items crossing the boundary in either
/// direction, owned by the side that receives it.
///
/// The receiver calls [`next`](Self::next) to pull a batch of at most
/// `max_items` items (each one postcard value, concatenated in one buffer
/// allocated by the producer and returned through [`free`](Self::free)), and
/// calls [`drop`](Self::drop) exactly once when done, which cancels the
/// producer.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawStream {
    /// The producer's state.
    pub state: *mut c_void,
    /// `next(state, max_items, out, err) -> status`: [`status::OK`] with
    /// 1..=`max_items` items in `out`, [`status::STREAM_END`], or an error
    /// status with a message in `err`.
    pub next: unsafe extern "C" fn(*mut c_void, u32, *mut RBuf, *mut RBuf) -> u32,
    /// Drops the producer's state; called once.
    pub drop: unsafe extern "C" fn(*mut c_void),
    /// Frees buffers written by `next`.
    pub free: FreeBufferFn,
}

/// The host's callback table for a `#[host_interface]`, passed to `create`.
///
/// `state` is reference-counted: a plugin that keeps it calls
/// [`retain`](Self::retain) once and [`release`](Self::release) when done.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawHost {
    /// [`interface_hash`] of the host interface the table implements.
    pub interface_hash: u64,
    /// Number of entries in `vtable`.
    pub method_count: u32,
    /// The host object, passed as `this` to every vtable entry.
    pub state: *mut c_void,
    /// The host interface's vtable.
    pub vtable: *const c_void,
    /// Frees result and error buffers the host returns.
    pub free: FreeBufferFn,
    /// Adds one reference to `state`.
    pub retain: unsafe extern "C" fn(*mut c_void),
    /// Drops one reference to `state`.
    pub release: unsafe extern "C" fn(*mut c_void),
}

// SAFETY: the descriptor is immutable static data; its raw pointers point at
// other immutable statics (strings, the vtable) and are only read.
#[expect(unsafe_code, reason = "descriptors live in statics")]
unsafe impl Sync for PluginDescriptor {}
// SAFETY: as above, `fidius_version` points at a static string.
#[expect(unsafe_code, reason = "the header lives in a static")]
unsafe impl Sync for LibraryHeader {}

/// 64-bit FNV-1a over `bytes`, usable in `const` context.
pub const fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// The interface hash: [`fnv1a64`] of the canonical interface text that
/// `#[plugin_interface]` produces (see `docs/src/abi.md`, "Interface hash").
///
/// This is the only place the hash is computed; the macro's output, the
/// runtime and the CLI all call it.
pub const fn interface_hash(canonical: &str) -> u64 {
    fnv1a64(canonical.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_reference_vectors() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn layout_sizes_are_pinned() {
        // Changing these is an ABI break: bump the layout version.
        assert_eq!(core::mem::size_of::<Prefix>(), 16);
        #[cfg(target_pointer_width = "64")]
        {
            assert_eq!(core::mem::size_of::<LibraryHeader>(), 40);
            assert_eq!(core::mem::size_of::<PluginDescriptor>(), 112);
        }
    }
}
