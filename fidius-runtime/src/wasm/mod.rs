//! WebAssembly component plugins, run in a deny-all wasmtime sandbox
//! (feature `wasm`).
//!
//! A [`WasmRuntime`] owns the wasmtime engine (with epoch interruption for
//! per-call deadlines), the compiled-component cache and the limits. A
//! [`WasmLibrary`] is one component: read and checked (fidius metadata from
//! its `fidius-meta` section, without instantiating), compiled (or loaded
//! from the cache) and linked once. Each client gets its own instance, kept
//! across calls; after a trap the instance is discarded and the next call
//! runs on a fresh one.
//!
//! ```no_run
//! # fn demo<C: fidius_guest::PluginClient>() -> Result<(), fidius_runtime::LoadError> {
//! use fidius_runtime::wasm::{Capabilities, WasmRuntime, WasmSettings};
//! let runtime = WasmRuntime::new(WasmSettings::default())?;
//! let library = runtime.open("plugin.wasm")?;
//! let client: C = library.instance("Basic").capabilities(Capabilities::none()).build()?;
//! # Ok(()) }
//! ```

mod capabilities;
mod egress;
mod host_calls;
mod streams;
mod value;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz;

use std::collections::HashMap;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fidius_guest::__private::{BatchSource, DynInstance, Instance as ClientInstance, OwnedStream};
use fidius_guest::{CallError, Interface, PluginClient, PluginError};
use sha2::{Digest as _, Sha256};
use wasmtime::component::{
    Component, Func, InstancePre, Linker, ResourceTable, Type, TypedFunc, Val,
};
use wasmtime::{Config, Engine, ResourceLimiter, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub use capabilities::{
    CAPABILITY_FORMS, Capabilities, DirAccess, Egress, EgressRequest, Output, OutputBuffer,
};

use crate::component;
use crate::library::{check_interface, find, resolve_config};
use crate::{LoadError, PluginInfo};

/// How often the epoch advances; deadlines are rounded up to it.
const TICK: Duration = Duration::from_millis(5);

/// Limits and caching for sandboxed plugins.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WasmSettings {
    /// Longest a call (or a plugin's constructor) may run before it is
    /// stopped with [`CallError::Timeout`]. Default: 10 s.
    pub deadline: Duration,
    /// Most linear memory an instance may have, in bytes; growing beyond it
    /// fails the call with [`CallError::MemoryLimit`]. Default: 256 MiB.
    pub memory_limit: u64,
    /// Fuel per call (roughly, wasm instructions); `None` (the default)
    /// for no fuel metering. Running out traps with `out of fuel`.
    pub fuel: Option<u64>,
    /// Where compiled components are cached (`<dir>/wasm/…`); `None` to
    /// compile on every open. Default: the fidius cache directory
    /// (`$FIDIUS_CACHE_DIR`, else `$XDG_CACHE_HOME/fidius`, else
    /// `~/.cache/fidius`).
    pub cache_dir: Option<PathBuf>,
    /// Whether each call gets a fresh instance. Default:
    /// [`Isolation::PerClient`].
    pub isolation: Isolation,
    /// Call the component's typed WIT functions even when it also exports
    /// fidius's `fast.call` shortcut (Rust guests do): what a guest in
    /// another language gets. Slower; for testing interoperability.
    /// Default: `false`.
    pub typed_exports_only: bool,
}

/// How long a component instance lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Isolation {
    /// One instance per client (or configured instance), kept across calls
    /// and replaced only after a trap. Plugins keep state between calls.
    #[default]
    PerClient,
    /// A fresh instance for every call, created (with the client's
    /// configuration) from wasmtime's pooling allocator and destroyed after
    /// the call: nothing a call leaves behind reaches the next one.
    PerCall,
}

impl Default for WasmSettings {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(10),
            memory_limit: 256 << 20,
            fuel: None,
            cache_dir: Some(crate::package::cache::default_root()),
            isolation: Isolation::PerClient,
            typed_exports_only: false,
        }
    }
}

impl WasmSettings {
    /// With a per-call deadline.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// With a memory limit, in bytes.
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// With fuel metering: `fuel` per call.
    pub fn fuel(mut self, fuel: u64) -> Self {
        self.fuel = Some(fuel);
        self
    }

    /// With a fresh instance for every call ([`Isolation::PerCall`]).
    pub fn fresh_instance_per_call(mut self) -> Self {
        self.isolation = Isolation::PerCall;
        self
    }

    /// Calling the typed WIT functions only (see
    /// [`typed_exports_only`](Self::typed_exports_only)).
    pub fn typed_exports_only(mut self) -> Self {
        self.typed_exports_only = true;
        self
    }

    /// With compiled components cached under `dir` (`None`: no cache).
    pub fn cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = dir;
        self
    }
}

/// The engine all components of a host share: build it once.
pub struct WasmRuntime {
    engine: Engine,
    settings: WasmSettings,
    ticker: Arc<AtomicBool>,
    /// WASI and `wasi:http`, the same for every component: linked once,
    /// cloned per set of fidius interfaces.
    wasi: Linker<HostState>,
    /// WASI plus the fidius host (and stream source) interfaces, per set
    /// of fidius imports (`fidius:<interface>/host@<version>`, …): the
    /// components of one interface share one, never cloned again.
    linkers: Mutex<HashMap<String, Arc<Linker<HostState>>>>,
    /// What this runtime learnt of the component files it opened from the
    /// cache, by the path it opened them by; used only while both files
    /// keep the identities recorded here (checked on every open).
    known: Mutex<HashMap<PathBuf, Arc<Known>>>,
}

/// A component file opened from the cache: its identity then, its
/// `fidius-meta` records, and its compiled code's cache file with that
/// file's (settled) identity.
struct Known {
    identity: String,
    records: Vec<u8>,
    cache_file: PathBuf,
    cache_identity: String,
}

impl std::fmt::Debug for WasmRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmRuntime")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Drop for WasmRuntime {
    fn drop(&mut self) {
        self.ticker.store(true, Ordering::Relaxed);
    }
}

impl WasmRuntime {
    /// An engine with epoch interruption (the deadline), fuel if asked, and
    /// Cranelift's optimizer.
    ///
    /// # Errors
    /// [`LoadError::Wasm`] when wasmtime refuses the configuration.
    pub fn new(settings: WasmSettings) -> Result<Self, LoadError> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(settings.fuel.is_some())
            .parallel_compilation(true)
            .cranelift_opt_level(wasmtime::OptLevel::Speed);
        if settings.isolation == Isolation::PerCall {
            // Instances come from a pre-reserved pool, so making one per
            // call costs microseconds.
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            pool.total_component_instances(256)
                .total_core_instances(2048)
                .total_memories(512)
                .total_tables(2048)
                .max_memory_size(usize::try_from(settings.memory_limit).unwrap_or(usize::MAX));
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&config).map_err(|e| LoadError::Wasm {
            path: PathBuf::new(),
            detail: format!("cannot create the wasmtime engine: {e}"),
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = engine.weak();
            let stop = stop.clone();
            move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    match engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => return,
                    }
                }
            }
        };
        std::thread::Builder::new()
            .name("fidius-wasm-epoch".into())
            .spawn(ticker)
            .map_err(|e| LoadError::Wasm {
                path: PathBuf::new(),
                detail: format!("cannot start the deadline thread: {e}"),
            })?;
        let wasi_err = |what: &str, e: wasmtime::Error| LoadError::Wasm {
            path: PathBuf::new(),
            detail: format!("cannot link {what}: {e:#}"),
        };
        let mut wasi: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut wasi).map_err(|e| wasi_err("WASI", e))?;
        // Requests go through the instance's egress hook (denied without
        // one).
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut wasi)
            .map_err(|e| wasi_err("WASI HTTP", e))?;
        Ok(Self {
            engine,
            settings,
            ticker: stop,
            wasi,
            linkers: Mutex::default(),
            known: Mutex::default(),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &WasmSettings {
        &self.settings
    }

    /// Reads, checks and compiles (or loads from the cache) the component
    /// at `path`.
    ///
    /// # Errors
    /// [`LoadError::Io`], [`LoadError::NotAComponent`],
    /// [`LoadError::NoComponentMetadata`], [`LoadError::MalformedMetadata`],
    /// [`LoadError::AbiVersionMismatch`] or [`LoadError::Wasm`].
    pub fn open(&self, path: impl AsRef<Path>) -> Result<WasmLibrary, LoadError> {
        let path = path.as_ref();
        // The file's identity before and after: when it is the one recorded
        // with the file's digest and metadata (see `cached` for why that
        // stands for its contents), neither is read again, and with its
        // compiled code cached the file is not read at all.
        let before = file_identity(path);
        let root = self.settings.cache_dir.as_deref();
        // Opened from the cache before, by this runtime: nothing to read.
        let memo = before.as_deref().and_then(|identity| {
            let known = self.known.lock().ok()?.get(path).cloned()?;
            (known.identity == identity).then_some(known)
        });
        if let Some(known) = memo
            && let Some(component) =
                map_cached(&self.engine, &known.cache_file, &known.cache_identity)
            && file_identity(path) == before
        {
            let plugins = component::decode(path, &known.records)?;
            return self.link(path, plugins, &component);
        }
        if let (Some(root), Some(identity)) = (root, before.as_deref())
            && let Some(known) = known_source(root, path, identity)
        {
            let key = cache_key(&self.engine, &known.digest);
            if let Some(component) = cached(&self.engine, root, &key)
                && file_identity(path).as_deref() == Some(identity)
            {
                let plugins = component::decode(path, &known.records)?;
                let cache_file = root.join("wasm").join(&key).join(CACHE_FILE);
                if let (Some(cache_identity), Ok(mut memo)) =
                    (settled_identity(&cache_file), self.known.lock())
                {
                    memo.insert(
                        path.to_owned(),
                        Arc::new(Known {
                            identity: identity.to_owned(),
                            records: known.records,
                            cache_file,
                            cache_identity,
                        }),
                    );
                }
                return self.link(path, plugins, &component);
            }
        }
        let bytes = crate::open::read_file(path)?;
        let unchanged = before.is_some() && file_identity(path) == before;
        let (Some(root), Some(identity), true) = (root, before, unchanged) else {
            return self.open_bytes(path, &bytes);
        };
        let digest = hex(&Sha256::digest(&bytes));
        if !component::is_wasm(&bytes) {
            return self.open_digested(path, &bytes, Some(&digest));
        }
        // The metadata is read once: recorded (once the file's identity has
        // settled) and decoded from the same records.
        let records = component::records(path, &bytes)?;
        if settled_identity(path).as_deref() == Some(identity.as_str()) {
            let _ = record_source(root, path, &identity, &digest, &records);
        }
        let plugins = component::decode(path, &records)?;
        let component = self.compile(path, &bytes, Some(&digest))?;
        self.link(path, plugins, &component)
    }

    /// As [`open`](Self::open), for bytes already read (and verified) from
    /// `path`.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_bytes(&self, path: &Path, bytes: &[u8]) -> Result<WasmLibrary, LoadError> {
        self.open_digested(path, bytes, None)
    }

    /// [`open_bytes`](Self::open_bytes) for bytes whose SHA-256 (lower-case
    /// hex) a verified package already checked: the cache key reuses it
    /// rather than hashing the component again.
    pub(crate) fn open_digested(
        &self,
        path: &Path,
        bytes: &[u8],
        sha256: Option<&str>,
    ) -> Result<WasmLibrary, LoadError> {
        if !component::is_wasm(bytes) {
            return Err(LoadError::NotAComponent {
                path: path.to_owned(),
                detail: "no WebAssembly magic number".into(),
            });
        }
        let plugins = component::plugins(path, bytes)?;
        let component = self.compile(path, bytes, sha256)?;
        self.link(path, plugins, &component)
    }

    /// Links `component` (its `plugins` read from `path`): the library.
    fn link(
        &self,
        path: &Path,
        plugins: Vec<PluginInfo>,
        component: &Component,
    ) -> Result<WasmLibrary, LoadError> {
        let wasm_err = |what: &str, e: wasmtime::Error| LoadError::Wasm {
            path: path.to_owned(),
            detail: format!("{what}: {e:#}"),
        };
        let link = |shared: bool| -> wasmtime::Result<InstancePre<HostState>> {
            let linker = self.linker(component, shared)?;
            // Anything else the component imports (HTTP, other worlds' host
            // functions) traps when called: deny-all.
            if has_unknown_imports(&self.engine, component) {
                let mut linker = Linker::clone(&linker);
                deny_unknown_imports(&self.engine, &mut linker, component)?;
                linker.instantiate_pre(component)
            } else {
                linker.instantiate_pre(component)
            }
        };
        // A shared linker made for another component with the same fidius
        // import names but other types (an interface changed without a new
        // version) does not fit: link this one on its own.
        let pre = link(true)
            .or_else(|_| link(false))
            .map_err(|e| wasm_err("cannot link the component", e))?;
        Ok(WasmLibrary {
            path: path.to_owned(),
            plugins,
            shared: Arc::new(Shared {
                engine: self.engine.clone(),
                pre,
                settings: self.settings.clone(),
                path: path.to_owned(),
            }),
        })
    }

    /// The linker for `component`: WASI plus its fidius interfaces, made
    /// once per set of fidius imports (`shared`), or anew.
    fn linker(
        &self,
        component: &Component,
        shared: bool,
    ) -> wasmtime::Result<Arc<Linker<HostState>>> {
        let mut key: Vec<String> = component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .filter(|name| name.starts_with("fidius:"))
            .collect();
        key.sort();
        let key = key.join(" ");
        if shared
            && let Some(linker) = self
                .linkers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&key)
        {
            return Ok(Arc::clone(linker));
        }
        let mut linker = self.wasi.clone();
        for (name, item) in component.component_type().imports(&self.engine) {
            let fidius_interface = name
                .strip_prefix("fidius:")
                .and_then(|n| n.split_once('/'))
                .map(|(_, n)| n.split('@').next().unwrap_or(n));
            if let (
                Some("sources"),
                wasmtime::component::types::ComponentItem::ComponentInstance(instance),
            ) = (fidius_interface, &item.ty)
            {
                linker
                    .instance(name)
                    .and_then(|mut i| streams::link_sources(&self.engine, &mut i, instance))?;
            }
            if fidius_interface == Some("host") {
                linker.instance(name).and_then(|mut i| {
                    streams::link_host(&mut i)?;
                    host_calls::link(&mut i, thread_token)?;
                    i.func_wrap(
                        "call",
                        |mut store: wasmtime::StoreContextMut<'_, HostState>,
                         (method, args): (u32, Vec<u8>)| {
                            let state = store.data_mut();
                            let result = match state.host.clone() {
                                Some(host) => host(method as usize, &args, Vec::new(), &mut |s| {
                                    state.streams.insert(s)
                                }),
                                None => Err("this plugin was given no host interface".into()),
                            };
                            Ok((result,))
                        },
                    )?;
                    i.func_wrap(
                        "panicked",
                        |mut store: wasmtime::StoreContextMut<'_, HostState>,
                         (message,): (String,)| {
                            store.data_mut().panic = Some(message);
                            Ok(())
                        },
                    )
                })?;
            }
        }
        let linker = Arc::new(linker);
        if shared {
            self.linkers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, Arc::clone(&linker));
        }
        Ok(linker)
    }

    fn compile(
        &self,
        path: &Path,
        bytes: &[u8],
        sha256: Option<&str>,
    ) -> Result<Component, LoadError> {
        let wasm_err = |e: wasmtime::Error| LoadError::Wasm {
            path: path.to_owned(),
            detail: format!("cannot compile the component: {e:#}"),
        };
        let Some(root) = &self.settings.cache_dir else {
            return Component::new(&self.engine, bytes).map_err(wasm_err);
        };
        let digest = match sha256 {
            Some(d) => d.to_owned(),
            None => hex(&Sha256::digest(bytes)),
        };
        let key = cache_key(&self.engine, &digest);
        if let Some(component) = cached(&self.engine, root, &key) {
            return Ok(component);
        }
        let compiled = self.engine.precompile_component(bytes).map_err(wasm_err)?;
        // A cache that cannot be written is not an error: the component is
        // compiled on every open instead.
        let _ = store_cached(root, &key, &compiled);
        // SAFETY: `compiled` was produced just now by this engine.
        unsafe { Component::deserialize(&self.engine, &compiled) }.map_err(wasm_err)
    }
}

/// The WASI packages `wasmtime_wasi::p2::add_to_linker_sync` and
/// `wasmtime_wasi_http` provide (their capabilities are then governed by the
/// `WasiCtx` and the egress hook).
const LINKED: &[&str] = &[
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:filesystem/",
    "wasi:io/",
    "wasi:random/",
    "wasi:sockets/",
    "wasi:http/",
    "fidius:",
];

/// Whether `component` imports anything besides WASI and the fidius
/// interfaces.
fn has_unknown_imports(engine: &Engine, component: &Component) -> bool {
    component
        .component_type()
        .imports(engine)
        .any(|(name, _)| !LINKED.iter().any(|p| name.starts_with(p)))
}

/// Defines every other import as functions that trap (and resources no one
/// can make). Not `Linker::define_unknown_imports_as_traps`: it matches
/// names exactly, so it would shadow the WASI interfaces a guest imports at
/// an older patch version (`@0.2.6`) than the linker's.
fn deny_unknown_imports(
    engine: &Engine,
    linker: &mut Linker<HostState>,
    component: &Component,
) -> wasmtime::Result<()> {
    use wasmtime::component::types::ComponentItem;
    for (name, import) in component.component_type().imports(engine) {
        if LINKED.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let ComponentItem::ComponentInstance(instance) = import.ty else {
            continue;
        };
        let mut scope = linker.instance(name)?;
        for (item, export) in instance.exports(engine) {
            let qualified = format!("{name}#{item}");
            match export.ty {
                ComponentItem::ComponentFunc(_) => scope.func_new(item, move |_, _, _, _| {
                    Err(wasmtime::format_err!(
                        "`{qualified}` is not granted to this plugin"
                    ))
                })?,
                ComponentItem::Resource(_) => {
                    struct Denied;
                    scope.resource(
                        item,
                        wasmtime::component::ResourceType::host::<Denied>(),
                        |_, _| Ok(()),
                    )?
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// `<component sha256>-<engine hash>`: a stale or foreign compilation has
/// another key.
fn cache_key(engine: &Engine, sha256_hex: &str) -> String {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{sha256_hex}-{:016x}", h.finish())
}

const CACHE_FILE: &str = "component.cwasm";
const CACHE_DIGEST: &str = "component.cwasm.sha256";

/// The cached compilation for `key`, if it is there and is the file this
/// cache wrote: never deserialize native code that is not exactly what
/// this process family compiled.
///
/// The record beside it holds the compiled code's SHA-256 and the file's
/// identity once checked (device, inode, size, modification and change
/// times). When the file still has that identity, before and after
/// wasmtime maps it, it is mapped without reading it again: any write to
/// it, or a file put in its place, changes the identity (the change time
/// cannot be set back), and the directory is private to the user.
/// Otherwise its bytes are read and their digest checked, and the identity
/// recorded for the next time (once the file's last change is a few
/// seconds old: change times are kept in coarse ticks).
fn cached(engine: &Engine, root: &Path, key: &str) -> Option<Component> {
    let dir = root.join("wasm").join(key);
    crate::package::cache::check_private(&dir).ok()?;
    let file = dir.join(CACHE_FILE);
    let recorded = std::fs::read_to_string(dir.join(CACHE_DIGEST)).ok()?;
    let mut lines = recorded.lines();
    let digest = lines.next()?.trim();
    let recorded_identity = lines.next().map(str::trim).filter(|i| !i.is_empty());
    if let Some(component) = recorded_identity.and_then(|i| map_cached(engine, &file, i)) {
        return Some(component);
    }
    let identity = file_identity(&file);
    let bytes = std::fs::read(&file).ok()?;
    if hex(&Sha256::digest(&bytes)) != digest {
        return None;
    }
    // The identity of the file whose bytes were just checked (when it did
    // not change while they were read), for the next open.
    if let Some(identity) = identity
        && settled_identity(&file).as_ref() == Some(&identity)
    {
        let _ = record_cached(root, key, digest, &identity);
    }
    // SAFETY: the bytes are the ones this cache stored (digest checked
    // above, in a private directory), produced by
    // `Engine::precompile_component` for an engine with the same
    // compatibility hash (part of the key); wasmtime re-checks the engine
    // configuration itself.
    unsafe { Component::deserialize(engine, &bytes) }.ok()
}

/// The compiled code in the cache's `file`, mapped, when the file has
/// `identity` (recorded once its digest was checked) before and after the
/// mapping.
fn map_cached(engine: &Engine, file: &Path, identity: &str) -> Option<Component> {
    if file_identity(file).as_deref() != Some(identity) {
        return None;
    }
    // SAFETY: the file is the one this cache wrote and whose digest it
    // checked (same identity, in a private directory), produced by
    // `Engine::precompile_component` for an engine with the same
    // compatibility hash (part of the key); wasmtime re-checks the engine
    // configuration itself. Its identity is checked again after the
    // mapping, in case it was replaced in between.
    let component = unsafe { Component::deserialize_file(engine, file) }.ok()?;
    (file_identity(file).as_deref() == Some(identity)).then_some(component)
}

/// Where what is known of the component file at `path` is recorded:
/// `<root>/wasm/sources/<sha256 of its canonical path>`.
fn source_record(root: &Path, path: &Path) -> Option<PathBuf> {
    let canonical = std::fs::canonicalize(path).ok()?;
    let name = hex(&Sha256::digest(canonical.as_os_str().as_encoded_bytes()));
    Some(root.join("wasm").join("sources").join(name))
}

/// A component file's SHA-256 and `fidius-meta` records, as recorded.
struct KnownSource {
    digest: String,
    records: Vec<u8>,
}

/// What was recorded for the component file at `path` when it had
/// `identity`.
fn known_source(root: &Path, path: &Path, identity: &str) -> Option<KnownSource> {
    let record = source_record(root, path)?;
    crate::package::cache::check_private(record.parent()?).ok()?;
    let text = std::fs::read_to_string(record).ok()?;
    let mut lines = text.lines();
    if lines.next()? != identity {
        return None;
    }
    let digest = lines.next()?.trim();
    let records = crate::package::keys::unhex_vec(lines.next()?.trim())?;
    (digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit())).then(|| KnownSource {
        digest: digest.to_owned(),
        records,
    })
}

/// Records the SHA-256 and `fidius-meta` records of the component file at
/// `path` while it has `identity` (a settled one).
fn record_source(
    root: &Path,
    path: &Path,
    identity: &str,
    digest: &str,
    records: &[u8],
) -> Result<(), crate::package::PackageError> {
    let Some(record) = source_record(root, path) else {
        return Ok(());
    };
    let name = record.file_name().unwrap_or_default().to_string_lossy();
    crate::package::cache::store(
        &root.join("wasm"),
        "sources",
        &name,
        format!("{identity}\n{digest}\n{}\n", hex(records)).as_bytes(),
    )?;
    Ok(())
}

/// [`file_identity`], if the file last changed long enough ago that any
/// later write gets another change time: file systems keep it in coarse
/// ticks, so a write in the same tick as the previous one would keep it.
fn settled_identity(path: &Path) -> Option<String> {
    let changed = std::fs::symlink_metadata(path).ok().and_then(|m| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            Some(
                std::time::UNIX_EPOCH
                    + std::time::Duration::new(
                        u64::try_from(m.ctime()).ok()?,
                        u32::try_from(m.ctime_nsec()).ok()?,
                    ),
            )
        }
        #[cfg(not(unix))]
        {
            m.modified().ok()
        }
    })?;
    let age = std::time::SystemTime::now().duration_since(changed).ok()?;
    if age < SETTLED {
        return None;
    }
    file_identity(path)
}

/// How old a cache file's last change must be before its identity stands
/// for its checked contents.
const SETTLED: std::time::Duration = std::time::Duration::from_secs(2);

/// What identifies the file at `path` and changes with any write to it
/// (`None` where that cannot be told, or if it is not a plain file).
fn file_identity(path: &Path) -> Option<String> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        Some(format!(
            "{} {} {} {}.{} {}.{}",
            meta.dev(),
            meta.ino(),
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec()
        ))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

fn store_cached(
    root: &Path,
    key: &str,
    compiled: &[u8],
) -> Result<(), crate::package::PackageError> {
    let wasm_root = root.join("wasm");
    let path = crate::package::cache::store(&wasm_root, key, CACHE_FILE, compiled)?;
    let digest = hex(&Sha256::digest(compiled));
    // Just written: its identity is recorded by a later open, once settled.
    let identity = settled_identity(&path).unwrap_or_default();
    record_cached(root, key, &digest, &identity)
}

/// Writes the record of the compiled code for `key`: its digest, then the
/// identity of the file that holds it (empty: not known yet).
fn record_cached(
    root: &Path,
    key: &str,
    digest: &str,
    identity: &str,
) -> Result<(), crate::package::PackageError> {
    crate::package::cache::store(
        &root.join("wasm"),
        key,
        CACHE_DIGEST,
        format!("{digest}\n{identity}\n").as_bytes(),
    )?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Shared {
    engine: Engine,
    pre: InstancePre<HostState>,
    settings: WasmSettings,
    path: PathBuf,
}

/// A compiled, linked component. Clients made from it share the compiled
/// code; each has its own instance.
pub struct WasmLibrary {
    path: PathBuf,
    plugins: Vec<PluginInfo>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for WasmLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmLibrary")
            .field("path", &self.path)
            .field("plugins", &self.plugins)
            .finish_non_exhaustive()
    }
}

impl WasmLibrary {
    /// The component's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its plugins, from the `fidius-meta` section.
    pub fn plugins(&self) -> &[PluginInfo] {
        &self.plugins
    }

    /// A client for plugin `name` with no capabilities.
    ///
    /// # Errors
    /// As [`WasmInstanceBuilder::build`].
    pub fn load<C: PluginClient>(&self, name: &str) -> Result<C, LoadError> {
        self.instance::<C>(name).build()
    }

    /// A builder for an instance of plugin `name`.
    pub fn instance<'a, C: PluginClient>(&'a self, name: &'a str) -> WasmInstanceBuilder<'a, C> {
        WasmInstanceBuilder {
            library: self,
            name,
            config: None,
            capabilities: Capabilities::none(),
            host: None,
            _client: PhantomData,
        }
    }
}

/// Builds one sandboxed plugin instance: see [`WasmLibrary::instance`].
#[must_use = "call `.build()` to create the instance"]
pub struct WasmInstanceBuilder<'a, C: PluginClient> {
    library: &'a WasmLibrary,
    name: &'a str,
    config: Option<Result<Vec<u8>, fidius_guest::wire::WireError>>,
    capabilities: Capabilities,
    host: Option<HostCall>,
    _client: PhantomData<fn() -> C>,
}

impl<C: PluginClient> std::fmt::Debug for WasmInstanceBuilder<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmInstanceBuilder")
            .field("plugin", &self.name)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

impl<C: PluginClient> WasmInstanceBuilder<'_, C> {
    /// The configuration for a plugin built with `config = Cfg`.
    pub fn config<Cfg: fidius_guest::__private::serde::Serialize + ?Sized>(
        mut self,
        config: &Cfg,
    ) -> Self {
        self.config = Some(fidius_guest::wire::encode(config));
        self
    }

    /// An already encoded configuration (`None`: none).
    pub(crate) fn encoded_config(
        mut self,
        config: Option<Result<Vec<u8>, fidius_guest::wire::WireError>>,
    ) -> Self {
        self.config = config;
        self
    }

    /// The host's implementation of the interface's `host = Trait`
    /// interface, which the plugin calls through its client, as for native
    /// plugins. A host method that takes streams runs on a thread of its
    /// own while the plugin's call serves its requests for items.
    pub fn host(mut self, host: Arc<<C::Interface as Interface>::Host>) -> Self {
        self.host = Some(Arc::new(move |index, args, inputs, streams| {
            <<C::Interface as Interface>::Host as fidius_guest::HostInterface>::dispatch(
                &host, index, args, inputs, streams,
            )
        }));
        self
    }

    /// What the plugin may touch (default: nothing).
    pub fn capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Checks the interface, instantiates the component and runs the
    /// plugin's constructor.
    ///
    /// # Errors
    /// [`LoadError::NoSuchPlugin`], [`LoadError::InterfaceMismatch`],
    /// [`LoadError::NeedsConfig`], [`LoadError::NotConfigurable`],
    /// [`LoadError::ConfigEncode`], [`LoadError::NeedsHost`] (the
    /// interface calls a host interface and no [`host`](Self::host) was
    /// given), [`LoadError::Wasm`] or
    /// [`LoadError::Create`] (the constructor failed, panicked, trapped,
    /// ran out of time or memory).
    pub fn build(self) -> Result<C, LoadError> {
        let library = self.library;
        let path = &library.path;
        let info = &<C::Interface as Interface>::INFO;
        let index = find(path, &library.plugins, info, self.name)?;
        let meta = &library.plugins[index];
        let slots = check_interface(path, info, meta)?;
        let config = resolve_config(path, meta, self.config)?;
        if let (Some(host), None) = (info.host, &self.host) {
            return Err(LoadError::NeedsHost {
                path: path.clone(),
                plugin: meta.plugin_name.clone(),
                host_interface: host.name,
            });
        }
        let package = format!("fidius:{}", crate::wit_name(info.name));
        let plugin = Core {
            shared: library.shared.clone(),
            package,
            version: meta.interface_version,
            plugin: meta.plugin_name.clone(),
            methods: info
                .methods
                .iter()
                .map(|m| crate::wit_name(m.name))
                .collect(),
            config,
            config_type: meta.config_type.clone(),
            capabilities: self.capabilities,
            slots: slots.clone(),
            host: self.host,
            busy: std::sync::atomic::AtomicU64::new(0),
            no_scalar: std::sync::atomic::AtomicBool::new(false),
            live: Mutex::new(None),
        };
        let live = plugin.instantiate().map_err(|source| LoadError::Create {
            path: path.clone(),
            plugin: meta.plugin_name.clone(),
            source,
        })?;
        if plugin.shared.settings.isolation == Isolation::PerCall {
            // Created only to check that the plugin can be; each call
            // makes its own.
            plugin.retire(live);
        } else {
            *plugin.lock() = Some(live);
        }
        let backend: Arc<dyn DynInstance> = Arc::new(WasmPlugin(Arc::new(plugin)));
        Ok(C::from_instance(ClientInstance::from_dynamic(
            backend,
            &meta.plugin_name,
            &slots,
        )))
    }
}

/// What each store carries.
struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: Limits,
    /// The message the guest's panic hook reported before trapping.
    panic: Option<String>,
    /// The host's implementation of the interface's host interface.
    host: Option<HostCall>,
    /// The host's streams the plugin was given and has not dropped.
    streams: streams::StreamTable,
    /// The host methods with stream arguments running for the plugin,
    /// innermost last.
    running: Vec<host_calls::Running>,
    /// `wasi:http`, brokered by the egress hook.
    http: wasmtime_wasi_http::WasiHttpCtx,
    egress: egress::Hooks,
}

impl wasmtime_wasi_http::WasiHttpView for HostState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.egress,
        }
    }
}

/// Dispatches a guest's `host.call` to the host object.
type HostCall = crate::HostDispatch;

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

struct Limits {
    memory: u64,
    hit: bool,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// One plugin instance: a store and component instance, re-made after a
/// trap. Shared by the client and the streams it returned.
struct Core {
    shared: Arc<Shared>,
    /// `fidius:<interface>`.
    package: String,
    version: u32,
    /// The plugin's name, which `plugin.create` takes.
    plugin: String,
    /// WIT names of the caller's methods, in its order.
    methods: Vec<String>,
    config: Vec<u8>,
    /// The plugin's configuration type, as its metadata names it.
    config_type: Option<String>,
    capabilities: Capabilities,
    /// Per method of the caller's interface: its position in the plugin's
    /// interface (the `fast.call` number), `None` if not implemented.
    slots: Vec<Option<u32>>,
    host: Option<HostCall>,
    /// The thread inside a call on this instance, to refuse a host
    /// callback that calls back into the same instance (it would wait for
    /// itself).
    busy: std::sync::atomic::AtomicU64,
    /// Set once an instance turned out not to export `fast.scalar` (a
    /// guest not built by fidius, or an older one), so that scalar calls go
    /// straight to the general path.
    no_scalar: std::sync::atomic::AtomicBool,
    live: Mutex<Option<Live>>,
}

struct Live {
    /// Unique per instantiation: streams belong to one instance.
    id: u64,
    store: Store<HostState>,
    /// Per method of the caller's interface.
    funcs: Vec<Option<Method>>,
    /// `plugin.destroy`, called when the last client lets go.
    destroy: Option<Func>,
    /// `fast.call`, exported by Rust guests: every method through one
    /// typed function with the arguments and result in the wire format
    /// (bulk bytes move as one `list<u8>`, no per-value conversion).
    fast: Option<FastCall>,
    /// `fast.scalar`, exported by Rust guests: a method that takes and
    /// returns only scalars, with no memory crossing.
    scalar: Option<ScalarCall>,
    /// `fast.stream-next` and `fast.stream-drop`.
    fast_streams: Option<(FastStreamNext, TypedFunc<(u32,), ()>)>,
    /// Streams returned through the typed exports: the resource, its
    /// `next` and the item type, by handle (with [`streams::TYPED`] set).
    typed_streams: std::collections::HashMap<u32, TypedStream>,
    next_typed: u32,
}

struct TypedStream {
    resource: wasmtime::component::ResourceAny,
    next: Func,
    item: Type,
}

type FastCall = TypedFunc<(u32, &'static [u8], &'static [u32]), (Result<Vec<u8>, String>,)>;
/// `fast.scalar`: method number and up to four scalar arguments as bits.
type ScalarCall = TypedFunc<(u32, u64, u64, u64, u64), (u64,)>;
type FastStreamNext = TypedFunc<(u32, u32), (Result<Option<Vec<u8>>, String>,)>;

impl Drop for Core {
    fn drop(&mut self) {
        let live = self
            .live
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(live) = live {
            self.retire(live);
        }
    }
}

/// An export with its types, looked up once per instance.
struct Method {
    func: Func,
    params: Box<[Type]>,
    result: Option<Type>,
    /// Whether `fast.call` beats the typed export: it does when a string,
    /// list or compound value crosses (one bulk copy instead of one
    /// component value per element); for scalars only, the typed call is
    /// cheaper.
    prefer_fast: bool,
    /// For a method returning a stream: its resource's `next` and the
    /// item type.
    stream_next: Option<(Func, Type)>,
    /// For a `list<u8>` → `list<u8>` method: the typed export, which copies
    /// the bytes once each way.
    bytes: Option<BytesFunc>,
    /// Whether the method can go through `fast.scalar`: its parameters (at
    /// most four) and result are all scalars.
    scalar: bool,
}

type BytesFunc = TypedFunc<(&'static [u8],), (Vec<u8>,)>;

fn is_bytes(ty: &Type) -> bool {
    matches!(ty, Type::List(l) if l.ty() == Type::U8)
}

fn is_scalar(ty: &Type) -> bool {
    matches!(
        ty,
        Type::Bool
            | Type::S8
            | Type::U8
            | Type::S16
            | Type::U16
            | Type::S32
            | Type::U32
            | Type::S64
            | Type::U64
            | Type::Float32
            | Type::Float64
            | Type::Char
    )
}

impl Core {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Live>> {
        // A panic while holding the lock leaves `None` or a usable
        // instance; either is consistent.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn interface_name(&self, iface: &str) -> String {
        format!("{}/{iface}@{}.0.0", self.package, self.version)
    }

    /// A fresh store and instance, with the plugin created in it.
    fn instantiate(&self) -> Result<Live, CallError> {
        let shared = &self.shared;
        let settings = &shared.settings;
        let wasi = self
            .capabilities
            .wasi(&shared.path)
            .map_err(|e| CallError::Trapped {
                method: "create",
                reason: e.to_string(),
            })?;
        let mut store = Store::new(
            &shared.engine,
            HostState {
                wasi,
                table: ResourceTable::new(),
                limits: Limits {
                    memory: settings.memory_limit,
                    hit: false,
                },
                panic: None,
                host: self.host.clone(),
                streams: streams::StreamTable::default(),
                running: Vec::new(),
                http: wasmtime_wasi_http::WasiHttpCtx::new(),
                egress: egress::Hooks {
                    egress: self.capabilities.egress(),
                },
            },
        );
        store.limiter(|s| &mut s.limits);
        self.arm(&mut store);
        let instance = shared
            .pre
            .instantiate(&mut store)
            .map_err(|e| trap_error("create", &settings.deadline, &mut store, e))?;
        let lookup = |store: &mut Store<HostState>, iface: &str, func: &str| -> Option<Func> {
            let parent =
                instance.get_export_index(&mut *store, None, &self.interface_name(iface))?;
            let index = instance.get_export_index(&mut *store, Some(&parent), func)?;
            instance.get_func(&mut *store, index)
        };
        let iface = self.package.trim_start_matches("fidius:").to_owned();
        let funcs = self
            .methods
            .iter()
            .map(|m| {
                let func = lookup(&mut store, &iface, m)?;
                let ty = func.ty(&store);
                let params: Box<[Type]> = ty.params().map(|(_, t)| t).collect();
                let result = ty.results().next();
                let all_scalar = params.iter().chain(&result).all(is_scalar);
                let prefer_fast = !all_scalar;
                let scalar = all_scalar && params.len() <= value::SCALAR_ARGS;
                let stream_next = lookup(&mut store, &iface, &format!("[method]{m}-stream.next"))
                    .and_then(|next| {
                        let item = match next.ty(&store).results().next() {
                            Some(Type::Result(r)) => match r.ok() {
                                Some(Type::List(l)) => l.ty(),
                                _ => return None,
                            },
                            _ => return None,
                        };
                        Some((next, item))
                    });
                let bytes = match (&*params, &result) {
                    ([p], Some(r)) if is_bytes(p) && is_bytes(r) => func.typed(&store).ok(),
                    _ => None,
                };
                Some(Method {
                    func,
                    params,
                    result,
                    prefer_fast,
                    stream_next,
                    bytes,
                    scalar,
                })
            })
            .collect();
        let create = lookup(&mut store, "plugin", "create").ok_or_else(|| CallError::Protocol {
            method: "create",
            detail: format!(
                "the component does not export `{}` with a `create` function",
                self.interface_name("plugin")
            ),
        })?;
        let mut results = [Val::Bool(false)];
        // `list<u8>`: the configuration's wire encoding; any other type:
        // the interface's declared configuration type, typed.
        let create_ty = create.ty(&store);
        let mut params = create_ty.params();
        match params.next() {
            Some((_, Type::String)) => {}
            other => {
                return Err(CallError::Protocol {
                    method: "create",
                    detail: format!(
                        "`create` takes {} first, not the plugin's name (a `string`); the \
                         component was built for an older fidius",
                        other.map_or("nothing".to_owned(), |(_, t)| format!("{t:?}"))
                    ),
                });
            }
        }
        let config = match params.next() {
            Some((_, Type::List(list))) if list.ty() == Type::U8 => {
                Val::List(self.config.iter().map(|&b| Val::U8(b)).collect())
            }
            Some((_, ty)) => {
                let mut no_streams = |_| Err("a configuration holds no streams".to_owned());
                let decoded = value::decode_args(&self.config, &[ty], &mut no_streams)
                    .map_err(|e| e.to_string())
                    .and_then(|mut v| v.pop().ok_or_else(|| "no value".to_owned()));
                decoded.map_err(|e| CallError::ConfigDecode {
                    message: format!(
                        "`{}` (the type `create` takes): {e}",
                        self.config_type.as_deref().unwrap_or("the configuration")
                    ),
                })?
            }
            None => {
                return Err(CallError::Protocol {
                    method: "create",
                    detail: "`create` takes no configuration argument".into(),
                });
            }
        };
        create
            .call(
                &mut store,
                &[Val::String(self.plugin.clone()), config],
                &mut results,
            )
            .map_err(|e| trap_error("create", &settings.deadline, &mut store, e))?;
        match &results[0] {
            Val::Result(Ok(_)) => {}
            Val::Result(Err(Some(e))) => return Err(create_error(e)),
            other => {
                return Err(CallError::Protocol {
                    method: "create",
                    detail: format!("`create` returned {other:?}"),
                });
            }
        }
        let destroy = lookup(&mut store, "plugin", "destroy");
        let (fast, scalar, fast_streams) = if settings.typed_exports_only {
            (None, None, None)
        } else {
            let call = lookup(&mut store, "fast", "call").and_then(|f| f.typed(&store).ok());
            let scalar = lookup(&mut store, "fast", "scalar").and_then(|f| f.typed(&store).ok());
            let next = lookup(&mut store, "fast", "stream-next").and_then(|f| f.typed(&store).ok());
            let drop = lookup(&mut store, "fast", "stream-drop").and_then(|f| f.typed(&store).ok());
            (call, scalar, next.zip(drop))
        };
        static INSTANCES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(Live {
            id: INSTANCES.fetch_add(1, Ordering::Relaxed),
            store,
            funcs,
            destroy,
            fast,
            scalar,
            fast_streams,
            typed_streams: std::collections::HashMap::new(),
            next_typed: 0,
        })
    }

    /// Runs the plugin's `Drop` (under the deadline) and frees the
    /// instance. A failure there has no one to report to; the store is
    /// freed either way.
    fn retire(&self, mut live: Live) {
        if let Some(destroy) = live.destroy {
            self.arm(&mut live.store);
            let _ = destroy.call(&mut live.store, &[], &mut []);
        }
    }

    /// Sets this call's deadline and fuel, and forgets what an earlier
    /// call hit: a refused `memory.grow` the guest handled, a panic message
    /// it recorded and then recovered from. A call's error names what this
    /// call ran into.
    fn arm(&self, store: &mut Store<HostState>) {
        let state = store.data_mut();
        state.limits.hit = false;
        state.panic = None;
        let settings = &self.shared.settings;
        // In `u64` (a deadline past 584 years is no deadline).
        let nanos = u64::try_from(settings.deadline.as_nanos()).unwrap_or(u64::MAX);
        let ticks = nanos.div_ceil(TICK.as_nanos() as u64).saturating_add(1);
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        if let Some(fuel) = settings.fuel {
            let _ = store.set_fuel(fuel);
        }
    }
}

fn create_error(e: &Val) -> CallError {
    match e {
        Val::Variant(case, Some(payload)) if case == "config" => CallError::ConfigDecode {
            message: match &**payload {
                Val::String(s) => s.clone(),
                other => format!("{other:?}"),
            },
        },
        Val::Variant(case, Some(payload)) if case == "rejected" => {
            let mut error = PluginError::new("", "");
            if let Val::Record(fields) = &**payload {
                for (name, value) in fields {
                    match (name.as_str(), value) {
                        ("code", Val::String(s)) => error.code = s.clone(),
                        ("message", Val::String(s)) => error.message = s.clone(),
                        ("details", Val::List(items)) => {
                            for item in items {
                                if let Val::Tuple(kv) = item
                                    && let [Val::String(k), Val::String(v)] = kv.as_slice()
                                {
                                    error.details.insert(k.clone(), v.clone());
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            CallError::Rejected {
                error: Box::new(error),
            }
        }
        // The metadata lists the plugin, but the guest does not know it.
        Val::Variant(case, Some(payload)) if case == "unknown-plugin" => CallError::Protocol {
            method: "create",
            detail: match &**payload {
                Val::String(s) => s.clone(),
                other => format!("{other:?}"),
            },
        },
        other => CallError::Protocol {
            method: "create",
            detail: format!("`create` failed with {other:?}"),
        },
    }
}

/// The typed error for a failed call: the deadline (an interrupt is
/// always the deadline's), the guest's panic message, the memory limit
/// (refused during this call), or the trap.
fn trap_error(
    method: &'static str,
    deadline: &Duration,
    store: &mut Store<HostState>,
    e: wasmtime::Error,
) -> CallError {
    let trap = e.downcast_ref::<Trap>();
    if let Some(Trap::Interrupt) = trap {
        return CallError::Timeout {
            method,
            deadline: *deadline,
        };
    }
    let state = store.data_mut();
    if let Some(message) = state.panic.take() {
        return CallError::Panic { method, message };
    }
    if state.limits.hit {
        return CallError::MemoryLimit {
            method,
            limit: state.limits.memory,
        };
    }
    match trap {
        Some(trap) => CallError::Trapped {
            method,
            reason: trap.to_string(),
        },
        None => CallError::Trapped {
            method,
            reason: format!("{e:#}"),
        },
    }
}

/// What the client holds: the shared [`Core`].
struct WasmPlugin(Arc<Core>);

thread_local! {
    /// The instance the last call on this thread ran on, for the stream
    /// its result may hold (the client asks for it right after the call).
    static LAST_INSTANCE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

impl DynInstance for WasmPlugin {
    fn call(&self, index: usize, name: &'static str, args: &[u8]) -> Result<Vec<u8>, CallError> {
        self.0.call(index, name, args, Vec::new())
    }

    fn call_streams(
        &self,
        index: usize,
        name: &'static str,
        args: &[u8],
        inputs: Vec<OwnedStream>,
    ) -> Result<Vec<u8>, CallError> {
        self.0.call(index, name, args, inputs)
    }

    fn call_bytes(
        &self,
        index: usize,
        name: &'static str,
        bytes: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        self.0.call_bytes(index, name, bytes)
    }

    fn call_scalar(
        &self,
        index: usize,
        name: &'static str,
        args: [u64; 4],
    ) -> Result<Option<u64>, CallError> {
        if self.0.no_scalar.load(Ordering::Relaxed) {
            return Ok(None);
        }
        self.0
            .run(name, |core, live| core.call_scalar(live, index, name, args))
    }

    fn stream(&self, name: &'static str, handle: u32) -> Result<Box<dyn BatchSource>, CallError> {
        if self.0.shared.settings.isolation == Isolation::PerCall {
            return Err(CallError::Unsupported {
                method: name,
                what: "returned streams with a fresh instance per call",
            });
        }
        Ok(Box::new(streams::WasmStream {
            core: self.0.clone(),
            instance: LAST_INSTANCE.with(std::cell::Cell::get),
            handle,
            method: name,
            handed: false,
        }))
    }
}

/// A nonzero number unique to the current thread.
fn thread_token() -> u64 {
    thread_local! {
        static TOKEN: u8 = const { 0 };
    }
    TOKEN.with(|t| t as *const u8 as u64)
}

/// How a step on an instance failed: the error, and whether it trapped
/// (the instance is then discarded).
type Failure = (CallError, bool);

impl Core {
    /// Runs `f` on the live instance, holding the lock; refuses a
    /// re-entrant call from a host callback on this thread (it would wait
    /// for itself). With `instance`, only on that instance (a stream's),
    /// never on a fresh one.
    fn with_live<R>(
        &self,
        name: &'static str,
        instance: Option<u64>,
        f: impl FnOnce(&Self, &mut Live) -> Result<R, Failure>,
    ) -> Result<R, CallError> {
        let me = thread_token();
        let busy = self.busy.load(Ordering::Acquire);
        if busy == me || (busy != 0 && host_calls::serving(busy)) {
            return Err(CallError::Protocol {
                method: name,
                detail: "the host called back into the same WASM plugin instance while it is \
                         inside a call (from a host callback, or from a stream the plugin \
                         returned being passed back to it as an argument); not supported"
                    .into(),
            });
        }
        let mut guard = self.lock();
        self.busy.store(me, Ordering::Release);
        let result = (|| {
            if instance.is_some_and(|id| guard.as_ref().is_none_or(|live| live.id != id)) {
                return Err(CallError::Protocol {
                    method: name,
                    detail: "the plugin instance that produced this stream was discarded after \
                             a trap"
                        .into(),
                });
            }
            let live = match &mut *guard {
                Some(live) => live,
                // The last call trapped: start over on a fresh instance.
                empty => empty.insert(self.instantiate()?),
            };
            let id = live.id;
            let result = f(self, live);
            // Set after the call: any call it made on this thread (a host
            // callback calling another plugin) has ended by now, so this is
            // the instance whose result the client reads next.
            LAST_INSTANCE.with(|c| c.set(id));
            result.map_err(|(error, trapped)| {
                if trapped {
                    // The instance may be in any state after a trap:
                    // discard it.
                    *guard = None;
                }
                error
            })
        })();
        self.busy.store(0, Ordering::Release);
        result
    }

    fn call(
        &self,
        index: usize,
        name: &'static str,
        args: &[u8],
        inputs: Vec<OwnedStream>,
    ) -> Result<Vec<u8>, CallError> {
        self.run(name, |core, live| {
            core.call_on(live, index, name, args, inputs)
        })
    }

    /// A bytes-in, bytes-out call: through the typed export when the
    /// component has one of that shape (one copy each way), else through
    /// `call_on`.
    fn call_bytes(
        &self,
        index: usize,
        name: &'static str,
        bytes: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        let run = |core: &Self, live: &mut Live| -> Result<Vec<u8>, Failure> {
            let typed = live
                .funcs
                .get(index)
                .and_then(Option::as_ref)
                .and_then(|m| m.bytes);
            if let Some(func) = typed {
                core.arm(&mut live.store);
                return match func.call(&mut live.store, (bytes,)) {
                    Ok((out,)) => Ok(out),
                    Err(e) => Err((
                        trap_error(name, &core.shared.settings.deadline, &mut live.store, e),
                        true,
                    )),
                };
            }
            let mut args = Vec::with_capacity(bytes.len() + 10);
            fidius_guest::wire::encode_bytes_into(bytes, &mut args);
            let out = core.call_on(live, index, name, &args, Vec::new())?;
            fidius_guest::__private::decode_dynamic_bytes(name, &out).map_err(|e| (e, false))
        };
        self.run(name, run)
    }

    /// Runs one call: on the client's instance, or with
    /// [`Isolation::PerCall`] on a fresh instance used for this call only
    /// (stream arguments can then be read during the call only).
    fn run<R>(
        &self,
        name: &'static str,
        f: impl FnOnce(&Self, &mut Live) -> Result<R, Failure>,
    ) -> Result<R, CallError> {
        if self.shared.settings.isolation == Isolation::PerCall {
            let mut live = self.instantiate()?;
            let result = f(self, &mut live);
            if let Ok(_) | Err((_, false)) = &result {
                self.retire(live);
            }
            return result.map_err(|(error, _)| error);
        }
        self.with_live(name, None, f)
    }

    /// The next batch of stream `handle`, which instance `instance`
    /// returned from `method`.
    fn stream_next(
        &self,
        instance: u64,
        handle: u32,
        method: &'static str,
        max: u32,
    ) -> Result<Option<Vec<u8>>, CallError> {
        self.with_live(method, Some(instance), |core, live| {
            let deadline = &core.shared.settings.deadline;
            if handle & streams::TYPED != 0 {
                let Some(stream) = live.typed_streams.get(&handle) else {
                    return Err((unknown_stream(method, handle), false));
                };
                let (next, resource, item) = (stream.next, stream.resource, stream.item.clone());
                let mut results = [Val::Bool(false)];
                core.arm(&mut live.store);
                if let Err(e) = next.call(
                    &mut live.store,
                    &[Val::Resource(resource), Val::U32(max)],
                    &mut results,
                ) {
                    return Err((trap_error(method, deadline, &mut live.store, e), true));
                }
                return match &results[0] {
                    Val::Result(Ok(Some(list))) => match &**list {
                        Val::List(items) if items.is_empty() => Ok(None),
                        Val::List(items) => {
                            let mut out = Vec::new();
                            for v in items {
                                value::encode_item(v, &item, &mut out).map_err(|message| {
                                    (CallError::ResultEncode { method, message }, false)
                                })?;
                            }
                            Ok(Some(out))
                        }
                        other => Err((stream_protocol(method, other), false)),
                    },
                    Val::Result(Err(Some(e))) => match &**e {
                        Val::String(message) => Err((
                            CallError::Protocol {
                                method,
                                detail: format!("the plugin's stream failed: {message}"),
                            },
                            false,
                        )),
                        other => Err((stream_protocol(method, other), false)),
                    },
                    other => Err((stream_protocol(method, other), false)),
                };
            }
            let Some((next, _)) = &live.fast_streams else {
                return Err((unknown_stream(method, handle), false));
            };
            core.arm(&mut live.store);
            match next.call(&mut live.store, (handle, max)) {
                Ok((Ok(batch),)) => Ok(batch),
                Ok((Err(detail),)) => Err((CallError::Protocol { method, detail }, false)),
                Err(e) => Err((trap_error(method, deadline, &mut live.store, e), true)),
            }
        })
    }

    /// Cancels stream `handle` in the plugin (its iterator is dropped).
    /// Nothing to do when its instance is gone; a drop from inside a call
    /// on this instance (a host callback) leaves it to the instance's end.
    fn stream_drop(&self, instance: u64, handle: u32, method: &'static str) {
        let _ = self.with_live(method, Some(instance), |core, live| {
            core.arm(&mut live.store);
            let deadline = &core.shared.settings.deadline;
            if handle & streams::TYPED != 0 {
                if let Some(stream) = live.typed_streams.remove(&handle) {
                    stream
                        .resource
                        .resource_drop(&mut live.store)
                        .map_err(|e| (trap_error(method, deadline, &mut live.store, e), true))?;
                }
                return Ok(());
            }
            if let Some((_, drop)) = &live.fast_streams {
                drop.call(&mut live.store, (handle,))
                    .map_err(|e| (trap_error(method, deadline, &mut live.store, e), true))?;
            }
            Ok(())
        });
    }
}

fn unknown_stream(method: &'static str, handle: u32) -> CallError {
    CallError::Protocol {
        method,
        detail: format!("the plugin has no stream with handle {handle:#x}"),
    }
}

fn stream_protocol(method: &'static str, found: &Val) -> CallError {
    CallError::Protocol {
        method,
        detail: format!("a stream's `next` returned {found:?}"),
    }
}

impl Core {
    /// A call through `fast.scalar`, when the component exports it and the
    /// method takes only scalars: the arguments' bits are checked against
    /// the method's parameter types, and the result's against its result
    /// type. `None` when there is no such path.
    fn call_scalar(
        &self,
        live: &mut Live,
        index: usize,
        name: &'static str,
        args: [u64; 4],
    ) -> Result<Option<u64>, Failure> {
        let Live {
            store,
            funcs,
            scalar,
            ..
        } = live;
        let Some(scalar) = scalar else {
            self.no_scalar.store(true, Ordering::Relaxed);
            return Ok(None);
        };
        let (Some(Some(method)), Some(Some(number))) = (funcs.get(index), self.slots.get(index))
        else {
            return Ok(None);
        };
        if !method.scalar {
            return Ok(None);
        }
        if let Some((i, ty)) = method
            .params
            .iter()
            .zip(args)
            .enumerate()
            .find_map(|(i, (ty, bits))| (!value::scalar_fits(bits, ty)).then_some((i, ty)))
        {
            return Err((
                CallError::ArgumentDecode {
                    method: name,
                    message: format!("argument {i}: {:#x} is not a value of {ty:?}", args[i]),
                },
                false,
            ));
        }
        self.arm(store);
        let [a, b, c, d] = args;
        match scalar.call(&mut *store, (*number, a, b, c, d)) {
            Ok((bits,)) => match &method.result {
                Some(ty) if !value::scalar_fits(bits, ty) => Err((
                    CallError::ResultEncode {
                        method: name,
                        message: format!("{bits:#x} is not a value of {ty:?}"),
                    },
                    false,
                )),
                _ => Ok(Some(bits)),
            },
            Err(e) => Err((
                trap_error(name, &self.shared.settings.deadline, store, e),
                true,
            )),
        }
    }

    /// One call on `live`; on failure, whether it trapped.
    fn call_on(
        &self,
        live: &mut Live,
        index: usize,
        name: &'static str,
        args: &[u8],
        inputs: Vec<OwnedStream>,
    ) -> Result<Vec<u8>, Failure> {
        let fail = |error| (error, false);
        let deadline = &self.shared.settings.deadline;
        if inputs.is_empty()
            && let Some(method) = live.funcs.get(index).and_then(Option::as_ref)
            && method.scalar
        {
            let args = value::scalar_args(args, &method.params).map_err(|message| {
                fail(CallError::ArgumentDecode {
                    method: name,
                    message,
                })
            })?;
            let result = method.result.clone();
            if let Some(bits) = self.call_scalar(live, index, name, args)? {
                return value::scalar_result(bits, result.as_ref()).map_err(|message| {
                    fail(CallError::ResultEncode {
                        method: name,
                        message,
                    })
                });
            }
        }
        let prefer_fast = live
            .funcs
            .get(index)
            .and_then(Option::as_ref)
            .is_none_or(|m| m.prefer_fast);
        if let (true, Some(fast), Some(Some(number))) =
            (prefer_fast, &live.fast, self.slots.get(index))
        {
            // The guest owns the stream arguments from here on: its own
            // returned streams go back to it as they are, the others go in
            // the stream table.
            let me: *const Self = self;
            let handles: Vec<u32> = inputs
                .into_iter()
                .map(|s| match s.into_backend::<streams::WasmStream>() {
                    Ok(own)
                        if std::ptr::eq(Arc::as_ptr(&own.core), me)
                            && own.instance == live.id
                            && own.handle & streams::TYPED == 0 =>
                    {
                        own.hand_back() | streams::OWN
                    }
                    Ok(other) => live
                        .store
                        .data_mut()
                        .streams
                        .insert(OwnedStream::from_backend(other, name)),
                    Err(s) => live.store.data_mut().streams.insert(s),
                })
                .collect();
            self.arm(&mut live.store);
            return match fast.call(&mut live.store, (*number, args, &handles)) {
                Ok((Ok(bytes),)) => Ok(bytes),
                Ok((Err(message),)) => {
                    // The arguments did not decode: the method never ran.
                    for h in handles {
                        drop(live.store.data_mut().streams.remove(h));
                    }
                    Err(fail(CallError::ArgumentDecode {
                        method: name,
                        message,
                    }))
                }
                Err(e) => Err((trap_error(name, deadline, &mut live.store, e), true)),
            };
        }
        let Some(method) = live.funcs.get(index).and_then(Option::as_ref) else {
            return Err(fail(CallError::Protocol {
                method: name,
                detail: "the component does not export this method".into(),
            }));
        };
        let mut inputs: Vec<Option<OwnedStream>> = inputs.into_iter().map(Some).collect();
        let store = &mut live.store;
        let values = value::decode_args(args, &method.params, &mut |position| {
            let stream = inputs
                .get_mut(position as usize)
                .and_then(Option::take)
                .ok_or_else(|| format!("no stream number {position}"))?;
            streams::source_val(store, stream)
        })
        .map_err(|message| {
            fail(CallError::ArgumentDecode {
                method: name,
                message,
            })
        })?;
        let (func, result_ty) = (method.func, &method.result);
        let mut results = [Val::Bool(false)];
        let results = &mut results[..usize::from(result_ty.is_some())];
        self.arm(&mut live.store);
        if let Err(e) = func.call(&mut live.store, &values, results) {
            let error = trap_error(name, deadline, &mut live.store, e);
            return Err((error, true));
        }
        let mut out = Vec::new();
        let (Some(v), Some(t)) = (results.first(), result_ty) else {
            return Ok(out);
        };
        let stream_next = method.stream_next.clone();
        let encode_error = |message| {
            fail(CallError::ResultEncode {
                method: name,
                message,
            })
        };
        // A returned stream becomes a handle.
        let register = |live: &mut Live, v: &Val| -> Result<u32, Failure> {
            let (Val::Resource(resource), Some((next, item))) = (v, &stream_next) else {
                return Err(encode_error(format!(
                    "expected a stream resource, found {v:?}"
                )));
            };
            live.next_typed = live.next_typed.wrapping_add(1) & !streams::TYPED;
            let handle = live.next_typed | streams::TYPED;
            live.typed_streams.insert(
                handle,
                TypedStream {
                    resource: *resource,
                    next: *next,
                    item: item.clone(),
                },
            );
            Ok(handle)
        };
        match (v, t) {
            (v, Type::Own(_)) => {
                let handle = register(live, v)?;
                value::encode(&Val::U32(handle), &Type::U32, &mut out).map_err(encode_error)?;
            }
            (Val::Result(Ok(Some(ok))), Type::Result(r))
                if matches!(r.ok(), Some(Type::Own(_))) =>
            {
                let handle = register(live, ok)?;
                out.push(0);
                value::encode(&Val::U32(handle), &Type::U32, &mut out).map_err(encode_error)?;
            }
            (v, t) => value::encode(v, t, &mut out).map_err(encode_error)?,
        }
        Ok(out)
    }
}
