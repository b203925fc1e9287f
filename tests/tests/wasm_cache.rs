//! The cache of compiled components: a second open loads the cached code
//! without compiling, and a cache file that is not exactly what the cache
//! wrote (damaged, or another component's compiled code put in its place)
//! is never deserialized: it is detected by its digest and replaced.

use std::path::{Path, PathBuf};

use fidius::wasm::{WasmRuntime, WasmSettings};
use fixture_api::CalculatorClient;

/// The compiled-code entries (`<root>/wasm/<key>/`) under `root` (not the
/// records of component files (digest and metadata), in
/// `<root>/wasm/sources/`).
fn entries(root: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(root.join("wasm"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    found.retain(|p| !p.ends_with("sources"));
    found.sort();
    found
}

fn add(runtime: &WasmRuntime) -> i64 {
    let library = runtime
        .open(fidius_tests::wasm_fixture("fixture_plugins"))
        .unwrap();
    let calculator: CalculatorClient = library.load("Basic").unwrap();
    calculator.add(40, 2).unwrap()
}

#[test]
fn a_damaged_or_foreign_cache_file_is_never_loaded() {
    let dir = fidius_tests::scratch("wasm_cache");
    let runtime = WasmRuntime::new(WasmSettings::default().cache_dir(Some(dir.clone()))).unwrap();
    assert_eq!(add(&runtime), 42);
    let [entry] = entries(&dir).try_into().expect("one cache entry");
    let cwasm = entry.join("component.cwasm");
    let compiled = std::fs::read(&cwasm).unwrap();
    let record = || std::fs::read_to_string(entry.join("component.cwasm.sha256")).unwrap();
    // The record: the compiled code's digest, then the file's identity,
    // which is recorded only once the file's change time is a few seconds
    // old (so that a later write cannot fall in the same clock tick).
    assert_eq!(record().lines().filter(|l| !l.is_empty()).count(), 1);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(add(&runtime), 42);
    assert_eq!(record().lines().count(), 2, "{}", record());

    // Cached: loaded again, mapped without reading (the identity matches).
    assert_eq!(add(&runtime), 42);
    assert_eq!(std::fs::read(&cwasm).unwrap(), compiled);

    // Damaged in place, same length: the identity changed, the digest does
    // not match, so the code is compiled again and the file rewritten.
    let mut damaged = compiled.clone();
    let middle = damaged.len() / 2;
    damaged[middle..middle + 64].fill(0xcc);
    std::fs::write(&cwasm, &damaged).unwrap();
    assert_eq!(add(&runtime), 42);
    assert_eq!(std::fs::read(&cwasm).unwrap(), compiled);

    // Another component's compiled code (valid for this engine) in its
    // place: refused the same way.
    let other = fidius_tests::scratch("wasm_cache_other");
    let other_runtime =
        WasmRuntime::new(WasmSettings::default().cache_dir(Some(other.clone()))).unwrap();
    other_runtime
        .open(fidius_tests::wasm_fixture("fixture_hostile"))
        .unwrap();
    let [other_entry] = entries(&other).try_into().expect("one cache entry");
    std::fs::copy(other_entry.join("component.cwasm"), &cwasm).unwrap();
    assert_eq!(add(&runtime), 42);
    assert_eq!(std::fs::read(&cwasm).unwrap(), compiled);

    // A record naming the old identity with a fresh runtime (another
    // process): still checked, still the same code.
    let fresh = WasmRuntime::new(WasmSettings::default().cache_dir(Some(dir.clone()))).unwrap();
    assert_eq!(add(&fresh), 42);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&other);
}

#[test]
fn a_component_file_is_hashed_again_whenever_it_changes() {
    let dir = fidius_tests::scratch("wasm_cache_sources");
    let component = dir.join("plugin.wasm");
    std::fs::copy(fidius_tests::wasm_fixture("fixture_plugins"), &component).unwrap();
    let cache = dir.join("cache");
    let runtime = WasmRuntime::new(WasmSettings::default().cache_dir(Some(cache.clone()))).unwrap();
    let sources = || -> Vec<PathBuf> {
        std::fs::read_dir(cache.join("wasm/sources"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    let plugins = |runtime: &WasmRuntime| -> Vec<String> {
        let library = runtime.open(&component).unwrap();
        library
            .plugins()
            .iter()
            .map(|p| p.plugin_name.clone())
            .collect()
    };
    let calculator = plugins(&runtime);
    assert!(calculator.contains(&"Basic".to_owned()), "{calculator:?}");
    // Just written: its digest and metadata are not recorded against its
    // identity yet.
    assert!(sources().is_empty());
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(plugins(&runtime), calculator);
    let [record] = sources().try_into().expect("one record");
    let text = std::fs::read_to_string(&record).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    // Recorded: while the file is unchanged, it is not read again (its
    // digest and metadata are known, its compiled code cached).
    assert_eq!(plugins(&runtime), calculator);

    // The same length and the same modification time, one byte of the
    // metadata changed (the plugin's name): the change time still moves,
    // so the file is read and hashed again.
    let bytes = std::fs::read(&component).unwrap();
    let modified = std::fs::metadata(&component).unwrap().modified().unwrap();
    let renamed: Vec<u8> = {
        let mut out = bytes.clone();
        let mut at = 0;
        while let Some(i) = out[at..].windows(5).position(|w| w == b"Basic") {
            out[at + i + 4] = b'k';
            at += i + 5;
        }
        assert!(at > 0, "the component names `Basic`");
        out
    };
    std::fs::write(&component, &renamed).unwrap();
    let file = std::fs::File::options()
        .write(true)
        .open(&component)
        .unwrap();
    file.set_modified(modified).unwrap();
    drop(file);
    assert_eq!(
        std::fs::metadata(&component).unwrap().len(),
        bytes.len() as u64
    );
    let basik = plugins(&runtime);
    assert!(
        basik.contains(&"Basik".to_owned()) && !basik.contains(&"Basic".to_owned()),
        "{basik:?}"
    );

    // Another component in its place: hashed again, never taken for the
    // first one.
    std::fs::copy(fidius_tests::wasm_fixture("fixture_hostile"), &component).unwrap();
    let hostile = plugins(&runtime);
    assert_ne!(hostile, calculator);
    assert!(hostile.contains(&"Guest".to_owned()), "{hostile:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
