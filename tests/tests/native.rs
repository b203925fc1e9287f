//! End-to-end tests of native plugins: fixture cdylibs built from
//! `tests/fixtures`, loaded through `fidius::PluginLibrary` and called
//! through the generated clients.

use std::path::Path;

use fidius::meta::MetaError;
use fidius::runtime::InterfaceField;
use fidius::{CallError, Interface, LoadError, PluginLibrary};
use fidius_tests::{fixture, scratch};
use fixture_api::{CalculatorClient, GreeterClient};

fn plugins() -> PluginLibrary {
    PluginLibrary::open(fixture("fixture_plugins")).expect("open fixture_plugins")
}

#[test]
fn interface_canonical_text_and_hash_are_pinned() {
    let info = <dyn fixture_api::Calculator as Interface>::INFO;
    assert_eq!(
        info.canonical,
        "Calculator{fn add(i64,i64)->i64;fn echo(Vec<u8>)->Vec<u8>;fn count_bytes(&[u8])->u64;\
         fn shout(&str)->String;fn describe(Shape)->Description;\
         fn divide(i64,i64)->Result<i64,PluginError>;fn check(&Shape,f64)->Result<(),CheckError>;\
         fn is_even(u32,bool)->bool;fn initial(String)->Option<char>;fn bump();fn bumps()->u64;\
         fn panic_with(String)->u32;}"
    );
    assert_eq!(info.hash, 0x90b3_11f6_c432_a8c6, "hash is {:#x}", info.hash);
    assert_eq!(info.hash, fidius::abi::interface_hash(info.canonical));
    let greeter = <dyn fixture_api::Greeter as Interface>::INFO;
    assert_eq!(greeter.canonical, "Greeter{fn greet(&str)->String;}");
    assert_eq!(greeter.version, 3);
}

#[test]
fn lists_plugins_from_static_metadata() {
    let lib = plugins();
    let listed: Vec<(String, String, u32)> = lib
        .plugins()
        .iter()
        .map(|p| {
            (
                p.interface_name.clone(),
                p.plugin_name.clone(),
                p.interface_version,
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("Calculator".into(), "Basic".into(), 1),
            ("Calculator".into(), "Doubler".into(), 1),
            ("Greeter".into(), "Hello".into(), 3),
        ]
    );
    let basic = &lib.plugins()[0];
    assert_eq!(
        basic.interface_hash,
        <dyn fixture_api::Calculator as Interface>::INFO.hash
    );
    assert_eq!(basic.abi_version, fidius::abi::ABI_VERSION);
    assert_eq!(basic.methods.len(), 12);
    assert_eq!(basic.methods[0].name, "add");
    assert_eq!(basic.methods[0].signature, "fn add(i64,i64)->i64");
    assert_eq!(lib.plugins_for::<GreeterClient>().count(), 1);
}

#[test]
fn two_plugins_of_one_interface_and_one_of_another_in_one_library() {
    let lib = plugins();
    let basic: CalculatorClient = lib.load("Basic").unwrap();
    let doubler: CalculatorClient = lib.load("Doubler").unwrap();
    let hello: GreeterClient = lib.load("Hello").unwrap();
    assert_eq!(basic.add(1, 2), Ok(3));
    assert_eq!(doubler.add(1, 2), Ok(6));
    assert_eq!(doubler.echo(vec![7]), Ok(vec![7, 7]));
    assert_eq!(hello.greet("fidius"), Ok("Hello, fidius!".to_owned()));
}

#[test]
fn a_panic_keeps_plugin_state_on_native() {
    let lib = PluginLibrary::open(fixture("fixture_panicky")).unwrap();
    let panicky: GreeterClient = lib.load("Panicky").unwrap();
    assert_eq!(
        panicky.greet("boom"),
        Err(CallError::Panic {
            method: "greet",
            message: "boom #0".into()
        })
    );
    assert_eq!(
        panicky.greet("payload"),
        Err(CallError::Panic {
            method: "greet",
            message: "<non-string panic payload>".into()
        })
    );
    assert_eq!(
        panicky.greet("host"),
        Ok("still alive after 2 calls, host".into())
    );
}

#[test]
fn a_panicking_constructor_is_a_load_error() {
    let lib = PluginLibrary::open(fixture("fixture_panicky")).unwrap();
    let err = lib.load::<GreeterClient>("Fragile").unwrap_err();
    match err {
        LoadError::Create { plugin, source, .. } => {
            assert_eq!(plugin, "Fragile");
            assert_eq!(
                source,
                CallError::Panic {
                    method: "create",
                    message: "Fragile refuses to be constructed".into()
                }
            );
        }
        other => panic!("expected Create, got {other:?}"),
    }
    // The library is still fine for its other plugins.
    assert!(lib.load::<GreeterClient>("Panicky").is_ok());
}

#[test]
fn clients_keep_the_library_loaded_and_clones_share_an_instance() {
    let (a, b) = {
        let lib = plugins();
        let a: CalculatorClient = lib.load("Basic").unwrap();
        let b: CalculatorClient = lib.load("Basic").unwrap();
        (a, b)
    }; // `lib` dropped here
    let a2 = a.clone();
    a.bump().unwrap();
    a2.bump().unwrap();
    assert_eq!(a.bumps(), Ok(2), "clones share one instance");
    assert_eq!(b.bumps(), Ok(0), "each load makes a new instance");
    drop(a);
    assert_eq!(a2.add(2, 2), Ok(4));
}

fn expect_err(path: &Path) -> LoadError {
    match PluginLibrary::open(path) {
        Ok(lib) => panic!(
            "expected an error opening {}, got {:?}",
            path.display(),
            lib.plugins()
        ),
        Err(e) => e,
    }
}

#[test]
fn files_that_are_not_plugin_libraries_are_refused_before_loading() {
    let dir = scratch("not_plugins");
    let original = std::fs::read(fixture("fixture_plugins")).unwrap();

    let missing = dir.join("missing.so");
    assert!(matches!(expect_err(&missing), LoadError::Io { path, .. } if path == missing));

    assert!(matches!(expect_err(&dir), LoadError::NotAFile { .. }));

    let random = dir.join("random.so");
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&random, bytes).unwrap();
    assert!(matches!(
        expect_err(&random),
        LoadError::NotASharedLibrary { .. }
    ));

    let empty = dir.join("empty.so");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        expect_err(&empty),
        LoadError::NotASharedLibrary { .. }
    ));

    let truncated = dir.join("truncated.so");
    std::fs::write(&truncated, &original[..original.len() / 3]).unwrap();
    let err = expect_err(&truncated);
    assert!(
        matches!(err, LoadError::NotASharedLibrary { .. }),
        "{err:?}"
    );

    let not_fidius = fixture("fixture_no_meta");
    let err = expect_err(&not_fidius);
    assert!(
        matches!(&err, LoadError::NotAFidiusPlugin { path } if *path == not_fidius),
        "{err:?}"
    );
    assert!(err.to_string().contains("fidius_plugin_registry"), "{err}");
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn a_library_for_another_architecture_is_refused() {
    let dir = scratch("wrong_arch");
    let mut bytes = std::fs::read(fixture("fixture_plugins")).unwrap();
    // e_machine (offset 18, little-endian) := EM_AARCH64 (183).
    bytes[18..20].copy_from_slice(&183u16.to_le_bytes());
    let path = dir.join("aarch64.so");
    std::fs::write(&path, bytes).unwrap();
    match expect_err(&path) {
        LoadError::WrongTarget {
            expected, found, ..
        } => {
            assert_eq!(expected, "elf x86_64 (64-bit)");
            assert_eq!(found, "elf aarch64 (64-bit)");
        }
        other => panic!("expected WrongTarget, got {other:?}"),
    }
    // Tools can still read what it contains, without loading it.
    let contents = fidius::runtime::inspect_library(&path).unwrap();
    assert_eq!(contents.target, "elf aarch64 (64-bit)");
    assert_eq!(contents.plugins.len(), 3);
    assert_eq!(plugins().target(), "elf x86_64 (64-bit)");
}

/// Copies `lib` to `dir` with the bytes of every metadata record edited by
/// `edit` (given the record's bytes).
fn patched(lib: &Path, dir: &Path, name: &str, edit: impl Fn(&mut [u8])) -> std::path::PathBuf {
    let mut bytes = std::fs::read(lib).unwrap();
    let magic = fidius::meta::MAGIC;
    let mut found = 0;
    let mut at = 0;
    while let Some(pos) = bytes[at..].windows(magic.len()).position(|w| w == magic) {
        let start = at + pos;
        edit(&mut bytes[start..]);
        found += 1;
        at = start + magic.len();
    }
    assert!(found > 0, "no metadata record found in {}", lib.display());
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn corrupt_metadata_is_refused() {
    let dir = scratch("corrupt_meta");
    let lib = fixture("fixture_plugins");

    let bad_layout = patched(&lib, &dir, "layout.so", |r| r[8] = 0x7f);
    let err = expect_err(&bad_layout);
    assert!(
        matches!(&err, LoadError::MalformedMetadata { symbol, source, .. }
            if symbol.starts_with("fidius_meta__")
                && *source == MetaError::UnsupportedLayout { expected: 1, found: 0x7f }),
        "{err:?}"
    );

    // The declared length no longer matches the fields.
    let bad_len = patched(&lib, &dir, "len.so", |r| r[12] = r[12].wrapping_add(1));
    let err = expect_err(&bad_len);
    assert!(
        matches!(&err, LoadError::MalformedMetadata {
            source: MetaError::LengthMismatch { declared, actual }, ..
        } if *declared == *actual + 1),
        "{err:?}"
    );

    // ABI version 99 in every record.
    let abi = patched(&lib, &dir, "abi.so", |r| {
        r[16..20].copy_from_slice(&99u32.to_le_bytes())
    });
    match expect_err(&abi) {
        LoadError::AbiVersionMismatch {
            what,
            expected,
            found,
            ..
        } => {
            assert_eq!(
                (what, expected, found),
                ("ABI", fidius::abi::ABI_VERSION, 99)
            );
        }
        other => panic!("expected AbiVersionMismatch, got {other:?}"),
    }
}

#[test]
fn interface_mismatches_are_refused_before_loading() {
    // Same required methods, so the same hash: a newer version is
    // compatible (see tests/evolution.rs for the full rules).
    let v2 = PluginLibrary::open(fixture("fixture_plugin_v2")).unwrap();
    assert_eq!(
        v2.plugins()[0].interface_hash,
        <dyn fixture_api::Greeter as Interface>::INFO.hash
    );
    let hello: GreeterClient = v2.load("Hello").unwrap();
    assert_eq!(hello.greet("v3 host").unwrap(), "Hi v3 host from v4");

    // Version 4 changed a required method: refused as a version mismatch.
    let breaking = PluginLibrary::open(fixture("fixture_plugin_breaking")).unwrap();
    match breaking.load::<GreeterClient>("Hello").unwrap_err() {
        LoadError::InterfaceMismatch {
            field,
            expected,
            found,
            plugin,
            ..
        } => {
            assert_eq!((field, plugin.as_str()), (InterfaceField::Version, "Hello"));
            assert!(expected.starts_with("3 (hash 0x"), "{expected}");
            assert!(found.starts_with("4 (hash 0x"), "{found}");
            assert!(found.ends_with("its required methods differ)"), "{found}");
        }
        other => panic!("expected a version mismatch, got {other:?}"),
    }

    let changed = PluginLibrary::open(fixture("fixture_plugin_changed")).unwrap();
    match changed.load::<GreeterClient>("Hello").unwrap_err() {
        LoadError::InterfaceMismatch {
            field,
            expected,
            found,
            ..
        } => {
            assert_eq!(field, InterfaceField::Hash);
            assert_ne!(expected, found);
        }
        other => panic!("expected a hash mismatch, got {other:?}"),
    }

    let lib = plugins();
    match lib.load::<CalculatorClient>("Hello").unwrap_err() {
        LoadError::InterfaceMismatch {
            field,
            expected,
            found,
            ..
        } => {
            assert_eq!(
                (field, expected.as_str(), found.as_str()),
                (InterfaceField::Name, "Calculator", "Greeter")
            );
        }
        other => panic!("expected a name mismatch, got {other:?}"),
    }
    match lib.load::<CalculatorClient>("Tripler").unwrap_err() {
        LoadError::NoSuchPlugin {
            plugin, available, ..
        } => {
            assert_eq!(plugin, "Tripler");
            assert_eq!(
                available,
                ["Calculator/Basic", "Calculator/Doubler", "Greeter/Hello"]
            );
        }
        other => panic!("expected NoSuchPlugin, got {other:?}"),
    }
}

#[test]
fn a_registry_that_disagrees_with_the_metadata_is_refused() {
    // Patch the *file's* metadata to claim version 3 while the compiled
    // descriptor still says 4: the static check passes, the cross-check
    // after loading must catch it.
    let dir = scratch("registry_mismatch");
    let lying = patched(&fixture("fixture_plugin_v2"), &dir, "lying.so", |r| {
        r[24..28].copy_from_slice(&3u32.to_le_bytes());
    });
    let lib = PluginLibrary::open(&lying).unwrap();
    assert_eq!(lib.plugins()[0].interface_version, 3);
    match lib.load::<GreeterClient>("Hello").unwrap_err() {
        LoadError::RegistryMismatch { plugin, detail, .. } => {
            assert_eq!(plugin, "Hello");
            assert_eq!(detail, "interface version: loaded 4, metadata 3");
        }
        other => panic!("expected RegistryMismatch, got {other:?}"),
    }
}

#[test]
fn an_unknown_buffer_strategy_is_refused() {
    let dir = scratch("buffer_strategy");
    let path = patched(&fixture("fixture_plugins"), &dir, "buffer.so", |r| {
        r[10] = 9
    });
    let lib = PluginLibrary::open(&path).unwrap();
    match lib.load::<CalculatorClient>("Basic").unwrap_err() {
        LoadError::InterfaceMismatch {
            field,
            expected,
            found,
            ..
        } => {
            assert_eq!(
                (field, expected.as_str(), found.as_str()),
                (InterfaceField::Buffer, "PluginAllocated", "unknown (9)")
            );
        }
        other => panic!("expected a buffer-strategy mismatch, got {other:?}"),
    }
}
