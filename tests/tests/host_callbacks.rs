//! Plugin → host callbacks through a `#[host_interface]`, on every backend
//! where they apply.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use fidius::runtime::InterfaceField;
use fidius::{Interface, LoadError, PluginError, PluginLibrary, Stream};
use fidius_tests::{Backend, fixture, for_each_backend};
use fixture_api::{CalculatorClient, ScriptedClient, Services};

/// The host's implementation of `Services`.
#[derive(Default)]
struct Host {
    log: Mutex<Vec<String>>,
    values: BTreeMap<String, String>,
    /// Set after loading, for `call_back`.
    plugin: Mutex<Option<ScriptedClient>>,
    /// Another plugin `lookup` calls, when set.
    other: Mutex<Option<CalculatorClient>>,
}

impl Services for Host {
    fn log(&self, message: &str) {
        self.log.lock().unwrap().push(message.to_owned());
    }
    fn lookup(&self, key: &str) -> Result<String, PluginError> {
        let other = self.other.lock().unwrap().clone();
        if let Some(other) = other {
            assert_eq!(other.add(1, 2).unwrap(), 3);
        }
        self.values
            .get(key)
            .cloned()
            .ok_or_else(|| PluginError::new("unknown_key", format!("no value for `{key}`")))
    }
    fn explode(&self) -> u32 {
        panic!("the host exploded");
    }
    fn call_back(&self, x: i64) -> i64 {
        let plugin = self.plugin.lock().unwrap().clone();
        // Re-enters the plugin that is calling us right now.
        plugin.map_or(0, |p| p.double(x).unwrap())
    }
    fn numbers(&self, n: u64) -> Stream<u64> {
        Stream::new(1..=n)
    }
    fn total(&self, scale: u64, mut items: Stream<u64>, take: u64) -> u64 {
        let mut sum = 0;
        for _ in 0..take {
            // Stops at the end or at the first failed item.
            match items.try_next() {
                Some(Ok(item)) => sum += item,
                _ => break,
            }
        }
        scale * sum
    }
    fn dot(&self, a: Stream<u64>, b: Stream<u64>) -> u64 {
        let plugin = self.plugin.lock().unwrap().clone();
        if let Some(plugin) = plugin {
            // Calls back into the plugin whose streams these are.
            let back = plugin.double(1);
            self.log.lock().unwrap().push(format!("{back:?}"));
        }
        a.zip(b).map(|(x, y)| x * y).sum()
    }
}

fn load(host: Arc<Host>) -> ScriptedClient {
    load_on(Backend::Native, host)
}

fn load_on(backend: Backend, host: Arc<Host>) -> ScriptedClient {
    backend
        .load_with_host::<ScriptedClient>("fixture_scripted", "Script", host)
        .unwrap()
}

fn host() -> Arc<Host> {
    Arc::new(Host {
        values: [("answer".to_string(), "42".to_string())].into(),
        ..Host::default()
    })
}

#[test]
fn re_entrant_calls_do_not_deadlock() {
    let host = host();
    let script = load(host.clone());
    *host.plugin.lock().unwrap() = Some(script.clone());
    assert_eq!(script.reenter(21).unwrap(), 42);
    // From many threads at once.
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let script = script.clone();
            std::thread::spawn(move || {
                for x in 0..200 {
                    assert_eq!(script.reenter(x + t).unwrap(), 2 * (x + t));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Break the host → plugin → host cycle.
    host.plugin.lock().unwrap().take();
}

#[test]
fn host_streams_flow_to_the_plugin() {
    let script = load(host());
    assert_eq!(script.sum_host_numbers(100).unwrap(), 5050);
}

#[test]
fn the_host_interface_is_checked_by_hash_before_loading() {
    let lib = PluginLibrary::open(fixture("fixture_scripted")).unwrap();
    let meta = lib
        .plugins()
        .iter()
        .find(|p| p.plugin_name == "Script")
        .unwrap();
    let services = <dyn Services as Interface>::INFO;
    let recorded = meta.host.as_ref().unwrap();
    assert_eq!(
        (recorded.name.as_str(), recorded.version, recorded.hash),
        ("Services", 1, services.hash)
    );
    assert_eq!(meta.interface_meta("owner"), Some("tests"));
    let info = <dyn fixture_api::Scripted as Interface>::INFO;
    assert_eq!(info.host.unwrap().name, "Services");
    assert_eq!(info.method("double").unwrap().meta("pure"), Some("yes"));

    // A plugin built against a different host interface is refused.
    let dir = fidius_tests::scratch("host_hash");
    let original = std::fs::read(fixture("fixture_scripted")).unwrap();
    let needle = services.hash.to_le_bytes();
    let at = original
        .windows(8)
        .position(|w| w == needle)
        .expect("host hash in the metadata record");
    let mut patched = original.clone();
    patched[at] ^= 0xff;
    let path = dir.join("other_host.so");
    std::fs::write(&path, patched).unwrap();
    let lib = PluginLibrary::open(&path).unwrap();
    match lib
        .instance::<ScriptedClient>("Script")
        .host(host())
        .build()
    {
        Err(LoadError::InterfaceMismatch {
            field,
            expected,
            found,
            ..
        }) => {
            assert_eq!(field, InterfaceField::HostInterface);
            assert_eq!(
                expected,
                format!("Services v1 (hash {:#018x})", services.hash)
            );
            assert_eq!(
                found,
                format!("Services v1 (hash {:#018x})", services.hash ^ 0xff)
            );
        }
        other => panic!("expected a host interface mismatch, got {other:?}"),
    }
}

for_each_backend! {

#[test]
fn plugins_call_the_host_with_typed_results_and_errors() {
    let host = host();
    let script = load_on(BACKEND, host.clone());
    assert_eq!(script.run("answer").unwrap().unwrap(), "42");
    let error = script.run("question").unwrap().unwrap_err();
    assert_eq!(error.code, "unknown_key");
    assert_eq!(error.message, "no value for `question`");
    assert_eq!(*host.log.lock().unwrap(), ["run answer", "run question"]);
}

#[test]
fn a_host_panic_reaches_the_plugin_as_a_typed_error() {
    let script = load_on(BACKEND, host());
    assert_eq!(
        script.host_panic().unwrap(),
        "host failed: `explode` panicked: the host exploded"
    );
    // Both sides stay usable.
    assert_eq!(script.run("answer").unwrap().unwrap(), "42");
}

#[test]
fn the_host_object_lives_while_the_plugin_holds_it() {
    let host = host();
    let script = load_on(BACKEND, host.clone());
    assert_eq!(
        Arc::strong_count(&host),
        2,
        "the plugin holds one reference"
    );
    drop(script);
    assert_eq!(Arc::strong_count(&host), 1, "released with the instance");
}

#[test]
fn plugins_pass_streams_to_host_methods() {
    let script = load_on(BACKEND, host());
    assert_eq!(script.send_to_host(100, u64::MAX).unwrap(), (2 * 5050, 100));
    // The host stops after five items: the plugin produces hardly more
    // (the stream is pulled in batches, and dropped).
    let (total, produced) = script.send_to_host(1_000_000, 5).unwrap();
    assert_eq!(total, 2 * 15);
    assert!(produced < 1000, "the plugin produced {produced} items");
    // Two stream arguments, pulled in turn.
    assert_eq!(script.dot_on_host(10).unwrap(), 385);
    // Many batches.
    let n = 200_000u64;
    assert_eq!(script.send_to_host(n, u64::MAX).unwrap(), (n * (n + 1), n));
}

#[test]
fn a_plugin_stream_failing_inside_a_host_method_is_a_typed_error() {
    let script = load_on(BACKEND, host());
    let result = script.send_failing_to_host();
    if matches!(BACKEND, Backend::Native | Backend::Python) {
        // The producer's panic (exception) is the stream's error; the host
        // stops there.
        assert_eq!(result, Ok(6));
    } else {
        // A WASM guest cannot unwind: the panic traps the plugin's call.
        assert!(
            matches!(&result, Err(fidius::CallError::Panic { message, .. })
                if message.contains("the plugin's stream broke at item 4")),
            "{result:?}"
        );
    }
    // The same client answers afterwards.
    assert_eq!(script.dot_on_host(3).unwrap(), 14);
}

#[test]
fn a_missing_host_is_a_typed_error() {
    match BACKEND.load::<ScriptedClient>("fixture_scripted", "Script") {
        Err(LoadError::NeedsHost { host_interface, .. }) => assert_eq!(host_interface, "Services"),
        other => panic!("expected NeedsHost, got {other:?}"),
    }
}

}

mod wasm_limits {
    use super::*;

    /// A host callback that calls back into the same WASM instance is
    /// refused (the instance is inside the call that made the callback);
    /// nothing deadlocks and the plugin stays usable.
    #[test]
    fn re_entrant_calls_into_a_wasm_plugin_are_refused_not_deadlocked() {
        let host = host();
        let script = load_on(Backend::Wasm, host.clone());
        *host.plugin.lock().unwrap() = Some(script.clone());
        // The host's `call_back` unwraps the refused call and panics; the
        // plugin sees that panic as an error and returns `i64::MIN`.
        assert_eq!(script.reenter(21).unwrap(), i64::MIN);
        assert_eq!(script.double(21).unwrap(), 42);
        host.plugin.lock().unwrap().take();
    }

    /// A host callback that calls another WASM plugin, inside a call that
    /// returns a stream: the stream is still the calling plugin's.
    #[test]
    fn a_stream_returned_after_a_nested_plugin_call_is_the_callers() {
        for backend in [Backend::Wasm, Backend::WasmTyped] {
            let host = host();
            *host.other.lock().unwrap() = Some(backend.load("fixture_plugins", "Basic").unwrap());
            let script = load_on(backend, host.clone());
            let items: Vec<u64> = script
                .count_after_lookup("answer", 5)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(items, [0, 1, 2, 3, 4], "{backend:?}");
            host.other.lock().unwrap().take();
        }
    }

    /// A host method running for a plugin's streams (on a thread of its
    /// own) that calls back into that plugin is refused, not deadlocked.
    #[test]
    fn a_host_method_taking_streams_cannot_reenter_the_wasm_plugin() {
        for backend in [Backend::Wasm, Backend::WasmTyped] {
            let host = host();
            let script = load_on(backend, host.clone());
            *host.plugin.lock().unwrap() = Some(script.clone());
            assert_eq!(script.dot_on_host(3).unwrap(), 14, "{backend:?}");
            host.plugin.lock().unwrap().take();
            let log = host.log.lock().unwrap();
            assert!(
                log[0].contains("called back into the same WASM plugin instance"),
                "{backend:?}: {log:?}"
            );
        }
    }

    /// A stream a host method returns flows to a WASM plugin too (pulled
    /// through `host.stream-next`).
    #[test]
    fn host_streams_flow_to_wasm_plugins() {
        for backend in [Backend::Wasm, Backend::WasmTyped] {
            let script = load_on(backend, host());
            assert_eq!(script.sum_host_numbers(100).unwrap(), 5050, "{backend:?}");
        }
    }
}
