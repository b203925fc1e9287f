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
    ABI_VERSION, DESCRIPTOR_LAYOUT_VERSION, DESCRIPTOR_MAGIC, DestroyFn, FreeBufferFn,
    WIRE_VERSION, status,
};
pub use crate::abi::{
    BufferStrategy, InstancePtr, LibraryHeader, PluginDescriptor, Prefix, RBuf, StrRef,
};
pub use crate::meta::{Record as MetaRecord, encode as meta_encode, encoded_len as meta_len};
use crate::wire;
pub use crate::{Interface, InterfaceInfo, MethodInfo, PluginClient};
pub use serde;

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
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
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

/// `create` entry point for plugin type `T`: `T::default()`, boxed.
///
/// # Safety
/// `out` and `err` must be valid for writes.
pub unsafe extern "C" fn create<T: Default + Send + Sync + 'static>(
    out: *mut InstancePtr,
    err: *mut RBuf,
) -> u32 {
    let body = || {
        let instance = Box::new(T::default());
        // SAFETY: `out` is writable per the contract.
        unsafe { out.write(Box::into_raw(instance).cast()) };
        Ok(())
    };
    // SAFETY: `err` is writable per the contract.
    unsafe { guard(err, body) }
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
pub const fn descriptor<T: Default + Send + Sync + 'static>(
    interface: &'static InterfaceInfo,
    plugin_name: &'static str,
    vtable: *const c_void,
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
        create: create::<T>,
        destroy: destroy::<T>,
    }
}

// ---------------------------------------------------------------------------
// Host half.

struct InstanceInner {
    this: InstancePtr,
    vtable: *const c_void,
    free: FreeBufferFn,
    destroy: DestroyFn,
    plugin_name: String,
    // Keeps the library mapped while this instance lives. Dropped after
    // `destroy` runs (fields drop after `Drop::drop`).
    _library: Arc<dyn Any + Send + Sync>,
}

// SAFETY: the instance is a `T: Send + Sync` (enforced by `create::<T>`'s
// bounds and by interfaces requiring `Send + Sync`); the vtable and function
// pointers are immutable statics of a library kept loaded by `_library`.
unsafe impl Send for InstanceInner {}
// SAFETY: as above; every vtable entry takes `&self`.
unsafe impl Sync for InstanceInner {}

impl Drop for InstanceInner {
    fn drop(&mut self) {
        // SAFETY: `this` came from the same descriptor's `create` and is
        // destroyed exactly once, here; the library is still loaded.
        unsafe { (self.destroy)(self.this) }
    }
}

/// A live plugin instance inside a loaded native library. Cloning shares
/// the instance; it is destroyed when the last clone drops, and the library
/// stays loaded until then.
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

impl Instance {
    /// Calls the descriptor's `create`.
    ///
    /// # Safety
    /// `descriptor` must be a validated descriptor of a library that
    /// `library` keeps loaded, whose interface matches the caller's vtable
    /// type.
    ///
    /// # Errors
    /// [`CallError::Panic`] when the plugin's constructor panics, or
    /// [`CallError::Protocol`] when it returns garbage.
    pub unsafe fn create(
        descriptor: &PluginDescriptor,
        plugin_name: &str,
        library: Arc<dyn Any + Send + Sync>,
    ) -> Result<Self, CallError> {
        let mut this: InstancePtr = core::ptr::null_mut();
        let mut err = RBuf::EMPTY;
        // SAFETY: out slots are valid locals; the descriptor is validated.
        let code = unsafe { (descriptor.create)(&mut this, &mut err) };
        let free = descriptor.free_buffer;
        // SAFETY: `err` was written by this library's `create`.
        unsafe { finish_with(free, "create", code, err) }?;
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
                free,
                destroy: descriptor.destroy,
                plugin_name: plugin_name.to_owned(),
                _library: library,
            }),
        })
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

    /// The vtable.
    ///
    /// # Safety
    /// `V` must be the vtable type of the interface this instance was
    /// validated against.
    #[inline(always)]
    pub unsafe fn vtable<V>(&self) -> &V {
        // SAFETY: per the contract; the vtable is a static in a library the
        // instance keeps loaded.
        unsafe { &*self.inner.vtable.cast::<V>() }
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
    unsafe fn new(free: FreeBufferFn, method: &'static str, buf: RBuf) -> Result<Self, CallError> {
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

/// Converts a scalar result.
///
/// # Errors
/// [`CallError::Protocol`] when the plugin wrote an invalid value.
#[inline(always)]
pub fn take_scalar<S: Scalar>(method: &'static str, repr: S::Repr) -> Result<S, CallError> {
    S::from_repr(repr).map_err(|detail| CallError::Protocol { method, detail })
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
        source,
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
