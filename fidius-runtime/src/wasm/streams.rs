//! `Stream<T>` between the host and a WASM plugin.
//!
//! * Argument streams (the host produces): the client's streams go into the
//!   store's [`StreamTable`]; the guest pulls them through `host.stream-next`
//!   (Rust guests, `fast.call`) or through the `next` method of the imported
//!   `sources` resources (the typed WIT exports), and drops them when done.
//! * Returned streams (the plugin produces): the call's result holds a
//!   handle; [`WasmStream`] pulls it through `fast.stream-next`, or through
//!   the `next` method of the `<method>-stream` resource, under the same
//!   lock, deadline and trap handling as calls.

use std::collections::HashMap;

use fidius_guest::__private::{BatchSource, OwnedStream, PANIC_PREFIX};
use fidius_guest::CallError;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{LinkerInstance, Resource, ResourceAny, ResourceType, Type, Val};
use wasmtime::{Engine, StoreContextMut};

use super::{Core, HostState, value};

/// The host's streams a plugin may pull, by handle (the same handles for
/// the `fast` path and the typed `sources` resources' reps).
#[derive(Default)]
pub(super) struct StreamTable {
    next: u32,
    streams: HashMap<u32, OwnedStream>,
}

impl StreamTable {
    pub(super) fn insert(&mut self, stream: OwnedStream) -> u32 {
        loop {
            self.next = self.next.wrapping_add(1);
            if self.next != 0 && !self.streams.contains_key(&self.next) {
                break;
            }
        }
        self.streams.insert(self.next, stream);
        self.next
    }

    pub(super) fn remove(&mut self, handle: u32) -> Option<OwnedStream> {
        self.streams.remove(&handle)
    }

    /// The next batch of stream `handle`, for the guest: a host panic is
    /// marked with [`PANIC_PREFIX`] so the plugin reports
    /// `CallError::Panic`.
    fn next(&mut self, handle: u32, max: u32) -> Result<Option<Vec<u8>>, String> {
        let stream = self
            .streams
            .get_mut(&handle)
            .ok_or_else(|| format!("no host stream with handle {handle}"))?;
        stream.next_batch(max).map_err(|e| match e {
            CallError::Panic { message, .. } => format!("{PANIC_PREFIX}{message}"),
            other => other.to_string(),
        })
    }
}

/// A resource rep in the `sources` interface: a handle in the
/// [`StreamTable`].
struct HostStream;

/// `host.stream-next` and `host.stream-drop`, for Rust guests.
pub(super) fn link_host(scope: &mut LinkerInstance<'_, HostState>) -> wasmtime::Result<()> {
    scope.func_wrap(
        "stream-next",
        |mut store: StoreContextMut<'_, HostState>, (handle, max): (u32, u32)| {
            Ok((store.data_mut().streams.next(handle, max),))
        },
    )?;
    scope.func_wrap(
        "stream-drop",
        |mut store: StoreContextMut<'_, HostState>, (handle,): (u32,)| {
            let stream = store.data_mut().streams.remove(handle);
            // The host's producer stops here.
            drop(stream);
            Ok(())
        },
    )
}

/// The `sources` interface of a component (`instance`): every resource is
/// a host stream, its `next` the stream's next batch as component values
/// of the item type.
pub(super) fn link_sources(
    engine: &Engine,
    scope: &mut LinkerInstance<'_, HostState>,
    instance: &wasmtime::component::types::ComponentInstance,
) -> wasmtime::Result<()> {
    for (item, export) in instance.exports(engine) {
        match export.ty {
            ComponentItem::Resource(_) => scope.resource(
                item,
                ResourceType::host::<HostStream>(),
                |mut store, rep| {
                    drop(store.data_mut().streams.remove(rep));
                    Ok(())
                },
            )?,
            ComponentItem::ComponentFunc(_) => scope.func_new(item, source_next)?,
            _ => {}
        }
    }
    Ok(())
}

/// `[method]<resource>.next(self, max) -> result<list<item>, string>`.
fn source_next(
    mut store: StoreContextMut<'_, HostState>,
    ty: wasmtime::component::types::ComponentFunc,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let (Some(Val::Resource(this)), Some(Val::U32(max))) = (params.first(), params.get(1)) else {
        wasmtime::bail!("a `sources` resource method was called with {params:?}");
    };
    let item = match ty.results().next() {
        Some(Type::Result(r)) => match r.ok() {
            Some(Type::List(l)) => l.ty(),
            other => wasmtime::bail!("a `sources` stream's `next` returns {other:?}"),
        },
        other => wasmtime::bail!("a `sources` stream's `next` returns {other:?}"),
    };
    let handle: Resource<HostStream> = this.try_into_resource(&mut store)?;
    let batch = store.data_mut().streams.next(handle.rep(), *max);
    let out = match batch {
        Ok(Some(bytes)) => match value::decode_items(&bytes, &item) {
            Ok(items) => Ok(Some(Box::new(Val::List(items)))),
            Err(e) => Err(Some(Box::new(Val::String(format!("stream item: {e}"))))),
        },
        Ok(None) => Ok(Some(Box::new(Val::List(Vec::new())))),
        Err(e) => Err(Some(Box::new(Val::String(e)))),
    };
    if let Some(slot) = results.first_mut() {
        *slot = Val::Result(out);
    }
    Ok(())
}

/// A host stream as a typed `sources` resource argument.
pub(super) fn source_val(
    store: &mut wasmtime::Store<HostState>,
    stream: OwnedStream,
) -> Result<Val, String> {
    let handle = store.data_mut().streams.insert(stream);
    ResourceAny::try_from_resource(Resource::<HostStream>::new_own(handle), &mut *store)
        .map(Val::Resource)
        .map_err(|e| format!("{e:#}"))
}

/// Typed-path stream handles carry this bit, so they never collide with
/// the handles Rust guests hand out.
pub(super) const TYPED: u32 = 1 << 31;

/// In `fast.call`'s `streams`, a handle with this bit is one of the
/// instance's own returned streams, passed back to it.
pub(super) const OWN: u32 = 1 << 31;

/// A stream a WASM plugin returned, pulled batch by batch.
pub(super) struct WasmStream {
    pub(super) core: std::sync::Arc<Core>,
    /// Which instance made it: a stream does not survive its instance.
    pub(super) instance: u64,
    pub(super) handle: u32,
    pub(super) method: &'static str,
    /// Given back to its instance: not ours to cancel.
    pub(super) handed: bool,
}

impl WasmStream {
    /// Gives the stream back to its own instance (passed to it as an
    /// argument): nothing to cancel here any more.
    pub(super) fn hand_back(mut self) -> u32 {
        self.handed = true;
        self.handle
    }
}

impl BatchSource for WasmStream {
    fn next_batch(&mut self, max_items: u32) -> Result<Option<Vec<u8>>, CallError> {
        self.core
            .stream_next(self.instance, self.handle, self.method, max_items)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

impl Drop for WasmStream {
    fn drop(&mut self) {
        if !self.handed {
            self.core
                .stream_drop(self.instance, self.handle, self.method);
        }
    }
}
