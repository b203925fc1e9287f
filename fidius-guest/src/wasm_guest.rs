//! Run-time helpers for the WebAssembly component glue that `#[plugin_impl]`
//! emits on `wasm32` targets (see `fidius-derive/src/wasm_glue.rs`).

use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::__private::{BatchSource, OwnedStream, RemoteStream, Stream};
use crate::CallError;

use serde::{Serialize, de::DeserializeOwned};

/// Converts between an interface type and the `wit-bindgen` type generated
/// from its WIT: identical types move as they are, others go through the
/// wire format, where both have the same encoding by construction.
///
/// # Panics
/// When the shapes differ, i.e. the WIT is stale: the guest traps with a
/// message naming `what` and telling how to regenerate it.
pub fn transcode<A: Serialize + 'static, B: DeserializeOwned + 'static>(value: A, what: &str) -> B {
    let mut slot = Some(value);
    if let Some(same) = (&mut slot as &mut dyn Any).downcast_mut::<Option<B>>()
        && let Some(v) = same.take()
    {
        return v;
    }
    let result = slot
        .as_ref()
        .ok_or_else(|| "value already taken".to_owned())
        .and_then(|v| crate::wire::encode(v).map_err(|e| e.to_string()))
        .and_then(|bytes| crate::wire::decode::<B>(&bytes).map_err(|e| e.to_string()));
    match result {
        Ok(b) => b,
        Err(e) => panic!(
            "fidius: {what} does not match the interface's WIT ({e}); regenerate it with \
             `cargo fidius wit`"
        ),
    }
}

/// Takes the next wire-format argument of a `fast.call` off `rest`.
///
/// # Errors
/// The decode error, naming the argument.
pub fn fast_arg<T: DeserializeOwned>(rest: &mut &[u8], what: &str) -> Result<T, String> {
    match postcard::take_from_bytes::<T>(rest) {
        Ok((value, tail)) => {
            *rest = tail;
            Ok(value)
        }
        Err(e) => Err(format!("{what}: {e}")),
    }
}

/// [`fast_arg`] for a byte buffer, one copy.
///
/// # Errors
/// The decode error, naming the argument.
pub fn fast_bytes<'a>(rest: &mut &'a [u8], what: &str) -> Result<&'a [u8], String> {
    crate::wire::take_bytes(rest).map_err(|e| format!("{what}: {e}"))
}

/// [`fast_ret`] for a `Vec<u8>` result, one copy.
pub fn fast_ret_bytes(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    crate::wire::encode_bytes_into(value, &mut out);
    out
}

/// Checks that a `fast.call` used all its argument bytes.
///
/// # Errors
/// How many bytes were left.
pub fn fast_end(rest: &[u8]) -> Result<(), String> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(format!("{} bytes after the last argument", rest.len()))
    }
}

/// Encodes a `fast.call` result.
///
/// # Panics
/// When the value's `Serialize` impl fails (the guest traps with the
/// message, which the host reports).
pub fn fast_ret<R: Serialize>(value: &R, what: &str) -> Vec<u8> {
    match crate::wire::encode(value) {
        Ok(bytes) => bytes,
        Err(e) => panic!("fidius: cannot encode the {what}: {e}"),
    }
}

/// Runs a host method for a sandboxed plugin, turning a panic into the
/// error the plugin's call reports.
///
/// # Errors
/// `panicked: <message>`.
pub fn catch_host_panic<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "<non-string panic payload>".into());
        format!("{PANIC_PREFIX}{message}")
    })
}

/// How [`catch_host_panic`] marks a panic, so the plugin side reports
/// `CallError::Panic`.
pub const PANIC_PREFIX: &str = "panicked: ";

/// A client for the host's interface inside a WASM plugin: its calls go
/// through the `host` imports.
pub fn wasm_host_client<P: crate::PluginClient>(plugin: &str, host: WasmHost) -> P {
    let info = &<P::Interface as crate::Interface>::INFO;
    let slots: Vec<Option<u32>> = (0..info.methods.len() as u32).map(Some).collect();
    let backend = std::sync::Arc::new(HostCalls(host));
    P::from_instance(crate::__private::Instance::from_dynamic(
        backend, plugin, &slots,
    ))
}

/// The `host` imports of a component's bindings, as the interface glue
/// hands them to a plugin's constructor.
#[derive(Debug, Clone, Copy)]
pub struct WasmHost {
    /// `host.call`.
    pub call: fn(u32, &[u8]) -> Result<Vec<u8>, String>,
    /// `host.call-start`.
    pub call_start: fn(u32, &[u8], u32) -> HostCallEvent,
    /// `host.call-feed`.
    pub call_feed: fn(HostCallFeed) -> HostCallEvent,
    /// `host.stream-next` and `host.stream-drop`.
    pub streams: HostStreamFns,
}

/// What the host asks while a host method that takes streams runs
/// (`host.call-event`).
#[derive(Debug)]
pub enum HostCallEvent {
    /// Up to `max` items of stream argument number `position`.
    Need {
        /// The stream's position among the call's stream arguments.
        position: u32,
        /// The most items to send.
        max: u32,
    },
    /// The host let go of stream argument number `position`.
    Dropped(u32),
    /// The method returned.
    Done(Result<Vec<u8>, String>),
}

/// The plugin's answer to a [`HostCallEvent`] (`host.feed`).
#[derive(Debug)]
pub enum HostCallFeed {
    /// Some items, in the wire format one after another.
    Items(Vec<u8>),
    /// The stream has no more items.
    End,
    /// The stream failed with this message.
    Failed(String),
    /// Acknowledges [`HostCallEvent::Dropped`].
    Ack,
}

struct HostCalls(WasmHost);

impl crate::__private::DynInstance for HostCalls {
    fn call(
        &self,
        index: usize,
        name: &'static str,
        args: &[u8],
    ) -> Result<Vec<u8>, crate::CallError> {
        (self.0.call)(method_number(index, name)?, args).map_err(|e| host_error(name, e))
    }

    /// A host method with stream arguments: the host runs it while this
    /// plugin answers its requests for items, from `inputs`, until it
    /// returns.
    fn call_streams(
        &self,
        index: usize,
        name: &'static str,
        args: &[u8],
        inputs: Vec<OwnedStream>,
    ) -> Result<Vec<u8>, CallError> {
        let count = u32::try_from(inputs.len()).map_err(|_| CallError::Protocol {
            method: name,
            detail: "too many stream arguments".into(),
        })?;
        let mut inputs: Vec<Option<OwnedStream>> = inputs.into_iter().map(Some).collect();
        let mut event = (self.0.call_start)(method_number(index, name)?, args, count);
        loop {
            let answer = match event {
                HostCallEvent::Done(result) => return result.map_err(|e| host_error(name, e)),
                HostCallEvent::Dropped(position) => {
                    // The producer stops here.
                    let stream = inputs.get_mut(position as usize).and_then(Option::take);
                    drop(stream);
                    HostCallFeed::Ack
                }
                HostCallEvent::Need { position, max } => {
                    match inputs.get_mut(position as usize).and_then(Option::as_mut) {
                        None => HostCallFeed::Failed(format!(
                            "no stream argument number {position} (of {count})"
                        )),
                        Some(stream) => match stream.next_batch(max) {
                            Ok(Some(items)) => HostCallFeed::Items(items),
                            Ok(None) => HostCallFeed::End,
                            Err(e) => HostCallFeed::Failed(e.to_string()),
                        },
                    }
                }
            };
            event = (self.0.call_feed)(answer);
        }
    }

    /// A stream the host's method returned: the runtime keeps it, the
    /// plugin pulls it through `host.stream-next`.
    fn stream(&self, name: &'static str, handle: u32) -> Result<Box<dyn BatchSource>, CallError> {
        Ok(Box::new(HostStream {
            handle,
            fns: self.0.streams,
            method: name,
        }))
    }
}

fn method_number(index: usize, name: &'static str) -> Result<u32, CallError> {
    u32::try_from(index).map_err(|_| CallError::Protocol {
        method: name,
        detail: "method index out of range".into(),
    })
}

// ---------------------------------------------------------------------------
// The plugins of a component. Each `#[plugin_impl]` registers its
// constructor; the interface's glue (emitted once per interface and crate)
// creates the one `plugin.create` names.

/// Why a WASM plugin's constructor failed (`plugin.create-error`).
#[derive(Debug)]
pub enum WasmCreateError {
    /// The configuration did not decode as the plugin's config type.
    Config(String),
    /// The plugin's constructor returned an error.
    Rejected(crate::PluginError),
    /// The component holds no plugin of that name for the interface.
    UnknownPlugin(String),
}

/// A plugin's constructor, as `#[plugin_impl]` registers it in a WASM
/// component: it makes the plugin from its configuration's wire encoding
/// and returns it as an `Rc<dyn Interface>` (boxed as `Any`).
#[derive(Debug)]
pub struct WasmPluginEntry {
    /// The interface's name (`InterfaceInfo::name`).
    pub interface: &'static str,
    /// The plugin's name (its type's name).
    pub plugin: &'static str,
    /// The constructor.
    pub create: WasmCreateFn,
}

/// A registered constructor: the configuration's wire encoding and the
/// host imports in, the `Rc<dyn Interface>` (boxed as `Any`) out.
pub type WasmCreateFn = fn(&[u8], WasmHost) -> Result<Box<dyn Any>, WasmCreateError>;

inventory::collect!(WasmPluginEntry);

/// Creates the plugin of `interface` named `plugin`.
///
/// # Errors
/// [`WasmCreateError::UnknownPlugin`] (naming the plugins there are), or
/// the constructor's error.
pub fn wasm_create<I: ?Sized + 'static>(
    interface: &str,
    plugin: &str,
    config: &[u8],
    host: WasmHost,
) -> Result<std::rc::Rc<I>, WasmCreateError> {
    let mut known = Vec::new();
    for entry in inventory::iter::<WasmPluginEntry> {
        if entry.interface != interface {
            continue;
        }
        if entry.plugin != plugin {
            known.push(entry.plugin);
            continue;
        }
        let made = (entry.create)(config, host)?;
        return made
            .downcast::<std::rc::Rc<I>>()
            .map(|plugin| *plugin)
            .map_err(|_| {
                WasmCreateError::UnknownPlugin(format!(
                    "plugin `{plugin}` was registered for another interface named `{interface}`"
                ))
            });
    }
    known.sort_unstable();
    Err(WasmCreateError::UnknownPlugin(if known.is_empty() {
        format!("this component holds no plugin of `{interface}`")
    } else {
        format!(
            "this component holds no plugin `{plugin}` of `{interface}` (it holds {})",
            known.join(", ")
        )
    }))
}

/// Makes an `Rc<dyn Interface>` into what a registered constructor
/// returns.
pub fn wasm_made<I: ?Sized + 'static>(plugin: std::rc::Rc<I>) -> Box<dyn Any> {
    Box::new(plugin)
}

// ---------------------------------------------------------------------------
// Streams. Through `fast`, a stream crosses as a `u32` handle: the guest's
// own streams (results) sit in `OUTGOING` until the host drops them; the
// host's (arguments) are pulled through the `host.stream-next` import.
// Through the typed WIT exports, results are `<method>-stream` resources
// and arguments imported `<method>-<argument>` resources.

/// The streams this guest returned, by handle, until the host drops them.
static OUTGOING: Mutex<Outgoing> = Mutex::new(Outgoing {
    next: 1,
    streams: BTreeMap::new(),
});

struct Outgoing {
    next: u32,
    streams: BTreeMap<u32, OwnedStream>,
}

fn outgoing() -> std::sync::MutexGuard<'static, Outgoing> {
    OUTGOING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Registers a stream a method returned; its handle goes in the result.
pub fn fast_stream_ret<T: Serialize + DeserializeOwned + Send + 'static>(
    stream: Stream<T>,
    method: &'static str,
) -> u32 {
    let stream = OwnedStream::new(stream, method);
    let mut table = outgoing();
    let handle = table.next;
    // Below `OWN_STREAM`, never 0.
    table.next = (table.next + 1) % OWN_STREAM;
    table.next = table.next.max(1);
    table.streams.insert(handle, stream);
    handle
}

/// `fast.stream-next`: the next batch of stream `handle`, `None` at its
/// end.
///
/// # Errors
/// An unknown handle, or the error that ended the stream.
pub fn fast_stream_next(handle: u32, max_items: u32) -> Result<Option<Vec<u8>>, String> {
    // Pulled outside the lock: the producer may return streams itself.
    let mut stream = outgoing()
        .streams
        .remove(&handle)
        .ok_or_else(|| format!("no stream with handle {handle}"))?;
    let batch = stream.next_batch(max_items).map_err(|e| e.to_string());
    outgoing().streams.insert(handle, stream);
    batch
}

/// `fast.stream-drop`: cancels stream `handle` (drops its producer).
pub fn fast_stream_drop(handle: u32) {
    let stream = outgoing().streams.remove(&handle);
    drop(stream);
}

/// `stream-next(handle, max)`: a batch, `None` at the end, or why not.
pub type StreamNextFn = fn(u32, u32) -> Result<Option<Vec<u8>>, String>;

/// In `fast.call`'s `streams`, a handle with this bit is one of this
/// guest's own returned streams, passed back to it as an argument.
const OWN_STREAM: u32 = 1 << 31;

/// The host's stream functions, as imported by a plugin's bindings.
#[derive(Debug, Clone, Copy)]
pub struct HostStreamFns {
    /// `host.stream-next`.
    pub next: StreamNextFn,
    /// `host.stream-drop`.
    pub drop: fn(u32),
}

/// A stream argument the host produces, pulled through the imports.
struct HostStream {
    handle: u32,
    fns: HostStreamFns,
    method: &'static str,
}

impl BatchSource for HostStream {
    fn next_batch(&mut self, max_items: u32) -> Result<Option<Vec<u8>>, CallError> {
        (self.fns.next)(self.handle, max_items).map_err(|e| host_error(self.method, e))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

impl Drop for HostStream {
    fn drop(&mut self) {
        (self.fns.drop)(self.handle);
    }
}

fn host_error(method: &'static str, e: String) -> CallError {
    match e.strip_prefix(PANIC_PREFIX) {
        Some(message) => CallError::Panic {
            method,
            message: message.to_owned(),
        },
        None => CallError::Protocol { method, detail: e },
    }
}

/// Takes the next `fast.call` argument as a stream: a `u32` position in
/// `streams`, the handles the host passed.
///
/// # Errors
/// The decode error, or a position past `streams`, naming the argument.
pub fn fast_stream_arg<T>(
    rest: &mut &[u8],
    streams: &[u32],
    what: &str,
    method: &'static str,
    fns: HostStreamFns,
) -> Result<Stream<T>, String> {
    let position: u32 = fast_arg(rest, what)?;
    let handle = *streams
        .get(position as usize)
        .ok_or_else(|| format!("{what}: no stream number {position}"))?;
    if handle & OWN_STREAM != 0 {
        // One of this guest's own streams, back as an argument: read it
        // here, without a round trip through the host.
        let own = outgoing()
            .streams
            .remove(&(handle & !OWN_STREAM))
            .ok_or_else(|| format!("{what}: no stream with handle {handle:#x}"))?;
        return Ok(Stream::from_remote(RemoteStream::from_batches(
            Box::new(own),
            method,
            None,
        )));
    }
    Ok(Stream::from_remote(RemoteStream::from_batches(
        Box::new(HostStream {
            handle,
            fns,
            method,
        }),
        method,
        None,
    )))
}

/// Takes the next argument of a host method a WASM plugin called as a
/// stream: a `u32` position in `inputs`, the streams the plugin produces.
///
/// # Errors
/// The decode error, or a position past `inputs` (or taken twice), naming
/// the argument.
pub fn host_stream_arg<T>(
    rest: &mut &[u8],
    inputs: &mut [Option<OwnedStream>],
    what: &str,
    method: &'static str,
) -> Result<Stream<T>, String> {
    let position: u32 = fast_arg(rest, what)?;
    let stream = inputs
        .get_mut(position as usize)
        .and_then(Option::take)
        .ok_or_else(|| format!("{what}: no stream argument number {position}"))?;
    Ok(Stream::from_remote(RemoteStream::from_batches(
        Box::new(stream),
        method,
        None,
    )))
}

/// A returned stream behind a typed `<method>-stream` resource.
#[derive(Debug)]
pub struct TypedStreamOut(RefCell<OwnedStream>);

impl TypedStreamOut {
    /// Wraps the stream `method` returned.
    pub fn new<T: Serialize + DeserializeOwned + Send + 'static>(
        stream: Stream<T>,
        method: &'static str,
    ) -> Self {
        Self(RefCell::new(OwnedStream::new(stream, method)))
    }

    /// The resource's `next`: up to `max` items as the bindings' item type
    /// `W` (same encoding), an empty list at the end.
    ///
    /// # Errors
    /// The error that ended the stream.
    pub fn next<W: DeserializeOwned + 'static>(&self, max: u32) -> Result<Vec<W>, String> {
        let batch = self
            .0
            .borrow_mut()
            .next_batch(max)
            .map_err(|e| e.to_string())?;
        let Some(bytes) = batch else {
            return Ok(Vec::new());
        };
        let mut rest: &[u8] = &bytes;
        let mut items = Vec::new();
        while !rest.is_empty() {
            let (item, tail) =
                crate::stream::decode_item::<W>(rest).map_err(|e| format!("stream item: {e}"))?;
            items.push(item);
            rest = tail;
        }
        Ok(items)
    }
}

/// An argument stream behind an imported typed `<method>-<argument>`
/// resource, whose `next` is `pull`: items of the bindings' type `W`
/// become the interface's `T` through the wire format.
pub fn typed_stream_arg<W, T, F>(pull: F, method: &'static str) -> Stream<T>
where
    W: Serialize + 'static,
    F: FnMut(u32) -> Result<Vec<W>, String> + Send + 'static,
{
    struct Typed<F, W> {
        pull: F,
        method: &'static str,
        _items: core::marker::PhantomData<fn() -> W>,
    }
    impl<W, F> BatchSource for Typed<F, W>
    where
        W: Serialize + 'static,
        F: FnMut(u32) -> Result<Vec<W>, String> + Send + 'static,
    {
        fn next_batch(&mut self, max_items: u32) -> Result<Option<Vec<u8>>, CallError> {
            let items = (self.pull)(max_items).map_err(|e| host_error(self.method, e))?;
            if items.is_empty() {
                return Ok(None);
            }
            let mut out = Vec::new();
            for item in &items {
                crate::stream::encode_item(item, &mut out).map_err(|e| CallError::Protocol {
                    method: self.method,
                    detail: format!("stream item: {e}"),
                })?;
            }
            Ok(Some(out))
        }

        fn as_any(&self) -> &dyn Any {
            self
        }

        fn into_any(self: Box<Self>) -> Box<dyn Any> {
            self
        }
    }
    Stream::from_remote(RemoteStream::from_batches(
        Box::new(Typed {
            pull,
            method,
            _items: core::marker::PhantomData,
        }),
        method,
        None,
    ))
}

/// Decodes a plugin's configuration; the message names the config type.
///
/// # Errors
/// The decode error, prefixed with the type's name.
pub fn wasm_config<C: DeserializeOwned>(bytes: &[u8]) -> Result<C, String> {
    crate::wire::decode::<C>(bytes)
        .map_err(|e| format!("`{}`: {}", core::any::type_name::<C>(), e.message()))
}

/// A typed configuration (`create`'s argument when the interface declares
/// `config = C`) in the wire format, for [`wasm_config`]: the bindings'
/// type has the same wire encoding as `C`.
pub fn wasm_encode_config<T: Serialize>(config: &T) -> Vec<u8> {
    crate::wire::encode(config).unwrap_or_default()
}

/// Makes panics report their message to the host before the guest traps.
pub fn wasm_install_panic_hook(report: fn(&str)) {
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        if let Some(crate::StreamFailure(e)) = payload.downcast_ref::<crate::StreamFailure>() {
            // A plugin iterating an argument stream whose producer failed.
            report(&format!("input stream failed: {e}"));
            return;
        }
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("Box<dyn Any>");
        report(message);
    }));
}

/// `fast.scalar` was called for a method that does not take that path.
pub fn wasm_not_scalar(method: u32) -> ! {
    panic!("fidius: method number {method} does not take `fast.scalar`")
}

/// A scalar as the bits of a `u64`, as `fast.scalar` passes it: signed
/// integers sign-extended, floats their IEEE bits, `bool` 0 or 1, `char`
/// its code point, `()` 0.
pub trait ScalarBits {
    /// The value from its bits (the host sends only valid ones).
    fn from_bits(bits: u64) -> Self;
    /// The value's bits.
    fn to_bits(self) -> u64;
}

macro_rules! scalar_bits {
    ($($t:ty => $wide:ty),* $(,)?) => {$(
        impl ScalarBits for $t {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            fn from_bits(bits: u64) -> Self {
                bits as $wide as $t
            }
            #[allow(clippy::cast_sign_loss, clippy::cast_lossless)]
            fn to_bits(self) -> u64 {
                self as $wide as u64
            }
        }
    )*};
}

scalar_bits!(
    u8 => u64, u16 => u64, u32 => u64, u64 => u64, usize => u64,
    i8 => i64, i16 => i64, i32 => i64, i64 => i64, isize => i64,
);

impl ScalarBits for bool {
    fn from_bits(bits: u64) -> Self {
        bits != 0
    }
    fn to_bits(self) -> u64 {
        u64::from(self)
    }
}

impl ScalarBits for f32 {
    #[allow(clippy::cast_possible_truncation)]
    fn from_bits(bits: u64) -> Self {
        f32::from_bits(bits as u32)
    }
    fn to_bits(self) -> u64 {
        u64::from(f32::to_bits(self))
    }
}

impl ScalarBits for f64 {
    fn from_bits(bits: u64) -> Self {
        f64::from_bits(bits)
    }
    fn to_bits(self) -> u64 {
        f64::to_bits(self)
    }
}

impl ScalarBits for char {
    fn from_bits(bits: u64) -> Self {
        u32::try_from(bits)
            .ok()
            .and_then(char::from_u32)
            .unwrap_or(char::REPLACEMENT_CHARACTER)
    }
    fn to_bits(self) -> u64 {
        u64::from(u32::from(self))
    }
}

impl ScalarBits for () {
    fn from_bits(_: u64) -> Self {}
    fn to_bits(self) -> u64 {
        0
    }
}

/// A method of `interface` was called before `create`.
pub fn wasm_not_created(interface: &str) -> ! {
    panic!("fidius: `{interface}` was called before the runtime created its plugin")
}

/// Whether a WIT text's `// fidius-interface:` header records `hash`.
pub const fn wit_hash_matches(wit: &str, hash: u64) -> bool {
    matches!(crate::wit::recorded_hash(wit), Some(h) if h == hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct A {
        x: i64,
        tags: Vec<String>,
    }

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct B {
        renamed: i64,
        labels: Vec<String>,
    }

    #[test]
    fn same_shapes_transcode_and_same_types_move() {
        let b: B = transcode(
            A {
                x: -3,
                tags: vec!["t".into()],
            },
            "x",
        );
        assert_eq!(
            b,
            B {
                renamed: -3,
                labels: vec!["t".into()]
            }
        );
        let v: Vec<u8> = transcode(vec![1u8, 2, 3], "bytes");
        assert_eq!(v, [1, 2, 3]);
    }

    #[test]
    #[should_panic(expected = "does not match the interface's WIT")]
    fn different_shapes_name_the_value() {
        let _: B = transcode(7u8, "argument `a` of `f`");
    }

    /// `fast.scalar` bits: each scalar round-trips, signed integers are
    /// sign-extended and floats keep their exact bits (the host checks
    /// the same encoding: `fidius-runtime`'s `wasm::value`).
    #[test]
    fn scalar_bits_round_trip() {
        fn round<T: ScalarBits + Copy + PartialEq + core::fmt::Debug>(v: T) -> u64 {
            let bits = v.to_bits();
            assert_eq!(T::from_bits(bits), v);
            bits
        }
        assert_eq!(round(-1i8), u64::MAX);
        assert_eq!(round(i16::MIN), (i64::from(i16::MIN)) as u64);
        assert_eq!(round(-7i32), (-7i64) as u64);
        assert_eq!(round(u8::MAX), 255);
        assert_eq!(round(u32::MAX), u64::from(u32::MAX));
        assert_eq!(round(-1.5f32), u64::from((-1.5f32).to_bits()));
        assert_eq!(round(f64::MIN_POSITIVE), f64::MIN_POSITIVE.to_bits());
        assert_eq!(round(true), 1);
        assert_eq!(round('é'), 0xe9);
        assert_eq!(round(usize::MAX), u64::MAX);
        assert_eq!(round(-2isize), (-2i64) as u64);
        let nan = <f64 as ScalarBits>::to_bits(f64::NAN);
        assert_eq!(
            <f64 as ScalarBits>::from_bits(nan).to_bits(),
            f64::NAN.to_bits()
        );
        assert_eq!(
            <char as ScalarBits>::from_bits(0xd800),
            char::REPLACEMENT_CHARACTER
        );
        assert_eq!(<() as ScalarBits>::to_bits(()), 0);
    }

    trait Shape {
        fn sides(&self) -> u32;
    }

    struct Polygon(u32);

    impl Shape for Polygon {
        fn sides(&self) -> u32 {
            self.0
        }
    }

    fn triangle(config: &[u8], _: WasmHost) -> Result<Box<dyn Any>, WasmCreateError> {
        if !config.is_empty() {
            return Err(WasmCreateError::Config("no configuration".into()));
        }
        let shape: std::rc::Rc<dyn Shape> = std::rc::Rc::new(Polygon(3));
        Ok(wasm_made(shape))
    }

    fn square(_: &[u8], _: WasmHost) -> Result<Box<dyn Any>, WasmCreateError> {
        let shape: std::rc::Rc<dyn Shape> = std::rc::Rc::new(Polygon(4));
        Ok(wasm_made(shape))
    }

    inventory::submit! {
        WasmPluginEntry { interface: "Shape", plugin: "Triangle", create: triangle }
    }
    inventory::submit! {
        WasmPluginEntry { interface: "Shape", plugin: "Square", create: square }
    }
    inventory::submit! {
        WasmPluginEntry { interface: "Other", plugin: "Square", create: triangle }
    }

    fn no_host() -> WasmHost {
        WasmHost {
            call: |_, _| Err("no host".into()),
            call_start: |_, _, _| HostCallEvent::Done(Err("no host".into())),
            call_feed: |_| HostCallEvent::Done(Err("no host".into())),
            streams: HostStreamFns {
                next: |_, _| Ok(None),
                drop: |_| {},
            },
        }
    }

    #[test]
    fn plugins_of_one_interface_are_created_by_name() {
        let made = |plugin: &str, config: &[u8]| {
            wasm_create::<dyn Shape>("Shape", plugin, config, no_host()).map(|s| s.sides())
        };
        assert_eq!(made("Triangle", &[]).unwrap(), 3);
        assert_eq!(made("Square", &[]).unwrap(), 4);
        assert!(
            matches!(made("Triangle", &[1]), Err(WasmCreateError::Config(m)) if m == "no configuration")
        );
        match made("Hexagon", &[]) {
            Err(WasmCreateError::UnknownPlugin(m)) => assert_eq!(
                m,
                "this component holds no plugin `Hexagon` of `Shape` (it holds Square, Triangle)"
            ),
            other => panic!("expected UnknownPlugin, got {:?}", other.map(|_| ())),
        }
        match wasm_create::<dyn Shape>("Nothing", "Square", &[], no_host()) {
            Err(WasmCreateError::UnknownPlugin(m)) => {
                assert_eq!(m, "this component holds no plugin of `Nothing`")
            }
            other => panic!("expected UnknownPlugin, got {:?}", other.map(|_| ())),
        }
    }
}
