//! The glue `#[plugin_interface]` and `#[plugin_impl]` expand to. Not public
//! API: names here may change in any release.
//!
//! This module is one of the few places with `unsafe` code. The plugin half
//! (`guard`, `arg_*`, `ret_*`, `create`, `destroy`, `free_buffer`) runs inside
//! the plugin behind `extern "C"` shims; the host half ([`Instance`],
//! [`PluginBytes`], `finish`, `take_*`) runs in the host after the runtime
//! has validated the library.

use core::ffi::c_void;
use std::any::Any;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use serde::{Serialize, de::DeserializeOwned};

pub use crate::CallError;
use crate::abi::{
    ABI_VERSION, DESCRIPTOR_LAYOUT_VERSION, DESCRIPTOR_MAGIC, DestroyFn, FreeBufferFn, WIRE_VERSION,
};
pub use crate::abi::{
    BufferStrategy, CreateFn, InstancePtr, LibraryHeader, PluginDescriptor, Prefix, RBuf, RawHost,
    RawStream, StrRef, status,
};
pub use crate::interface::HostInterface;
pub use crate::meta::foreign_record;
pub use crate::meta::{
    Record as MetaRecord, capabilities, contains, encode as meta_encode, encoded_len as meta_len,
};
pub use crate::stream::{BatchSource, RemoteStream, Stream, StreamFailure};
use crate::wire;
pub use crate::{Interface, InterfaceInfo, MethodInfo, PluginClient};
pub use serde;

pub use crate::PluginError;
pub use crate::wasm_guest::{
    HostCallEvent, HostCallFeed, HostStreamFns, PANIC_PREFIX, ScalarBits, StreamNextFn,
    TypedStreamOut, WasmCreateError, WasmCreateFn, WasmHost, WasmPluginEntry, catch_host_panic,
    fast_arg, fast_bytes, fast_end, fast_ret, fast_ret_bytes, fast_stream_arg, fast_stream_drop,
    fast_stream_next, fast_stream_ret, host_stream_arg, transcode, typed_stream_arg, wasm_config,
    wasm_create, wasm_encode_config, wasm_host_client, wasm_install_panic_hook, wasm_made,
    wasm_not_created, wasm_not_scalar, wit_hash_matches,
};
pub use crate::wit::{
    Returns as WitReturns, Ty as WitTy, WitBuilder, WitError, WitInterface, python_plugin,
    python_stub,
};

/// The host interface of `I` and its types, when it has one (for the
/// Python stubs).
pub fn host_model<I: Interface + ?Sized>() -> Option<(&'static InterfaceInfo, crate::wit::Model)> {
    let info = I::INFO.host?;
    let model = <I::Host as WitInterface>::model().ok()?;
    Some((info, model))
}
pub use inventory;
#[cfg(target_family = "wasm")]
pub use {fidius_derive::WitWire, wit_bindgen};

/// Implemented by `#[plugin_impl]` for the plugin type: the names of the
/// methods its impl block defines, which decide the optional methods'
/// capability bits.
pub trait Implemented {
    /// Method names defined in the impl block.
    const METHODS: &'static [&'static str];
}

/// Whether plugin type `T` defines method `name`.
#[inline(always)]
pub const fn implements<T: Implemented>(name: &str) -> bool {
    contains(T::METHODS, name)
}

/// Implemented by `#[plugin_interface]` for `dyn Trait`: for exactly the
/// declared `config = C` when the interface declares one, for every type
/// when it does not. `#[plugin_impl]` requires it for its own config type
/// (or [`NoConfig`]), so a plugin's configuration is the interface's.
#[diagnostic::on_unimplemented(
    message = "`{Self}` plugins take the configuration type the interface declares, not `{C}`",
    label = "the interface's `#[plugin_interface(config = …)]` type",
    note = "write `#[plugin_impl(Trait, config = <the interface's config type>)]`"
)]
pub trait AcceptsConfig<C: ?Sized> {}

/// The "config type" of a plugin built without `config = …`.
#[derive(Debug)]
pub struct NoConfig;

/// Checks `I: AcceptsConfig<C>` (used by `#[plugin_impl]`).
pub const fn accepts_config<I: ?Sized + AcceptsConfig<C>, C: ?Sized>() {}

/// Implemented by `#[plugin_interface]` for `dyn Trait`, for every `T:
/// Trait`: the vtable of generic shims that call `T`'s methods.
pub trait Implement<T: ?Sized>: Interface {
    /// The interface's `#[repr(C)]` vtable type.
    type VTable: Sync + 'static;
    /// The vtable filled with `T`'s shims.
    const VTABLE: Self::VTable;
}

// ---------------------------------------------------------------------------
// Scalars: values that cross as themselves, never serialized.

/// A type passed by value across the boundary, as its `Repr`.
pub trait Scalar: Sized + Copy {
    /// The `extern "C"` representation.
    type Repr: Copy;
    /// Converts to the representation.
    fn to_repr(self) -> Self::Repr;
    /// Converts back, rejecting representations that are not a valid value.
    ///
    /// # Errors
    /// A message when `repr` is not a valid `Self` (e.g. a `bool` of 2).
    fn from_repr(repr: Self::Repr) -> Result<Self, String>;
}

macro_rules! identity_scalar {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            type Repr = $t;
            #[inline(always)]
            fn to_repr(self) -> $t { self }
            #[inline(always)]
            fn from_repr(repr: $t) -> Result<Self, String> { Ok(repr) }
        }
    )*};
}
identity_scalar!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);

impl Scalar for bool {
    type Repr = u8;
    #[inline(always)]
    fn to_repr(self) -> u8 {
        u8::from(self)
    }
    #[inline(always)]
    fn from_repr(repr: u8) -> Result<Self, String> {
        match repr {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("invalid bool {other}")),
        }
    }
}

impl Scalar for char {
    type Repr = u32;
    #[inline(always)]
    fn to_repr(self) -> u32 {
        u32::from(self)
    }
    #[inline(always)]
    fn from_repr(repr: u32) -> Result<Self, String> {
        char::from_u32(repr).ok_or_else(|| format!("invalid char U+{repr:X}"))
    }
}

impl Scalar for usize {
    type Repr = u64;
    #[inline(always)]
    fn to_repr(self) -> u64 {
        self as u64
    }
    #[inline(always)]
    fn from_repr(repr: u64) -> Result<Self, String> {
        usize::try_from(repr).map_err(|_| format!("usize {repr} out of range"))
    }
}

impl Scalar for isize {
    type Repr = i64;
    #[inline(always)]
    fn to_repr(self) -> i64 {
        self as i64
    }
    #[inline(always)]
    fn from_repr(repr: i64) -> Result<Self, String> {
        isize::try_from(repr).map_err(|_| format!("isize {repr} out of range"))
    }
}

// ---------------------------------------------------------------------------
// Plugin half.

/// Why a shim did not produce a result.
#[derive(Debug)]
pub enum Fault {
    /// The method returned `Err(e)`; `e` encoded.
    PluginError(Vec<u8>),
    /// An argument could not be decoded.
    ArgumentDecode(String),
    /// The result could not be encoded.
    ResultEncode(String),
    /// The configuration could not be decoded (`create`).
    ConfigDecode(String),
    /// The constructor returned an error (`create`); a [`PluginError`]
    /// encoded.
    Rejected(Vec<u8>),
    /// An optional method the plugin does not define.
    NotImplemented,
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(StreamFailure(e)) = payload.downcast_ref::<StreamFailure>() {
        let detail = match e {
            CallError::Panic { message, .. } => message.clone(),
            other => other.to_string(),
        };
        format!("input stream failed: {detail}")
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

/// Hands a `Vec` to the host as an [`RBuf`]; the host returns it through
/// [`free_buffer`].
#[inline]
pub fn buf_from_vec(vec: Vec<u8>) -> RBuf {
    if vec.capacity() == 0 {
        return RBuf::EMPTY;
    }
    let mut vec = ManuallyDrop::new(vec);
    RBuf {
        ptr: vec.as_mut_ptr(),
        len: vec.len(),
        cap: vec.capacity(),
    }
}

/// Frees a buffer made by [`buf_from_vec`] in this (the plugin's) allocator.
///
/// # Safety
/// `buf` must come from [`buf_from_vec`] in the same library and be freed
/// once.
pub unsafe extern "C" fn free_buffer(buf: RBuf) {
    if buf.ptr.is_null() {
        return;
    }
    // SAFETY: per the contract, `buf` is the parts of a `Vec<u8>` this
    // library leaked in `buf_from_vec`, returned exactly once.
    drop(unsafe { Vec::from_raw_parts(buf.ptr, buf.len, buf.cap) });
}

/// Runs a shim body: catches panics and turns faults into a status code and
/// an error buffer. Every `extern "C"` entry point goes through here.
///
/// # Safety
/// `err` must be valid for a write of an [`RBuf`].
#[inline(always)]
pub unsafe fn guard(err: *mut RBuf, body: impl FnOnce() -> Result<(), Fault>) -> u32 {
    let (code, bytes) = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return status::OK,
        Ok(Err(Fault::PluginError(bytes))) => (status::PLUGIN_ERROR, bytes),
        Ok(Err(Fault::ArgumentDecode(msg))) => (status::ARGUMENT_DECODE, msg.into_bytes()),
        Ok(Err(Fault::ResultEncode(msg))) => (status::RESULT_ENCODE, msg.into_bytes()),
        Ok(Err(Fault::ConfigDecode(msg))) => (status::CONFIG_DECODE, msg.into_bytes()),
        Ok(Err(Fault::Rejected(bytes))) => (status::REJECTED, bytes),
        Ok(Err(Fault::NotImplemented)) => (status::NOT_IMPLEMENTED, Vec::new()),
        Err(payload) => (status::PANIC, panic_message(&*payload).into_bytes()),
    };
    // SAFETY: the caller guarantees `err` is writable.
    unsafe { err.write(buf_from_vec(bytes)) };
    code
}

/// Borrows the instance behind `this`.
///
/// # Safety
/// `this` must be an instance made by [`create::<T>`] and not yet destroyed.
#[inline(always)]
pub unsafe fn instance<'a, T>(this: *const c_void) -> &'a T {
    // SAFETY: per the contract `this` came from `Box::<T>::into_raw`.
    unsafe { &*this.cast::<T>() }
}

/// Borrows `(ptr, len)` as bytes.
///
/// # Safety
/// `ptr` must be valid for `len` bytes for `'a` (or `len` is 0).
#[inline(always)]
pub unsafe fn arg_bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: guaranteed by the caller (the generated host proxy passes a
    // live slice).
    unsafe { core::slice::from_raw_parts(ptr, len) }
}

/// Borrows `(ptr, len)` as a string.
///
/// # Safety
/// As [`arg_bytes`], and the bytes are UTF-8 (the host proxy only passes
/// `&str`/`String`, so they are by construction).
#[inline(always)]
pub unsafe fn arg_str<'a>(ptr: *const u8, len: usize) -> &'a str {
    // SAFETY: guaranteed by the caller.
    unsafe { core::str::from_utf8_unchecked(arg_bytes(ptr, len)) }
}

/// Decodes a serialized argument.
///
/// # Safety
/// As [`arg_bytes`].
#[inline]
pub unsafe fn arg_wire<T: DeserializeOwned>(
    ptr: *const u8,
    len: usize,
    name: &str,
) -> Result<T, Fault> {
    // SAFETY: forwarded contract.
    let bytes = unsafe { arg_bytes(ptr, len) };
    wire::decode(bytes).map_err(|e| {
        Fault::ArgumentDecode(format!(
            "argument `{name}` as `{}`: {e}",
            core::any::type_name::<T>()
        ))
    })
}

/// Converts a scalar argument.
#[inline(always)]
pub fn arg_scalar<S: Scalar>(repr: S::Repr, name: &str) -> Result<S, Fault> {
    S::from_repr(repr).map_err(|e| Fault::ArgumentDecode(format!("argument `{name}`: {e}")))
}

/// Writes a scalar result.
///
/// # Safety
/// `out` must be valid for a write.
#[inline(always)]
pub unsafe fn ret_scalar<S: Scalar>(out: *mut S::Repr, value: S) {
    // SAFETY: per the contract.
    unsafe { out.write(value.to_repr()) }
}

/// Writes a `Vec<u8>` result without copying it.
///
/// # Safety
/// `out` must be valid for a write.
#[inline]
pub unsafe fn ret_vec(out: *mut RBuf, value: Vec<u8>) {
    // SAFETY: per the contract.
    unsafe { out.write(buf_from_vec(value)) }
}

/// Writes a serialized result.
///
/// # Safety
/// `out` must be valid for a write.
#[inline]
pub unsafe fn ret_wire<T: Serialize>(out: *mut RBuf, value: &T) -> Result<(), Fault> {
    let bytes = wire::encode(value).map_err(|e| Fault::ResultEncode(e.to_string()))?;
    // SAFETY: per the contract.
    unsafe { out.write(buf_from_vec(bytes)) };
    Ok(())
}

/// Turns a method's `Err(e)` into a fault carrying `e` encoded.
pub fn plugin_error<E: Serialize>(error: &E) -> Fault {
    match wire::encode(error) {
        Ok(bytes) => Fault::PluginError(bytes),
        Err(e) => Fault::ResultEncode(format!("error value: {e}")),
    }
}

/// The body of a plugin's `create` entry point: runs `ctor` under
/// [`guard`] and boxes the instance.
///
/// # Safety
/// `out` and `err` must be valid for writes.
pub unsafe fn create<T: Send + Sync + 'static>(
    out: *mut InstancePtr,
    err: *mut RBuf,
    ctor: impl FnOnce() -> Result<T, Fault>,
) -> u32 {
    let body = || {
        let instance = Box::new(ctor()?);
        // SAFETY: `out` is writable per the contract.
        unsafe { out.write(Box::into_raw(instance).cast()) };
        Ok(())
    };
    // SAFETY: `err` is writable per the contract.
    unsafe { guard(err, body) }
}

/// Decodes the configuration passed to `create`.
///
/// # Safety
/// `(ptr, len)` must be valid as for [`arg_bytes`].
pub unsafe fn config<C: DeserializeOwned>(ptr: *const u8, len: usize) -> Result<C, Fault> {
    // SAFETY: forwarded contract.
    let bytes = unsafe { arg_bytes(ptr, len) };
    wire::decode(bytes).map_err(|e| {
        Fault::ConfigDecode(format!(
            "invalid configuration for `{}`: {e}",
            core::any::type_name::<C>()
        ))
    })
}

/// Wraps a constructor's error for [`IntoPluginErrorExact`] /
/// [`IntoPluginErrorDisplay`] (a `PluginError` keeps its code and details,
/// anything else `Display` becomes a message with code `rejected`).
#[derive(Debug)]
pub struct ErrorWrap<E>(pub E);

/// Picked for `E = PluginError` by autoref (`(&&ErrorWrap(e)).…`).
pub trait IntoPluginErrorExact {
    /// The error as a [`PluginError`].
    fn fidius_plugin_error(&self) -> PluginError;
}

impl IntoPluginErrorExact for &ErrorWrap<PluginError> {
    fn fidius_plugin_error(&self) -> PluginError {
        self.0.clone()
    }
}

/// Picked for any other `E: Display`.
pub trait IntoPluginErrorDisplay {
    /// The error as a [`PluginError`].
    fn fidius_plugin_error(&self) -> PluginError;
}

impl<E: core::fmt::Display> IntoPluginErrorDisplay for ErrorWrap<E> {
    fn fidius_plugin_error(&self) -> PluginError {
        PluginError::new("rejected", self.0.to_string())
    }
}

/// A constructor's `Err`, as a fault carrying the [`PluginError`].
pub fn rejected(error: PluginError) -> Fault {
    match wire::encode(&error) {
        Ok(bytes) => Fault::Rejected(bytes),
        Err(e) => Fault::ResultEncode(format!("constructor error: {e}")),
    }
}

/// The client for the host's callbacks passed to `create`: checks the host
/// interface's hash and retains the host object.
///
/// # Safety
/// `host` must be null or point at a valid [`RawHost`] for this call.
pub unsafe fn host_client<P: PluginClient>(host: *const RawHost) -> Result<P, Fault> {
    let info = &<P::Interface as Interface>::INFO;
    if host.is_null() {
        return Err(Fault::ConfigDecode(format!(
            "this plugin needs the host interface `{}`, but the host passed none",
            info.name
        )));
    }
    // SAFETY: non-null and valid per the contract.
    let raw = unsafe { &*host };
    if raw.interface_hash != info.hash || raw.method_count as usize != info.methods.len() {
        return Err(Fault::ConfigDecode(format!(
            "host interface `{}` mismatch: expected hash {:#018x} with {} methods, \
             the host passed {:#018x} with {}",
            info.name,
            info.hash,
            info.methods.len(),
            raw.interface_hash,
            raw.method_count
        )));
    }
    // SAFETY: validated above; the host keeps the table alive while we hold
    // the reference `from_host` takes.
    Ok(P::from_instance(unsafe { Instance::from_host(raw, info) }))
}

/// `destroy` entry point for plugin type `T`. A panic in `T::drop` is
/// caught and discarded (there is no one to report it to).
///
/// # Safety
/// `this` must come from [`create::<T>`] and be destroyed once.
pub unsafe extern "C" fn destroy<T: Send + Sync + 'static>(this: InstancePtr) {
    // SAFETY: per the contract, `this` is a live `Box<T>` given up here.
    let boxed = unsafe { Box::from_raw(this.cast::<T>()) };
    let _ = catch_unwind(AssertUnwindSafe(move || drop(boxed)));
}

/// Builds a plugin descriptor; used by `#[plugin_impl]` in a `static`.
pub const fn descriptor<T: Send + Sync + 'static>(
    interface: &'static InterfaceInfo,
    plugin_name: &'static str,
    vtable: *const c_void,
    create: CreateFn,
    capabilities: u64,
) -> PluginDescriptor {
    PluginDescriptor {
        prefix: Prefix {
            magic: DESCRIPTOR_MAGIC,
            layout_version: DESCRIPTOR_LAYOUT_VERSION,
            size: core::mem::size_of::<PluginDescriptor>() as u32,
        },
        abi_version: ABI_VERSION,
        wire_version: WIRE_VERSION,
        interface_name: StrRef::new(interface.name),
        interface_version: interface.version,
        method_count: interface.methods.len() as u32,
        interface_hash: interface.hash,
        plugin_name: StrRef::new(plugin_name),
        vtable,
        free_buffer,
        create,
        destroy: destroy::<T>,
        capabilities,
    }
}

// ---------------------------------------------------------------------------
// Host half.

/// Marks an absent optional method in [`InstanceInner::slots`].
const NO_SLOT: u32 = u32::MAX;

struct InstanceInner {
    this: InstancePtr,
    vtable: *const c_void,
    /// Entries in `vtable`.
    method_count: u32,
    /// Per method of the caller's interface (its order): the entry in
    /// `vtable`, or [`NO_SLOT`].
    slots: Box<[u32]>,
    free: FreeBufferFn,
    destroy: DestroyFn,
    plugin_name: String,
    // Keeps the library mapped while this instance lives. Dropped after
    // `destroy` runs (fields drop after `Drop::drop`).
    _library: Option<Arc<dyn Any + Send + Sync>>,
    /// Set for instances behind another backend (WASM): calls go through
    /// it instead of the vtable.
    dynamic: Option<Arc<dyn DynInstance>>,
}

/// A plugin instance served by a backend other than a native vtable (a
/// WASM component): the runtime implements it, the generated clients call
/// it with every argument in the wire format and get the result (for
/// `Result<T, E>` methods: the whole `Result`) back in the wire format.
pub trait DynInstance: Send + Sync + 'static {
    /// Calls method `index` (in the caller's interface order) named `name`
    /// with `args`, its arguments in the wire format one after another.
    ///
    /// # Errors
    /// The [`CallError`] the call ended with.
    fn call(&self, index: usize, name: &'static str, args: &[u8]) -> Result<Vec<u8>, CallError>;

    /// [`call`](Self::call) for a method whose one argument is a byte
    /// buffer and whose result is `Vec<u8>`: `bytes` and the result are the
    /// bytes themselves, not their wire encoding, so a backend with a typed
    /// `list<u8>` path copies them once each way.
    ///
    /// # Errors
    /// The [`CallError`] the call ended with.
    fn call_bytes(
        &self,
        index: usize,
        name: &'static str,
        bytes: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        let mut args = Vec::with_capacity(bytes.len() + 10);
        wire::encode_bytes_into(bytes, &mut args);
        decode_dynamic_bytes(name, &self.call(index, name, &args)?)
    }

    /// [`call`](Self::call) for a method whose arguments (at most four)
    /// and result are scalars, each as the bits of a `u64` ([`ScalarBits`]),
    /// so that no memory crosses; `Ok(None)` when the backend has no such
    /// path for this method (the caller then uses [`call`](Self::call)).
    ///
    /// # Errors
    /// The [`CallError`] the call ended with.
    fn call_scalar(
        &self,
        index: usize,
        name: &'static str,
        args: [u64; 4],
    ) -> Result<Option<u64>, CallError> {
        let _ = (index, name, args);
        Ok(None)
    }

    /// [`call`](Self::call) for a method with stream arguments: `args`
    /// holds each stream argument as a `u32`, its position in `inputs`;
    /// the backend owns `inputs` from here on (the callee pulls them and
    /// drops them when done).
    ///
    /// # Errors
    /// The [`CallError`] the call ended with; [`CallError::Unsupported`]
    /// from backends that do not carry streams.
    fn call_streams(
        &self,
        index: usize,
        name: &'static str,
        args: &[u8],
        inputs: Vec<OwnedStream>,
    ) -> Result<Vec<u8>, CallError> {
        let _ = (index, args, inputs);
        Err(unsupported(name, "streams"))
    }

    /// The stream a call returned, as the `u32` handle its result held.
    ///
    /// # Errors
    /// [`CallError::Unsupported`] from backends that do not carry streams.
    fn stream(&self, name: &'static str, handle: u32) -> Result<Box<dyn BatchSource>, CallError> {
        let _ = handle;
        Err(unsupported(name, "streams"))
    }
}

/// A stream one side gave up to another backend: its producer, pulled in
/// batches of wire-encoded items, and cancelled when this drops.
pub struct OwnedStream {
    /// `None` once handed back to its backend.
    source: Option<Owned>,
    method: &'static str,
}

enum Owned {
    /// A producer behind the C ABI (a local iterator, or a native plugin's).
    Raw(RawStream),
    /// A producer another backend runs (a stream a WASM instance returned),
    /// passed on as it is.
    Batches(Box<dyn BatchSource>),
}

// SAFETY: the producer state behind a `RawStream` is `Send` (streams are
// exported only from `Send` iterators) and is only touched through
// `&mut self`; a `BatchSource` is `Send` by its trait bound.
unsafe impl Send for OwnedStream {}

impl core::fmt::Debug for OwnedStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "OwnedStream({})", self.method)
    }
}

impl OwnedStream {
    /// Takes over `stream` (an argument of `method`).
    pub fn new<T: Serialize + DeserializeOwned + Send + 'static>(
        stream: Stream<T>,
        method: &'static str,
    ) -> Self {
        let mut stream = stream;
        let source = match stream.take_batches() {
            Some(batches) => Owned::Batches(batches),
            None => Owned::Raw(stream.into_raw()),
        };
        Self {
            source: Some(source),
            method,
        }
    }

    /// The method whose argument this is.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// Wraps another backend's producer (one [`into_backend`] took out but
    /// that backend cannot take back after all).
    ///
    /// [`into_backend`]: Self::into_backend
    pub fn from_backend(source: Box<dyn BatchSource>, method: &'static str) -> Self {
        Self {
            source: Some(Owned::Batches(source)),
            method,
        }
    }

    /// The producer itself when it is another backend's, of type `B` (so
    /// that backend can take its own stream back).
    ///
    /// # Errors
    /// `self`, when the producer is something else.
    pub fn into_backend<B: BatchSource>(mut self) -> Result<Box<B>, Self> {
        match self.source.take() {
            Some(Owned::Batches(batches)) if batches.as_any().is::<B>() => {
                match batches.into_any().downcast::<B>() {
                    Ok(own) => Ok(own),
                    // `is` said it is a `B`; nothing is left to hand back.
                    Err(_) => Err(self),
                }
            }
            source => {
                self.source = source;
                Err(self)
            }
        }
    }
}

impl BatchSource for OwnedStream {
    fn next_batch(&mut self, max_items: u32) -> Result<Option<Vec<u8>>, CallError> {
        match &mut self.source {
            Some(Owned::Raw(raw)) => {
                Ok(pull(raw, max_items, self.method)?.map(|b| b.as_slice().to_vec()))
            }
            Some(Owned::Batches(batches)) => batches.next_batch(max_items),
            None => Ok(None),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

impl Drop for OwnedStream {
    fn drop(&mut self) {
        if let Some(Owned::Raw(raw)) = self.source {
            drop_raw_stream(raw);
        }
    }
}

/// Appends a stream argument for [`DynInstance::call_streams`]: its
/// position in `inputs`, as a `u32`.
///
/// # Errors
/// [`CallError::Protocol`] past `u32::MAX` stream arguments.
pub fn encode_stream_arg_into<T: Serialize + DeserializeOwned + Send + 'static>(
    out: &mut Vec<u8>,
    inputs: &mut Vec<OwnedStream>,
    method: &'static str,
    stream: Stream<T>,
) -> Result<(), CallError> {
    let position = u32::try_from(inputs.len()).map_err(|_| CallError::Protocol {
        method,
        detail: "too many stream arguments".into(),
    })?;
    inputs.push(OwnedStream::new(stream, method));
    encode_arg_into(out, method, "stream", &position)
}

/// Pulls one batch from a [`BatchSource`]: `Ok(None)` at the end.
pub(crate) fn pull_batches(
    source: &mut dyn BatchSource,
    max_items: u32,
    method: &'static str,
) -> Result<Option<PluginBytes>, CallError> {
    match source.next_batch(max_items)? {
        None => Ok(None),
        Some(bytes) if bytes.is_empty() => Err(CallError::Protocol {
            method,
            detail: "stream returned an empty batch".into(),
        }),
        Some(bytes) => {
            // SAFETY: the buffer is a `Vec` of this binary's allocator,
            // which `free_buffer` returns it to.
            unsafe { PluginBytes::new(free_buffer, method, buf_from_vec(bytes)) }.map(Some)
        }
    }
}

unsafe extern "C" fn no_destroy(_: InstancePtr) {}

unsafe extern "C" fn no_free(_: RBuf) {}

/// A [`DynInstance`] was asked for something its backend does not carry
/// (e.g. a returned stream from a fresh instance per call).
pub fn unsupported(method: &'static str, what: &'static str) -> CallError {
    CallError::Unsupported { method, what }
}

// SAFETY: the instance is a `T: Send + Sync` (enforced by `create::<T>`'s
// bounds and by interfaces requiring `Send + Sync`), or a host object behind
// an `Arc<dyn Trait>` with `Trait: Send + Sync`; the vtable and function
// pointers are immutable statics of a library kept loaded by `_library` (or
// of the host binary).
unsafe impl Send for InstanceInner {}
// SAFETY: as above; every vtable entry takes `&self`.
unsafe impl Sync for InstanceInner {}

impl Drop for InstanceInner {
    fn drop(&mut self) {
        // SAFETY: `this` came from the same descriptor's `create` (or was
        // retained from a `RawHost`) and is released exactly once, here;
        // the library is still loaded.
        unsafe { (self.destroy)(self.this) }
    }
}

/// A live plugin instance inside a loaded native library (or, in a plugin,
/// the host's callback object). Cloning shares the instance; it is
/// destroyed when the last clone drops, and the library stays loaded until
/// then.
#[derive(Clone)]
pub struct Instance {
    inner: Arc<InstanceInner>,
}

impl core::fmt::Debug for Instance {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Instance")
            .field("plugin", &self.inner.plugin_name)
            .finish_non_exhaustive()
    }
}

/// What `create` is given.
#[derive(Debug, Clone, Copy)]
pub struct CreateArgs<'a> {
    /// The wire-encoded configuration (empty for none).
    pub config: &'a [u8],
    /// The host's callback table, if the interface has one.
    pub host: Option<&'a RawHost>,
    /// Per method of the caller's interface: its vtable entry in this
    /// plugin, or `None` for an optional method the plugin lacks.
    pub slots: &'a [Option<u32>],
}

impl Instance {
    /// Calls the descriptor's `create`.
    ///
    /// # Safety
    /// `descriptor` must be a validated descriptor of a library that
    /// `library` keeps loaded, and `args.slots` must map the caller's
    /// interface onto entries of its vtable with matching signatures.
    ///
    /// # Errors
    /// The [`CallError`] the constructor produced: [`CallError::Panic`],
    /// [`CallError::ConfigDecode`], [`CallError::Rejected`], or
    /// [`CallError::Protocol`] when it returns garbage.
    pub unsafe fn create(
        descriptor: &PluginDescriptor,
        plugin_name: &str,
        library: Arc<dyn Any + Send + Sync>,
        args: CreateArgs<'_>,
    ) -> Result<Self, CallError> {
        if let Some(&bad) = args
            .slots
            .iter()
            .flatten()
            .find(|&&s| s >= descriptor.method_count)
        {
            return Err(CallError::Protocol {
                method: "create",
                detail: format!(
                    "slot {bad} beyond the vtable's {} entries",
                    descriptor.method_count
                ),
            });
        }
        let mut this: InstancePtr = core::ptr::null_mut();
        let mut err = RBuf::EMPTY;
        let host = args.host.map_or(core::ptr::null(), |h| h as *const RawHost);
        // SAFETY: out slots are valid locals; the descriptor is validated;
        // the config slice and host table outlive the call.
        let code = unsafe {
            (descriptor.create)(
                args.config.as_ptr(),
                args.config.len(),
                host,
                &mut this,
                &mut err,
            )
        };
        let free = descriptor.free_buffer;
        // SAFETY: `err` was written by this library's `create`.
        match unsafe { finish_with(free, "create", code, err) }? {
            Outcome::Ok => {}
            Outcome::PluginError(_) => {
                return Err(CallError::Protocol {
                    method: "create",
                    detail: "constructor returned a method error status".into(),
                });
            }
        }
        if this.is_null() {
            return Err(CallError::Protocol {
                method: "create",
                detail: "constructor returned a null instance".into(),
            });
        }
        Ok(Self {
            inner: Arc::new(InstanceInner {
                this,
                vtable: descriptor.vtable,
                method_count: descriptor.method_count,
                slots: args.slots.iter().map(|s| s.unwrap_or(NO_SLOT)).collect(),
                free,
                destroy: descriptor.destroy,
                plugin_name: plugin_name.to_owned(),
                _library: Some(library),
                dynamic: None,
            }),
        })
    }

    /// An instance served by `backend`. `slots` says, per method of the
    /// caller's interface, whether the plugin implements it (`Some`).
    pub fn from_dynamic(
        backend: Arc<dyn DynInstance>,
        plugin_name: &str,
        slots: &[Option<u32>],
    ) -> Self {
        Self {
            inner: Arc::new(InstanceInner {
                this: core::ptr::null_mut(),
                vtable: core::ptr::null(),
                method_count: 0,
                slots: slots.iter().map(|s| s.unwrap_or(NO_SLOT)).collect(),
                free: no_free,
                destroy: no_destroy,
                plugin_name: plugin_name.to_owned(),
                _library: None,
                dynamic: Some(backend),
            }),
        }
    }

    /// The stream a [`DynInstance`] call returned (`handle` in its result),
    /// keeping this instance alive while it is read.
    ///
    /// # Errors
    /// As [`DynInstance::stream`].
    pub fn dynamic_stream<T>(
        &self,
        method: &'static str,
        handle: u32,
    ) -> Result<RemoteStream<T>, CallError> {
        let backend = self.dynamic().ok_or_else(|| CallError::Protocol {
            method,
            detail: "not an instance of a dynamic backend".into(),
        })?;
        let source = backend.stream(method, handle)?;
        let keep: Arc<dyn Any + Send + Sync> = self.inner.clone();
        Ok(RemoteStream::from_batches(source, method, Some(keep)))
    }

    /// The backend of an instance made by [`from_dynamic`](Self::from_dynamic).
    #[inline(always)]
    pub fn dynamic(&self) -> Option<&dyn DynInstance> {
        self.inner.dynamic.as_deref()
    }

    /// Wraps the host's callback table (in a plugin), retaining the host
    /// object until the last clone drops.
    ///
    /// # Safety
    /// `raw` must be a valid table for `info`'s interface (hash and method
    /// count checked by the caller).
    unsafe fn from_host(raw: &RawHost, info: &InterfaceInfo) -> Self {
        // SAFETY: per the contract `state` is live; we take one reference,
        // released in `InstanceInner::drop` through `destroy`.
        unsafe { (raw.retain)(raw.state) };
        Self {
            inner: Arc::new(InstanceInner {
                this: raw.state,
                vtable: raw.vtable,
                method_count: raw.method_count,
                slots: (0..info.methods.len() as u32).collect(),
                free: raw.free,
                destroy: raw.release,
                plugin_name: info.name.to_owned(),
                _library: None,
                dynamic: None,
            }),
        }
    }

    /// The plugin's name.
    pub fn plugin_name(&self) -> &str {
        &self.inner.plugin_name
    }

    /// The instance pointer to pass to vtable entries.
    #[inline(always)]
    pub fn this(&self) -> *const c_void {
        self.inner.this
    }

    /// The vtable entry of the caller's method `index`, or `None` when the
    /// plugin lacks that optional method.
    #[inline(always)]
    pub fn slot(&self, index: usize) -> Option<usize> {
        match self.inner.slots.get(index) {
            Some(&slot) if slot != NO_SLOT => Some(slot as usize),
            _ => None,
        }
    }

    /// Reads vtable entry `slot` as a function pointer of type `F`.
    ///
    /// # Safety
    /// `slot` must come from [`slot`](Self::slot) for a method whose entry
    /// type is `F`.
    #[inline(always)]
    pub unsafe fn entry<F: Copy>(&self, slot: usize) -> F {
        debug_assert!(slot < self.inner.method_count as usize);
        debug_assert_eq!(size_of::<F>(), size_of::<*const c_void>());
        // SAFETY: vtables are `#[repr(C)]` structs of function pointers,
        // laid out like an array; `slot` is within the `method_count`
        // entries (checked when the slots were built) and the entry's type
        // is `F` per the contract.
        unsafe {
            self.inner
                .vtable
                .cast::<*const c_void>()
                .add(slot)
                .cast::<F>()
                .read()
        }
    }

    /// Takes ownership of a buffer the plugin returned.
    ///
    /// # Safety
    /// `buf` must have been written by this instance's library.
    #[inline]
    pub unsafe fn take(&self, method: &'static str, buf: RBuf) -> Result<PluginBytes, CallError> {
        // SAFETY: forwarded contract.
        unsafe { PluginBytes::new(self.inner.free, method, buf) }
    }

    /// Wraps a stream the plugin returned; it keeps this instance (and its
    /// library) alive.
    ///
    /// # Safety
    /// `raw` must have been written by this instance's library as a result.
    #[inline]
    pub unsafe fn take_stream<T>(&self, method: &'static str, raw: RawStream) -> RemoteStream<T> {
        let keep: Arc<dyn Any + Send + Sync> = self.inner.clone();
        RemoteStream::from_raw(raw, method, Some(keep))
    }
}

/// A buffer owned by the plugin's allocator; returned to it on drop.
pub struct PluginBytes {
    buf: RBuf,
    free: FreeBufferFn,
}

impl PluginBytes {
    /// Validates `buf` (null with a non-zero length, `len > cap`).
    ///
    /// # Safety
    /// `buf` must have been written by the library `free` belongs to.
    pub(crate) unsafe fn new(
        free: FreeBufferFn,
        method: &'static str,
        buf: RBuf,
    ) -> Result<Self, CallError> {
        if (buf.ptr.is_null() && buf.len != 0) || buf.len > buf.cap {
            // Do not hand a malformed buffer back to the plugin's allocator.
            return Err(CallError::Protocol {
                method,
                detail: format!(
                    "malformed buffer (ptr {:p}, len {}, cap {})",
                    buf.ptr, buf.len, buf.cap
                ),
            });
        }
        Ok(Self { buf, free })
    }

    /// The bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        if self.buf.len == 0 {
            return &[];
        }
        // SAFETY: validated non-null with `len <= cap` in `new`; the plugin
        // does not touch the buffer until we free it.
        unsafe { core::slice::from_raw_parts(self.buf.ptr, self.buf.len) }
    }
}

impl Drop for PluginBytes {
    fn drop(&mut self) {
        // SAFETY: the buffer came from this library and is freed once.
        unsafe { (self.free)(self.buf) }
    }
}

/// What a successful status said.
#[derive(Debug)]
pub enum Outcome {
    /// The out slot holds the result.
    Ok,
    /// The method returned `Err(e)`; the bytes hold `e`.
    PluginError(PluginBytes),
}

impl core::fmt::Debug for PluginBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PluginBytes({} bytes)", self.buf.len)
    }
}

unsafe fn finish_with(
    free: FreeBufferFn,
    method: &'static str,
    code: u32,
    err: RBuf,
) -> Result<Outcome, CallError> {
    if code == status::OK {
        return Ok(Outcome::Ok);
    }
    // SAFETY: `err` was written by the library `free` belongs to.
    let bytes = unsafe { PluginBytes::new(free, method, err) }?;
    let text = || String::from_utf8_lossy(bytes.as_slice()).into_owned();
    Err(match code {
        status::PLUGIN_ERROR => return Ok(Outcome::PluginError(bytes)),
        status::PANIC => CallError::Panic {
            method,
            message: text(),
        },
        status::ARGUMENT_DECODE => CallError::ArgumentDecode {
            method,
            message: text(),
        },
        status::RESULT_ENCODE => CallError::ResultEncode {
            method,
            message: text(),
        },
        status::NOT_IMPLEMENTED => CallError::NotImplemented { method },
        status::CONFIG_DECODE => CallError::ConfigDecode { message: text() },
        status::REJECTED => match wire::decode::<PluginError>(bytes.as_slice()) {
            Ok(error) => CallError::Rejected {
                error: Box::new(error),
            },
            Err(e) => CallError::Protocol {
                method,
                detail: format!("undecodable constructor error: {e}"),
            },
        },
        other => CallError::Protocol {
            method,
            detail: format!("unknown status code {other}"),
        },
    })
}

/// Interprets a vtable entry's status code.
///
/// # Safety
/// `err` must have been written by `instance`'s library (or be
/// [`RBuf::EMPTY`]).
///
/// # Errors
/// The [`CallError`] the status stands for.
#[inline]
pub unsafe fn finish(
    instance: &Instance,
    method: &'static str,
    code: u32,
    err: RBuf,
) -> Result<Outcome, CallError> {
    if code == status::OK {
        return Ok(Outcome::Ok);
    }
    // SAFETY: forwarded contract.
    unsafe { finish_with(instance.inner.free, method, code, err) }
}

/// For methods that do not return `Result`: a plugin-error status is a
/// protocol violation.
///
/// # Errors
/// [`CallError::Protocol`] for [`Outcome::PluginError`].
#[inline]
pub fn expect_ok(method: &'static str, outcome: Outcome) -> Result<(), CallError> {
    match outcome {
        Outcome::Ok => Ok(()),
        Outcome::PluginError(_) => Err(CallError::Protocol {
            method,
            detail: "plugin returned an error from an infallible method".into(),
        }),
    }
}

/// Encodes an argument on the host.
///
/// # Errors
/// [`CallError::ArgumentEncode`].
#[inline]
pub fn encode_arg<T: Serialize + ?Sized>(
    method: &'static str,
    argument: &'static str,
    value: &T,
) -> Result<Vec<u8>, CallError> {
    wire::encode(value).map_err(|source| CallError::ArgumentEncode {
        method,
        argument,
        source,
    })
}

/// [`encode_arg`] appending to `out` (a [`DynInstance`] call's arguments,
/// one after another).
///
/// # Errors
/// [`CallError::ArgumentEncode`].
#[inline]
pub fn encode_arg_into<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    method: &'static str,
    argument: &'static str,
    value: &T,
) -> Result<(), CallError> {
    let taken = core::mem::take(out);
    match postcard::to_extend(value, taken) {
        Ok(filled) => {
            *out = filled;
            Ok(())
        }
        Err(e) => Err(CallError::ArgumentEncode {
            method,
            argument,
            source: e.into(),
        }),
    }
}

/// [`encode_arg_into`] for byte buffers (`Vec<u8>`, `&[u8]`): the same
/// bytes, one copy.
#[inline]
pub fn encode_bytes_arg_into(out: &mut Vec<u8>, bytes: &[u8]) {
    wire::encode_bytes_into(bytes, out);
}

/// Converts a scalar result.
///
/// # Errors
/// [`CallError::Protocol`] when the plugin wrote an invalid value.
#[inline(always)]
pub fn take_scalar<S: Scalar>(method: &'static str, repr: S::Repr) -> Result<S, CallError> {
    S::from_repr(repr).map_err(|detail| CallError::Protocol { method, detail })
}

/// [`decode_dynamic`] for a `Vec<u8>` result, one copy.
///
/// # Errors
/// [`CallError::ResultDecode`].
#[inline]
pub fn decode_dynamic_bytes(method: &'static str, bytes: &[u8]) -> Result<Vec<u8>, CallError> {
    let mut input = bytes;
    let decoded = wire::take_bytes(&mut input).and_then(|b| {
        if input.is_empty() {
            Ok(b.to_vec())
        } else {
            wire::decode::<Vec<u8>>(bytes)
        }
    });
    decoded.map_err(|source| CallError::ResultDecode {
        method,
        what: "result",
        expected: "Vec<u8>",
        source: Box::new(source),
    })
}

/// Decodes the result a [`DynInstance`] returned.
///
/// # Errors
/// [`CallError::ResultDecode`].
#[inline]
pub fn decode_dynamic<T: DeserializeOwned>(
    method: &'static str,
    bytes: &[u8],
) -> Result<T, CallError> {
    wire::decode(bytes).map_err(|source| CallError::ResultDecode {
        method,
        what: "result",
        expected: core::any::type_name::<T>(),
        source: Box::new(source),
    })
}

/// Decodes a serialized value (`what` is `result` or `error`).
///
/// # Errors
/// [`CallError::ResultDecode`].
#[inline]
pub fn decode_value<T: DeserializeOwned>(
    method: &'static str,
    what: &'static str,
    bytes: &PluginBytes,
) -> Result<T, CallError> {
    wire::decode(bytes.as_slice()).map_err(|source| CallError::ResultDecode {
        method,
        what,
        expected: core::any::type_name::<T>(),
        source: Box::new(source),
    })
}

/// Copies a `Vec<u8>` result into the host's allocator.
#[inline]
pub fn take_vec(bytes: &PluginBytes) -> Vec<u8> {
    bytes.as_slice().to_vec()
}

/// Copies a `String` result, checking UTF-8.
///
/// # Errors
/// [`CallError::Protocol`] when the plugin returned invalid UTF-8.
#[inline]
pub fn take_string(method: &'static str, bytes: &PluginBytes) -> Result<String, CallError> {
    core::str::from_utf8(bytes.as_slice())
        .map(str::to_owned)
        .map_err(|e| CallError::Protocol {
            method,
            detail: format!("result is not valid UTF-8: {e}"),
        })
}

/// Compile-time check that a type crosses the boundary by serialization.
pub const fn assert_wire<T: Serialize + DeserializeOwned>() {}

/// The error for an optional method the plugin lacks.
#[inline]
pub fn not_implemented(method: &'static str) -> CallError {
    CallError::NotImplemented { method }
}

// ---------------------------------------------------------------------------
// Streams (both directions; see `crate::stream`).

/// Stop filling a batch once it holds this many bytes (at least one item is
/// always sent), so large items do not pile up in one buffer.
const BATCH_BYTES: usize = 256 * 1024;

struct Producer<T> {
    source: Box<dyn crate::stream::Source<T>>,
    finished: bool,
    /// An error met after some items of a batch were already encoded:
    /// reported on the next pull, after those items.
    pending: Option<(u32, Vec<u8>)>,
}

/// Exports a local producer as a [`RawStream`] whose functions live in
/// this binary.
pub(crate) fn export_source<T: Serialize + 'static>(
    source: Box<dyn crate::stream::Source<T>>,
) -> RawStream {
    let producer = Box::new(Producer {
        source,
        finished: false,
        pending: None,
    });
    RawStream {
        state: Box::into_raw(producer).cast(),
        next: producer_next::<T>,
        drop: producer_drop::<T>,
        free: free_buffer,
    }
}

fn write_err(err: *mut RBuf, bytes: Vec<u8>) {
    // SAFETY: callers pass the `err` slot of `RawStream::next`, valid for a
    // write per its contract.
    unsafe { err.write(buf_from_vec(bytes)) }
}

unsafe extern "C" fn producer_next<T: Serialize + 'static>(
    state: *mut c_void,
    max_items: u32,
    out: *mut RBuf,
    err: *mut RBuf,
) -> u32 {
    // SAFETY: `state` is the `Producer<T>` made by `export_source::<T>`; the
    // consumer owns the stream and pulls through `&mut`, one call at a time.
    let producer = unsafe { &mut *state.cast::<Producer<T>>() };
    if let Some((code, bytes)) = producer.pending.take() {
        write_err(err, bytes);
        return code;
    }
    if producer.finished {
        return status::STREAM_END;
    }
    let max_items = max_items.max(1);
    // Room for a batch of small items up front.
    let mut buf = Vec::with_capacity((max_items as usize).min(1024) * 8);
    let mut count = 0u32;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        producer
            .source
            .fill(&mut buf, &mut count, max_items, BATCH_BYTES)
            .map_err(|e| format!("stream item: {e}"))
    }));
    let failure = match outcome {
        Ok(Ok(ended)) => {
            producer.finished = ended;
            None
        }
        Ok(Err(message)) => Some((status::RESULT_ENCODE, message.into_bytes())),
        Err(payload) => Some((status::PANIC, panic_message(&*payload).into_bytes())),
    };
    if let Some(failure) = failure {
        producer.finished = true;
        // The iterator may be in any state after a panic: drop it now.
        let source = core::mem::replace(
            &mut producer.source,
            Box::new(crate::stream::IterSource(core::iter::empty())),
        );
        let _ = catch_unwind(AssertUnwindSafe(move || drop(source)));
        if count == 0 {
            write_err(err, failure.1);
            return failure.0;
        }
        producer.pending = Some(failure);
    }
    if count == 0 {
        return status::STREAM_END;
    }
    // SAFETY: `out` is valid for a write per `RawStream::next`'s contract.
    unsafe { out.write(buf_from_vec(buf)) };
    status::OK
}

unsafe extern "C" fn producer_drop<T: 'static>(state: *mut c_void) {
    // SAFETY: `state` is the `Producer<T>` made by `export_source::<T>`,
    // dropped once by the stream's owner.
    let producer = unsafe { Box::from_raw(state.cast::<Producer<T>>()) };
    let _ = catch_unwind(AssertUnwindSafe(move || drop(producer)));
}

/// Pulls one batch: `Ok(None)` at the end of the stream.
pub(crate) fn pull(
    raw: &RawStream,
    max_items: u32,
    method: &'static str,
) -> Result<Option<PluginBytes>, CallError> {
    let mut out = RBuf::EMPTY;
    let mut err = RBuf::EMPTY;
    // SAFETY: the stream is owned by the caller and not yet dropped; the
    // out slots are valid locals.
    let code = unsafe { (raw.next)(raw.state, max_items, &mut out, &mut err) };
    match code {
        status::OK => {
            // SAFETY: `out` was written by the producer, whose allocator
            // `raw.free` belongs to.
            let bytes = unsafe { PluginBytes::new(raw.free, method, out) }?;
            if bytes.as_slice().is_empty() {
                return Err(CallError::Protocol {
                    method,
                    detail: "stream returned an empty batch".into(),
                });
            }
            Ok(Some(bytes))
        }
        status::STREAM_END => Ok(None),
        // SAFETY: `err` was written by the producer.
        code => match unsafe { finish_with(raw.free, method, code, err) } {
            Err(e) => Err(e),
            Ok(_) => Err(CallError::Protocol {
                method,
                detail: format!("unexpected stream status {code}"),
            }),
        },
    }
}

/// Drops a raw stream (cancels its producer).
pub(crate) fn drop_raw_stream(raw: RawStream) {
    // SAFETY: called once by the stream's owner.
    unsafe { (raw.drop)(raw.state) }
}

/// Turns a stream argument or result into its raw form (the receiver owns
/// it).
#[inline]
pub fn export_stream<T: Serialize + DeserializeOwned + Send + 'static>(
    stream: Stream<T>,
) -> RawStream {
    stream.into_raw()
}

/// A stream argument for a call, from anything iterable. A `Stream<T>`
/// (e.g. a returned stream passed on with `RemoteStream::into_stream`) is
/// used as it is, so its producer is handed on rather than wrapped.
#[inline]
pub fn stream_arg<T, I>(items: I) -> Stream<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    I: IntoIterator<Item = T>,
    I::IntoIter: Send + 'static,
{
    let mut slot = Some(items.into_iter());
    if let Some(stream) = (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<Stream<T>>>()
        .and_then(Option::take)
    {
        return stream;
    }
    match slot {
        Some(iter) => Stream::new(iter),
        // Taken above only when it was a `Stream<T>`.
        None => Stream::empty(),
    }
}

/// Takes ownership of a stream argument received by a shim.
///
/// # Safety
/// `raw` must be a stream the caller gave up for this call.
#[inline]
pub unsafe fn import_stream<T>(raw: RawStream, method: &'static str) -> Stream<T> {
    Stream::from_remote(RemoteStream::from_raw(raw, method, None))
}

/// Writes a returned stream into its out slot.
///
/// # Safety
/// `out` must be valid for a write.
#[inline]
pub unsafe fn ret_stream<T: Serialize + DeserializeOwned + Send + 'static>(
    out: *mut RawStream,
    value: Stream<T>,
) {
    // SAFETY: per the contract.
    unsafe { out.write(value.into_raw()) }
}

// ---------------------------------------------------------------------------
// Host interfaces: the host's side.

/// The host's implementation of a `#[host_interface]`, packed for plugins:
/// a [`RawHost`] holding one reference to the host object.
#[derive(Debug)]
pub struct HostExport {
    raw: Option<RawHost>,
}

// SAFETY: the host object is an `Arc<dyn Trait>` with `Trait: Send + Sync`.
unsafe impl Send for HostExport {}
// SAFETY: as above; the table is immutable.
unsafe impl Sync for HostExport {}

impl HostExport {
    /// No host interface.
    pub fn none() -> Self {
        Self { raw: None }
    }

    /// Packs `host` with the `vtable` of shims `#[host_interface]` made for
    /// `I`.
    ///
    /// # Safety
    /// `vtable` must be the host interface's vtable for `I` whose entries
    /// expect `this` to point at an `Arc<I>`, with `info.methods.len()`
    /// entries.
    pub unsafe fn new<I: ?Sized + Send + Sync + 'static>(
        host: Arc<I>,
        vtable: *const c_void,
        info: &'static InterfaceInfo,
    ) -> Self {
        let state = Arc::into_raw(Arc::new(host)).cast_mut().cast::<c_void>();
        Self {
            raw: Some(RawHost {
                interface_hash: info.hash,
                method_count: info.methods.len() as u32,
                state,
                vtable,
                free: free_buffer,
                retain: host_retain::<I>,
                release: host_release::<I>,
            }),
        }
    }

    /// The table to pass to `create`, if any.
    pub fn raw(&self) -> Option<&RawHost> {
        self.raw.as_ref()
    }
}

impl Drop for HostExport {
    fn drop(&mut self) {
        if let Some(raw) = self.raw {
            // SAFETY: drops the reference `new` took.
            unsafe { (raw.release)(raw.state) }
        }
    }
}

unsafe extern "C" fn host_retain<I: ?Sized + 'static>(state: *mut c_void) {
    // SAFETY: `state` came from `Arc::into_raw` of an `Arc<Arc<I>>` in
    // `HostExport::new` and is still referenced by the caller.
    unsafe { Arc::<Arc<I>>::increment_strong_count(state.cast::<Arc<I>>()) }
}

unsafe extern "C" fn host_release<I: ?Sized + 'static>(state: *mut c_void) {
    // SAFETY: as in `host_retain`; drops one reference taken before.
    unsafe { Arc::<Arc<I>>::decrement_strong_count(state.cast::<Arc<I>>()) }
}

/// Borrows the host object in a host shim.
///
/// # Safety
/// `this` must be the `state` of a [`HostExport`] for `I`.
#[inline(always)]
pub unsafe fn host_object<'a, I: ?Sized + 'static>(this: *const c_void) -> &'a I {
    // SAFETY: per the contract, `this` points at a live `Arc<I>`.
    unsafe { &*this.cast::<Arc<I>>() }
}

/// Compile-time check that a type can be a `Stream<T>` item.
pub const fn assert_stream_item<T: Serialize + DeserializeOwned + Send + 'static>() {}
