//! Shared helpers for the end-to-end tests and benchmarks: locating (and,
//! if needed, building once) the fixture plugin libraries in
//! `tests/fixtures/`.
#![forbid(unsafe_code)]

pub mod hostile;
pub mod soak;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Whether `FIDIUS_BLESS` asks a test to rewrite its expected files
/// (snapshots, tables) from what it saw. Refused in CI, where it would make
/// every comparison pass.
pub fn bless() -> bool {
    let bless = std::env::var_os("FIDIUS_BLESS").is_some();
    assert!(
        !(bless && std::env::var_os("CI").is_some()),
        "FIDIUS_BLESS is set in CI: the expected files would be rewritten, not checked"
    );
    bless
}

/// Root of this repository.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
}

/// Directory the fixture workspace is built into: `$FIDIUS_FIXTURES_DIR`
/// when `cargo xtask test` already built it, otherwise `<target>/fixtures`.
pub fn fixtures_target() -> PathBuf {
    if let Some(dir) = std::env::var_os("FIDIUS_FIXTURES_DIR") {
        return PathBuf::from(dir);
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("fixtures")
}

/// Builds the fixture workspace (`release` or the debug profile) into
/// `target_dir`. Cargo makes this a no-op when nothing changed.
pub fn build_fixtures(target_dir: &Path, release: bool) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(repo_root().join("tests/fixtures/Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    if release {
        cmd.arg("--release");
    }
    let status = cmd
        .status()
        .expect("failed to run cargo to build the fixtures");
    assert!(status.success(), "building tests/fixtures failed: {status}");
}

fn library_path(profile: &str, crate_name: &str) -> PathBuf {
    use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
    fixtures_target()
        .join(profile)
        .join(format!("{DLL_PREFIX}{crate_name}{DLL_SUFFIX}"))
}

/// The fixture crates that also build as WebAssembly components.
pub const WASM_FIXTURES: &[&str] = &[
    "fixture-plugins",
    "fixture-features",
    "fixture-hostile",
    "fixture-scripted",
    "fixture-polyglot",
];

/// The fixtures built as components against another interface crate's WIT
/// than `api`'s: each `(crate, its interface's wit/ directory)`, built on
/// its own (the glue takes the first matching file on `FIDIUS_WIT_PATH`,
/// and both evolution interfaces are `shapes.wit`).
pub const WASM_EVOLUTION_FIXTURES: &[(&str, &str)] = &[
    ("evolution-plugin-v1", "tests/fixtures/evolution/api-v1/wit"),
    ("evolution-plugin-v2", "tests/fixtures/evolution/api-v2/wit"),
];

/// Builds the WASM fixtures (`wasm32-wasip2`, debug or `release`) into
/// `target_dir`, with the interfaces' committed WIT.
pub fn build_wasm_fixtures(target_dir: &Path, release: bool) {
    let build = |packages: &[&str], wit: std::ffi::OsString| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.arg("build")
            .arg("--quiet")
            .arg("--target")
            .arg("wasm32-wasip2")
            .arg("--manifest-path")
            .arg(repo_root().join("tests/fixtures/Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir)
            .env("FIDIUS_WIT_PATH", wit);
        if release {
            cmd.arg("--release");
        }
        for name in packages {
            cmd.arg("-p").arg(name);
        }
        let status = cmd
            .status()
            .expect("failed to run cargo to build the WASM fixtures");
        assert!(
            status.success(),
            "building the WASM fixtures {packages:?} failed: {status}"
        );
    };
    build(WASM_FIXTURES, wit_path());
    for (name, wit) in WASM_EVOLUTION_FIXTURES {
        build(&[name], repo_root().join(wit).into_os_string());
    }
}

/// `FIDIUS_WIT_PATH` for the fixtures: the committed WIT of their
/// interface crates.
pub fn wit_path() -> std::ffi::OsString {
    std::env::join_paths([repo_root().join("tests/fixtures/api/wit")]).expect("WIT paths join")
}

/// Path of the WASM component of fixture `crate_name` (e.g.
/// `fixture_plugins`), built once per process unless `cargo xtask test`
/// already did.
pub fn wasm_fixture(crate_name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        if std::env::var_os("FIDIUS_FIXTURES_DIR").is_none() {
            build_wasm_fixtures(&fixtures_target(), false);
        }
    });
    fixtures_target()
        .join("wasm32-wasip2/debug")
        .join(format!("{crate_name}.wasm"))
}

/// Path of the release WASM component of fixture `crate_name`, for
/// benchmarks.
pub fn release_wasm_fixture(crate_name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| build_wasm_fixtures(&fixtures_target(), true));
    fixtures_target()
        .join("wasm32-wasip2/release")
        .join(format!("{crate_name}.wasm"))
}

/// One wasmtime engine per test process, caching compiled components under
/// the fixtures' target dir.
pub fn wasm_runtime() -> &'static fidius::wasm::WasmRuntime {
    static RUNTIME: OnceLock<fidius::wasm::WasmRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let settings = fidius::wasm::WasmSettings::default()
            .deadline(std::time::Duration::from_secs(5))
            .memory_limit(64 << 20)
            .cache_dir(Some(fixtures_target().join("wasm-cache")));
        fidius::wasm::WasmRuntime::new(settings).expect("wasmtime engine")
    })
}

/// An engine in fresh-instance-per-call mode (pooled instances of 16 MiB),
/// with the component of fixture `crate_name` opened on it (the engine must
/// outlive the library, so both are returned).
pub fn per_call_wasm_library(
    crate_name: &str,
) -> (fidius::wasm::WasmRuntime, fidius::wasm::WasmLibrary) {
    let settings = fidius::wasm::WasmSettings::default()
        .fresh_instance_per_call()
        .memory_limit(16 << 20)
        .cache_dir(Some(fixtures_target().join("wasm-cache")));
    let runtime = fidius::wasm::WasmRuntime::new(settings).expect("wasmtime engine");
    let library = runtime
        .open(wasm_fixture(crate_name))
        .unwrap_or_else(|e| panic!("open the {crate_name} component: {e}"));
    (runtime, library)
}

/// A second engine that calls the components' typed WIT functions only,
/// as for guests in other languages.
pub fn typed_wasm_runtime() -> &'static fidius::wasm::WasmRuntime {
    static RUNTIME: OnceLock<fidius::wasm::WasmRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let settings = fidius::wasm::WasmSettings::default()
            .deadline(std::time::Duration::from_secs(5))
            .memory_limit(64 << 20)
            .typed_exports_only()
            .cache_dir(Some(fixtures_target().join("wasm-cache")));
        fidius::wasm::WasmRuntime::new(settings).expect("wasmtime engine")
    })
}

/// The compiled component of fixture `crate_name`, opened once per process
/// and engine (`typed`: [`typed_wasm_runtime`]).
fn open_wasm(crate_name: &str, typed: bool) -> std::sync::Arc<fidius::wasm::WasmLibrary> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    type Open = Mutex<HashMap<(String, bool), Arc<fidius::wasm::WasmLibrary>>>;
    static OPEN: OnceLock<Open> = OnceLock::new();
    let mut open = OPEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    open.entry((crate_name.to_owned(), typed))
        .or_insert_with(|| {
            let runtime = if typed {
                typed_wasm_runtime()
            } else {
                wasm_runtime()
            };
            Arc::new(
                runtime
                    .open(wasm_fixture(crate_name))
                    .unwrap_or_else(|e| panic!("open the {crate_name} component: {e}")),
            )
        })
        .clone()
}

/// The compiled component of fixture `crate_name`, opened once per process.
pub fn wasm_library(crate_name: &str) -> std::sync::Arc<fidius::wasm::WasmLibrary> {
    open_wasm(crate_name, false)
}

/// Where a semantics test runs its plugins: the same fixture crate, built
/// as a native library or as a WASM component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `PluginLibrary` over the cdylib.
    Native,
    /// `WasmLibrary` over the component, in the deny-all sandbox.
    Wasm,
    /// The same, calling the component's typed WIT functions (what guests
    /// in other languages implement) instead of Rust guests' `fast.call`.
    WasmTyped,
    /// `PythonLibrary` over the fixture's Python twin in
    /// `tests/fixtures/python` (the same plugins, written in Python).
    Python,
}

/// Whether `err` is how the backend reports a plugin failing with
/// `message` in `method`: a panic (native, WASM) or a raised exception
/// (Python, whose plugins can unwind and stay usable).
pub fn plugin_failed(err: &fidius::CallError, method: &str, message: &str) -> bool {
    match err {
        fidius::CallError::Panic {
            method: m,
            message: text,
        } => *m == method && text == message,
        fidius::CallError::Exception {
            method: m,
            exception,
        } => *m == method && exception.message == message,
        _ => false,
    }
}

/// The Python module holding the plugins of fixture crate `crate_name`.
pub fn python_fixture(crate_name: &str) -> PathBuf {
    let module = match crate_name {
        "fixture_plugins" | "fixture_hostile" => "plugins/calculator.py",
        "fixture_features" => "features/features.py",
        "fixture_scripted" => "scripted/scripted.py",
        other => panic!("no Python twin of fixture `{other}`"),
    };
    repo_root().join("tests/fixtures/python").join(module)
}

fn open_python(crate_name: &str) -> Result<fidius::python::PythonLibrary, fidius::LoadError> {
    fidius::python::PythonLibrary::open(python_fixture(crate_name))
}

impl Backend {
    /// Plugin `plugin` of fixture `crate_name` (e.g. `fixture_plugins`).
    pub fn load<C: fidius::PluginClient>(
        self,
        crate_name: &str,
        plugin: &str,
    ) -> Result<C, fidius::LoadError> {
        match self {
            Backend::Python => open_python(crate_name)?.load(plugin),
            Backend::Native => fidius::PluginLibrary::open(fixture(crate_name))?.load(plugin),
            Backend::Wasm => open_wasm(crate_name, false).load(plugin),
            Backend::WasmTyped => open_wasm(crate_name, true).load(plugin),
        }
    }

    /// Plugin `plugin` given the host's implementation of its interface's
    /// host interface.
    pub fn load_with_host<C: fidius::PluginClient>(
        self,
        crate_name: &str,
        plugin: &str,
        host: std::sync::Arc<<C::Interface as fidius::Interface>::Host>,
    ) -> Result<C, fidius::LoadError> {
        match self {
            Backend::Python => open_python(crate_name)?.instance(plugin).host(host).build(),
            Backend::Native => fidius::PluginLibrary::open(fixture(crate_name))?
                .instance(plugin)
                .host(host)
                .build(),
            Backend::Wasm | Backend::WasmTyped => open_wasm(crate_name, self == Backend::WasmTyped)
                .instance(plugin)
                .host(host)
                .build(),
        }
    }

    /// A configured instance of plugin `plugin`.
    pub fn configure<
        C: fidius::PluginClient,
        Cfg: serde::Serialize + serde::de::DeserializeOwned,
    >(
        self,
        crate_name: &str,
        plugin: &str,
        config: &Cfg,
    ) -> Result<C, fidius::LoadError> {
        match self {
            Backend::Python => open_python(crate_name)?
                .instance(plugin)
                .config(config)
                .build(),
            Backend::Native => {
                fidius::PluginLibrary::open(fixture(crate_name))?.configure(plugin, config)
            }
            Backend::Wasm | Backend::WasmTyped => open_wasm(crate_name, self == Backend::WasmTyped)
                .instance(plugin)
                .config(config)
                .build(),
        }
    }
}

/// Runs the test functions in its body once per backend: `mod native`,
/// `mod wasm`, `mod wasm_typed` and `mod python`, each with a `BACKEND`
/// constant.
#[macro_export]
macro_rules! for_each_backend {
    ($($body:tt)*) => {
        mod native {
            #[allow(unused_imports)]
            use super::*;
            const BACKEND: $crate::Backend = $crate::Backend::Native;
            $($body)*
        }
        mod wasm {
            #[allow(unused_imports)]
            use super::*;
            const BACKEND: $crate::Backend = $crate::Backend::Wasm;
            $($body)*
        }
        mod wasm_typed {
            #[allow(unused_imports)]
            use super::*;
            const BACKEND: $crate::Backend = $crate::Backend::WasmTyped;
            $($body)*
        }
        mod python {
            #[allow(unused_imports)]
            use super::*;
            const BACKEND: $crate::Backend = $crate::Backend::Python;
            $($body)*
        }
    };
}

/// Path of debug fixture library `crate_name` (e.g. `fixture_plugins`),
/// built once per process unless `cargo xtask test` already did.
pub fn fixture(crate_name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        if std::env::var_os("FIDIUS_FIXTURES_DIR").is_none() {
            build_fixtures(&fixtures_target(), false);
        }
    });
    library_path("debug", crate_name)
}

/// Path of the release build of fixture library `crate_name`, for
/// benchmarks (compared against release-built baselines).
pub fn release_fixture(crate_name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| build_fixtures(&fixtures_target(), true));
    library_path("release", crate_name)
}

/// A scratch directory under the target dir, unique per test.
pub fn scratch(test: &str) -> PathBuf {
    let dir = fixtures_target().join("scratch").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Wraps an uncompressed tar stream in the `.fidpkg` gzip framing (see
/// `docs/src/fidpkg.md`): the fixed header with an `FD` extra field holding
/// the CRC-32 of the deflate data and trailer. For tests that build
/// packages byte by byte.
pub fn fidpkg_frame(tar: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(tar).expect("deflate into memory");
    let mut body = encoder.finish().expect("deflate into memory");
    let mut crc = flate2::Crc::new();
    crc.update(tar);
    body.extend_from_slice(&crc.sum().to_le_bytes());
    body.extend_from_slice(&(tar.len() as u32).to_le_bytes());
    fidpkg_wrap(&body)
}

/// The `.fidpkg` header (with the check value of `body`) before `body`:
/// deflate data, then the gzip trailer.
fn fidpkg_wrap(body: &[u8]) -> Vec<u8> {
    let mut framed = b"\x1f\x8b\x08\x04\0\0\0\0\0\xff\x08\0FD\x04\0".to_vec();
    framed.extend_from_slice(&fidpkg_check(body));
    framed.extend_from_slice(body);
    framed
}

/// The `FD` check value of the bytes after a package's header.
pub fn fidpkg_check(rest: &[u8]) -> [u8; 4] {
    let mut crc = flate2::Crc::new();
    crc.update(rest);
    crc.sum().to_le_bytes()
}

/// The uncompressed tar stream of a `.fidpkg`.
pub fn fidpkg_tar(package: &[u8]) -> Vec<u8> {
    use std::io::Read as _;
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(package)
        .read_to_end(&mut tar)
        .expect("a valid package");
    tar
}
