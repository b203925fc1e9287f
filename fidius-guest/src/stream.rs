//! `Stream<T>`: pull-based streams across the plugin boundary, in either
//! direction.
//!
//! A stream is a [`RawStream`](crate::abi::RawStream): the producer's
//! state plus `next`/`drop`/`free` functions. The consumer pulls a batch of
//! at most `max_items` wire-encoded items per call, so the producer only
//! runs when the consumer asks; the batch size starts at 1 and doubles up to
//! [`DEFAULT_BATCH_LIMIT`] while the consumer keeps pulling, which keeps the
//! first item fast and bounds the items in flight. Dropping either side's
//! handle cancels the other: the consumer's drop calls the producer's `drop`,
//! which drops its iterator; a producer whose consumer is gone is never
//! pulled again.
//!
//! * [`Stream<T>`] is the type written in interface signatures. Plugins
//!   build one from any iterator ([`Stream::new`]) and iterate the ones they
//!   receive.
//! * [`RemoteStream<T>`] is what a caller gets back for a returned stream:
//!   an `Iterator<Item = Result<T, CallError>>` (and a `futures::Stream`
//!   with the `futures` feature).

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::{Serialize, de::DeserializeOwned};

use crate::CallError;

/// The most items a consumer asks for in one pull, unless changed with
/// [`RemoteStream::with_batch_limit`]. This is also the most items in flight
/// (produced but not yet handed to the consumer) at any time.
pub const DEFAULT_BATCH_LIMIT: u32 = 128;

/// The payload of the panic a plugin sees when it pulls from a host stream
/// that failed (the host's iterator panicked or an item could not be
/// encoded). The call's shim reports it to the host as a typed error.
#[derive(Debug, Clone)]
pub struct StreamFailure(pub CallError);

/// A stream of `T`, as written in interface signatures.
///
/// In a plugin, a returned `Stream<T>` is built from any iterator with
/// [`Stream::new`]; an argument `Stream<T>` is an `Iterator<Item = T>` whose
/// items the host produces on demand. If the host's side fails mid-stream,
/// iterating panics with a [`StreamFailure`], which the call reports to the
/// host as a [`CallError`]; use [`try_next`](Self::try_next) to handle it
/// instead.
pub struct Stream<T> {
    inner: Inner<T>,
}

enum Inner<T> {
    Local(Box<dyn Source<T>>),
    Remote(RemoteStream<T>),
}

impl<T> core::fmt::Debug for Stream<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match &self.inner {
            Inner::Local(_) => f.write_str("Stream(local)"),
            Inner::Remote(r) => write!(f, "Stream({r:?})"),
        }
    }
}

impl<T: Serialize + Send + 'static> Stream<T> {
    /// A stream that yields `items` lazily.
    pub fn new<I>(items: I) -> Self
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        Self {
            inner: Inner::Local(Box::new(IterSource(items.into_iter()))),
        }
    }

    /// A stream with no items.
    pub fn empty() -> Self {
        Self::new(std::iter::empty())
    }
}

impl<T: DeserializeOwned + 'static> Stream<T> {
    /// The next item, or the error that ended the stream.
    ///
    /// # Errors
    /// The [`CallError`] that ended a remote stream (the producer panicked,
    /// or an item could not be encoded or decoded).
    pub fn try_next(&mut self) -> Option<Result<T, CallError>> {
        match &mut self.inner {
            Inner::Local(source) => source.next_item().map(Ok),
            Inner::Remote(remote) => remote.next(),
        }
    }
}

impl<T: DeserializeOwned + 'static> Iterator for Stream<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match self.try_next()? {
            Ok(item) => Some(item),
            Err(e) => stream_failed(e),
        }
    }

    fn fold<B, F>(self, init: B, mut f: F) -> B
    where
        F: FnMut(B, T) -> B,
    {
        match self.inner {
            Inner::Local(mut source) => {
                let mut acc = init;
                while let Some(item) = source.next_item() {
                    acc = f(acc, item);
                }
                acc
            }
            Inner::Remote(remote) => remote.fold(init, |acc, item| match item {
                Ok(item) => f(acc, item),
                Err(e) => stream_failed(e),
            }),
        }
    }
}

/// Raises a failed remote stream in the plugin iterating it.
#[cold]
fn stream_failed(e: CallError) -> ! {
    // Natively the call's shim catches this; a WASM guest cannot unwind, so
    // there the panic hook must see it to report it.
    #[cfg(not(target_family = "wasm"))]
    std::panic::resume_unwind(Box::new(StreamFailure(e)));
    #[cfg(target_family = "wasm")]
    std::panic::panic_any(StreamFailure(e))
}

/// A stream produced on the other side of the boundary: an iterator of
/// `Result<T, CallError>` that pulls batches on demand.
///
/// After an `Err` item the stream is finished. Dropping it cancels the
/// producer (its iterator is dropped right away).
pub struct RemoteStream<T> {
    source: Pull,
    /// The current batch and how far into it we are.
    batch: Option<(crate::__private::PluginBytes, usize)>,
    next_batch: u32,
    limit: u32,
    done: bool,
    method: &'static str,
    /// Keeps the producer's library (and instance) alive.
    _keep: Option<Arc<dyn Any + Send + Sync>>,
    _items: PhantomData<fn() -> T>,
}

/// Where a [`RemoteStream`]'s batches come from.
enum Pull {
    /// A producer behind the C ABI (a native plugin, or the host's side of
    /// a native plugin's argument stream).
    Raw(crate::abi::RawStream),
    /// A producer behind another backend (a WASM instance, or the host of a
    /// WASM plugin).
    Batches(Box<dyn BatchSource>),
    /// Handed on to another owner.
    Handed,
}

/// A stream producer that another backend runs (a WASM component, or the
/// host seen from a WASM plugin): hands out batches of wire-encoded items.
/// Dropping it cancels the producer.
pub trait BatchSource: Send + 'static {
    /// At most `max_items` items, wire-encoded one after another (never an
    /// empty batch), or `Ok(None)` at the end of the stream.
    ///
    /// # Errors
    /// The [`CallError`] that ended the stream.
    fn next_batch(&mut self, max_items: u32) -> Result<Option<Vec<u8>>, CallError>;

    /// For a backend to recognize its own producers.
    fn as_any(&self) -> &dyn Any;

    /// [`as_any`](Self::as_any), by value.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

// SAFETY: the producer state behind a `Pull::Raw` is `Send` (streams are
// exported only from `Send` iterators) and is only touched through
// `&mut self`; a `Pull::Batches` is `Send` by its trait bound.
#[expect(unsafe_code, reason = "the raw stream holds a pointer to Send state")]
unsafe impl<T> Send for RemoteStream<T> {}

impl<T> core::fmt::Debug for RemoteStream<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RemoteStream")
            .field("method", &self.method)
            .field("done", &self.done)
            .field("batch_limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<T> RemoteStream<T> {
    pub(crate) fn from_raw(
        raw: crate::abi::RawStream,
        method: &'static str,
        keep: Option<Arc<dyn Any + Send + Sync>>,
    ) -> Self {
        Self::from_pull(Pull::Raw(raw), method, keep)
    }

    pub(crate) fn from_batches(
        source: Box<dyn BatchSource>,
        method: &'static str,
        keep: Option<Arc<dyn Any + Send + Sync>>,
    ) -> Self {
        Self::from_pull(Pull::Batches(source), method, keep)
    }

    fn from_pull(
        source: Pull,
        method: &'static str,
        keep: Option<Arc<dyn Any + Send + Sync>>,
    ) -> Self {
        Self {
            source,
            batch: None,
            next_batch: 1,
            limit: DEFAULT_BATCH_LIMIT,
            done: false,
            method,
            _keep: keep,
            _items: PhantomData,
        }
    }

    /// This stream as a [`Stream<T>`], to pass on as another call's
    /// argument: its producer is handed on as it is (to a WASM plugin, its
    /// own stream goes back to it without a round trip through the host).
    /// An error item becomes a failure of the call that reads it.
    pub fn into_stream(self) -> Stream<T> {
        Stream::from_remote(self)
    }

    /// Caps the items pulled per call (and so the items in flight) at
    /// `limit` (at least 1). `1` gives item-at-a-time streaming, for
    /// producers that wait for events.
    #[must_use]
    pub fn with_batch_limit(mut self, limit: u32) -> Self {
        self.limit = limit.max(1);
        self.next_batch = self.next_batch.min(self.limit);
        self
    }

    fn fail(&mut self, error: CallError) -> Option<Result<T, CallError>> {
        self.done = true;
        self.batch = None;
        Some(Err(error))
    }
}

impl<T: DeserializeOwned + 'static> Iterator for RemoteStream<T> {
    type Item = Result<T, CallError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((bytes, at)) = &mut self.batch {
                let all = bytes.as_slice();
                if *at < all.len() {
                    return match decode_item::<T>(&all[*at..]) {
                        Ok((item, tail)) => {
                            *at = all.len() - tail.len();
                            Some(Ok(item))
                        }
                        Err(e) => self.decode_failed(e),
                    };
                }
            }
            if let Some(end) = self.refill() {
                return end;
            }
        }
    }

    /// Decodes each batch in one tight loop (what `sum`, `for_each`,
    /// `collect` into most containers and other consuming adapters use).
    fn fold<B, F>(mut self, init: B, mut f: F) -> B
    where
        F: FnMut(B, Self::Item) -> B,
    {
        let mut acc = init;
        loop {
            if let Some((bytes, at)) = &mut self.batch {
                let all = bytes.as_slice();
                let mut rest = &all[*at..];
                let mut failed = None;
                while !rest.is_empty() {
                    match decode_item::<T>(rest) {
                        Ok((item, tail)) => {
                            rest = tail;
                            acc = f(acc, Ok(item));
                        }
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                *at = all.len() - rest.len();
                if let Some(e) = failed {
                    if let Some(item) = self.decode_failed(e) {
                        acc = f(acc, item);
                    }
                    return acc;
                }
            }
            match self.refill() {
                None => {}
                Some(Some(item)) => acc = f(acc, item),
                Some(None) => return acc,
            }
        }
    }
}

impl<T> RemoteStream<T> {
    /// Pulls the next batch; `Some(item)` when the stream ended or failed
    /// instead.
    #[cold]
    fn refill(&mut self) -> Option<Option<Result<T, CallError>>> {
        self.batch = None;
        if self.done {
            return Some(None);
        }
        let pulled = match &mut self.source {
            Pull::Raw(raw) => crate::__private::pull(raw, self.next_batch, self.method),
            Pull::Batches(source) => {
                crate::__private::pull_batches(&mut **source, self.next_batch, self.method)
            }
            Pull::Handed => Ok(None),
        };
        match pulled {
            Ok(Some(bytes)) => {
                self.next_batch = self.next_batch.saturating_mul(2).min(self.limit);
                self.batch = Some((bytes, 0));
                None
            }
            Ok(None) => {
                self.done = true;
                Some(None)
            }
            Err(e) => Some(self.fail(e)),
        }
    }

    #[cold]
    fn decode_failed(&mut self, e: crate::wire::WireError) -> Option<Result<T, CallError>> {
        let error = CallError::ResultDecode {
            method: self.method,
            what: "stream item",
            expected: core::any::type_name::<T>(),
            source: Box::new(e),
        };
        self.fail(error)
    }
}

impl<T> Drop for RemoteStream<T> {
    fn drop(&mut self) {
        // Free the batch with the producer's allocator before its state.
        self.batch = None;
        if let Pull::Raw(raw) = self.source {
            crate::__private::drop_raw_stream(raw);
        }
    }
}

#[cfg(feature = "futures")]
impl<T: DeserializeOwned + 'static> futures_core::Stream for RemoteStream<T> {
    type Item = Result<T, CallError>;

    /// Each poll makes one synchronous pull across the boundary (a plain
    /// call, no thread), so the stream is always ready.
    fn poll_next(
        self: core::pin::Pin<&mut Self>,
        _cx: &mut core::task::Context<'_>,
    ) -> core::task::Poll<Option<Self::Item>> {
        core::task::Poll::Ready(Iterator::next(self.get_mut()))
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> Stream<T> {
    /// Turns the stream into the raw form that crosses the boundary. The
    /// receiver owns it.
    pub(crate) fn into_raw(self) -> crate::abi::RawStream {
        match self.inner {
            Inner::Local(source) => crate::__private::export_source::<T>(source),
            // A stream received from the other side with nothing buffered
            // here and nothing to keep alive passes straight on.
            Inner::Remote(mut remote) => match remote.take_raw() {
                Some(raw) => raw,
                None => crate::__private::export_source::<T>(Box::new(IterSource(
                    Self::from_remote(remote),
                ))),
            },
        }
    }
}

impl<T> RemoteStream<T> {
    /// The producer itself, for a stream of another backend with nothing
    /// buffered here (this stream is then empty).
    fn take_batches(&mut self) -> Option<Box<dyn BatchSource>> {
        self.take_source(true, |source| match source {
            Pull::Batches(batches) => Ok(batches),
            other => Err(other),
        })
    }

    /// The raw stream itself, for a stream received from the other side of
    /// a C ABI with nothing buffered here and nothing to keep alive: it
    /// passes straight on to its new owner (this stream is then empty).
    fn take_raw(&mut self) -> Option<crate::abi::RawStream> {
        let nothing_to_keep = self._keep.is_none();
        self.take_source(nothing_to_keep, |source| match source {
            Pull::Raw(raw) => Ok(raw),
            other => Err(other),
        })
    }

    /// The producer, when `allowed`, nothing is buffered or finished here,
    /// and `pick` accepts its kind; the stream is then empty.
    fn take_source<S>(&mut self, allowed: bool, pick: fn(Pull) -> Result<S, Pull>) -> Option<S> {
        if !allowed || self.batch.is_some() || self.done {
            return None;
        }
        match pick(core::mem::replace(&mut self.source, Pull::Handed)) {
            Ok(taken) => Some(taken),
            Err(source) => {
                self.source = source;
                None
            }
        }
    }
}

impl<T> Stream<T> {
    /// The producer itself, for a stream another backend produces with
    /// nothing buffered here (this stream is then empty).
    pub(crate) fn take_batches(&mut self) -> Option<Box<dyn BatchSource>> {
        match &mut self.inner {
            Inner::Remote(remote) => remote.take_batches(),
            Inner::Local(_) => None,
        }
    }

    pub(crate) fn from_remote(remote: RemoteStream<T>) -> Self {
        Self {
            inner: Inner::Remote(remote),
        }
    }
}

/// A local producer of `T`: an iterator, plus a batch encoder
/// monomorphized for it, so a pull costs one dynamic call per batch rather
/// than one per item.
pub(crate) trait Source<T>: Send {
    /// The next item, for iterating locally.
    fn next_item(&mut self) -> Option<T>;

    /// Encodes items into `buf` until `max` items (counted in `count` as
    /// they are added) or `max_bytes` bytes; `Ok(true)` when the iterator
    /// ended.
    fn fill(
        &mut self,
        buf: &mut Vec<u8>,
        count: &mut u32,
        max: u32,
        max_bytes: usize,
    ) -> Result<bool, crate::wire::WireError>;
}

/// [`Source`] for any iterator.
pub(crate) struct IterSource<I>(pub(crate) I);

impl<T, I> Source<T> for IterSource<I>
where
    T: Serialize + 'static,
    I: Iterator<Item = T> + Send,
{
    #[inline]
    fn next_item(&mut self) -> Option<T> {
        self.0.next()
    }

    fn fill(
        &mut self,
        buf: &mut Vec<u8>,
        count: &mut u32,
        max: u32,
        max_bytes: usize,
    ) -> Result<bool, crate::wire::WireError> {
        // Work on locals, written back once (also when the iterator panics:
        // the items before the panic are still delivered), so the loop keeps
        // its state in registers rather than storing it per item.
        struct WriteBack<'a> {
            buf: &'a mut Vec<u8>,
            count: &'a mut u32,
            local: Vec<u8>,
            n: u32,
        }
        impl Drop for WriteBack<'_> {
            fn drop(&mut self) {
                *self.buf = core::mem::take(&mut self.local);
                *self.count = self.n;
            }
        }
        let mut w = WriteBack {
            local: core::mem::take(buf),
            n: *count,
            buf,
            count,
        };
        loop {
            if w.n >= max || w.local.len() >= max_bytes {
                return Ok(false);
            }
            let Some(item) = self.0.next() else {
                return Ok(true);
            };
            encode_item(&item, &mut w.local)?;
            w.n += 1;
        }
    }
}

/// Appends one item of a stream batch: the wire format, except that an
/// item that is itself an integer wider than a byte (`u16`…`u64`,
/// `i16`…`i64`) is written fixed-width little-endian, so a batch of them is
/// a plain array (no varint loop per item on either side). `Vec<u8>` items
/// (serialized by serde one byte at a time) take a fast path that writes
/// postcard's bytes: a varint length, then the bytes.
#[inline]
pub(crate) fn encode_item<T: Serialize + 'static>(
    item: &T,
    buf: &mut Vec<u8>,
) -> Result<(), crate::wire::WireError> {
    let any = item as &dyn Any;
    if let Some(bytes) = any.downcast_ref::<Vec<u8>>() {
        put_varint(buf, bytes.len() as u64);
        buf.extend_from_slice(bytes);
        return Ok(());
    }
    macro_rules! fixed_width {
        ($($int:ty),*) => {$(
            if let Some(&n) = any.downcast_ref::<$int>() {
                buf.extend_from_slice(&n.to_le_bytes());
                return Ok(());
            }
        )*};
    }
    fixed_width!(u64, i64, u32, i32, u16, i16);
    *buf = postcard::to_extend(item, core::mem::take(buf))?;
    Ok(())
}

/// postcard's unsigned varint (LEB128).
#[inline]
fn put_varint(buf: &mut Vec<u8>, mut n: u64) {
    // One capacity check, then byte pushes (a variable-length copy would
    // be a `memmove` call per item).
    buf.reserve(10);
    while n >= 0x80 {
        buf.push((n as u8) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

/// Reads postcard's unsigned varint for a `u64` (at most 10 bytes).
#[inline]
fn take_varint(bytes: &[u8]) -> Result<(u64, &[u8]), crate::wire::WireError> {
    if let Some((&first, rest)) = bytes.split_first()
        && first < 0x80
    {
        return Ok((u64::from(first), rest));
    }
    let mut n = 0u64;
    let mut at = 0;
    loop {
        let Some(&byte) = bytes.get(at) else {
            return Err(postcard::Error::DeserializeUnexpectedEnd.into());
        };
        if at == 9 && byte > 1 {
            return Err(postcard::Error::DeserializeBadVarint.into());
        }
        n |= u64::from(byte & 0x7f) << (7 * at);
        at += 1;
        if byte & 0x80 == 0 {
            return Ok((n, &bytes[at..]));
        }
    }
}

/// Moves `value` out as a `T` when `T` is `V`.
fn cast<V: 'static, T: 'static>(value: V) -> Option<T> {
    let mut slot = Some(value);
    (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<T>>()
        .and_then(Option::take)
}

/// Reads one item from the front of `bytes`, returning it and the rest;
/// the counterpart of [`encode_item`].
#[inline]
pub(crate) fn decode_item<T: DeserializeOwned + 'static>(
    bytes: &[u8],
) -> Result<(T, &[u8]), crate::wire::WireError> {
    use core::any::TypeId;
    if TypeId::of::<T>() == TypeId::of::<Vec<u8>>() {
        let (item, rest) = decode_byte_vec(bytes)?;
        if let Some(item) = cast::<Vec<u8>, T>(item) {
            return Ok((item, rest));
        }
    }
    macro_rules! fixed_width {
        ($($int:ty),*) => {$(
            if TypeId::of::<T>() == TypeId::of::<$int>() {
                let (head, rest) = bytes
                    .split_first_chunk::<{ size_of::<$int>() }>()
                    .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
                if let Some(item) = cast::<$int, T>(<$int>::from_le_bytes(*head)) {
                    return Ok((item, rest));
                }
            }
        )*};
    }
    fixed_width!(u64, i64, u32, i32, u16, i16);
    Ok(postcard::take_from_bytes(bytes)?)
}

fn decode_byte_vec(bytes: &[u8]) -> Result<(Vec<u8>, &[u8]), crate::wire::WireError> {
    let (len, rest) = take_varint(bytes)?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&len| len <= rest.len())
        .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
    Ok((rest[..len].to_vec(), &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_vector_fast_path_writes_postcards_bytes() {
        for len in [0usize, 1, 127, 128, 300, 70_000] {
            let item: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut fast = Vec::new();
            encode_item(&item, &mut fast).unwrap();
            assert_eq!(fast, postcard::to_allocvec(&item).unwrap(), "len {len}");
            let (back, rest) = decode_item::<Vec<u8>>(&fast).unwrap();
            assert_eq!((back, rest.len()), (item, 0));
        }
        assert!(
            decode_item::<Vec<u8>>(&[0x85, 0x01, 1, 2]).is_err(),
            "truncated"
        );
        assert!(
            decode_item::<Vec<u8>>(&[0xff; 11]).is_err(),
            "overlong varint"
        );
    }

    #[test]
    fn integer_items_are_fixed_width_little_endian() {
        fn round_trip<T>(items: &[T], width: usize)
        where
            T: Serialize + DeserializeOwned + PartialEq + core::fmt::Debug + Copy + 'static,
        {
            let mut batch = Vec::new();
            for item in items {
                encode_item(item, &mut batch).unwrap();
            }
            assert_eq!(batch.len(), items.len() * width);
            let mut rest = batch.as_slice();
            for item in items {
                let (back, tail) = decode_item::<T>(rest).unwrap();
                assert_eq!(back, *item);
                rest = tail;
            }
            assert!(rest.is_empty());
            assert!(decode_item::<T>(&batch[..width - 1]).is_err(), "truncated");
        }
        round_trip(&[0u64, 1, 300, u64::MAX], 8);
        round_trip(&[0i64, -1, i64::MIN, i64::MAX], 8);
        round_trip(&[0u32, 7, u32::MAX], 4);
        round_trip(&[-5i32, i32::MAX], 4);
        round_trip(&[1u16, u16::MAX], 2);
        round_trip(&[i16::MIN, 3i16], 2);
        let mut batch = Vec::new();
        encode_item(&0x0102_0304_0506_0708u64, &mut batch).unwrap();
        assert_eq!(batch, [8, 7, 6, 5, 4, 3, 2, 1]);
        // Anything else keeps the wire format.
        for item in [(1u64, -2i32), (u64::MAX, 0)] {
            let mut encoded = Vec::new();
            encode_item(&item, &mut encoded).unwrap();
            assert_eq!(encoded, postcard::to_allocvec(&item).unwrap());
        }
    }
}
