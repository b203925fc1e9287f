//! One interface, `Polyglot`, implemented by WASM guests in Rust,
//! JavaScript, C, Python and Go, each built by `cargo fidius package` from
//! its project (`tests/fixtures/guests/`, the Rust one from
//! `tests/fixtures/polyglot`), and loaded through the same typed client in
//! the same sandbox. Every scenario runs on every guest; a scenario a
//! language cannot express is in `UNSUPPORTED` with the reason, which must
//! also be in the docs (`docs/src/languages.md`), and the test checks that
//! the guest really fails it with a typed error rather than skipping it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use evolution_api_v1::ShapesClient as ShapesV1;
use evolution_api_v2::ShapesClient as ShapesV2;
use fidius::CallError;
use fidius::PluginClient as _;
use fidius::package::{Package, PublicKey, TrustPolicy};
use fidius::wasm::{Capabilities, DirAccess, WasmLibrary, WasmRuntime, WasmSettings};
use fixture_api::{Item, PolyConfig, PolyHost, PolyglotClient, Refusal, Verdict};

/// The guest projects `cargo fidius new` writes, and `build`'s errors.
mod projects;

/// A guest of the `Polyglot` interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guest {
    Rust,
    Js,
    C,
    Python,
    Go,
}

/// What the suite runs on every guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Records,
    TypedErrors,
    ServerStreaming,
    Backpressure,
    DropToCancel,
    ErrorItems,
    ClientStreaming,
    Bidirectional,
    Configured,
    HostCallback,
    DeniedCapability,
    GrantedCapability,
    Deadline,
    Package,
    ManyCalls,
}

/// Scenarios a guest's language cannot run yet, and why (the same list is
/// in `docs/src/languages.md`).
const UNSUPPORTED: &[(Guest, Scenario, &str)] = &[
    (
        Guest::Python,
        Scenario::DropToCancel,
        "componentize-py does not tell the object when the host drops it",
    ),
    (
        Guest::Python,
        Scenario::ManyCalls,
        "componentize-py 0.25 keeps every bytes argument until the instance is dropped",
    ),
    (
        Guest::Js,
        Scenario::ManyCalls,
        "componentize-js 0.20 to 0.23 never frees an export's arguments (ComponentizeJS#350)",
    ),
];

impl Guest {
    const ALL: [Guest; 5] = [Guest::Rust, Guest::Js, Guest::C, Guest::Python, Guest::Go];

    /// The plugin's name in the component.
    fn plugin(self) -> &'static str {
        match self {
            Guest::Rust => "RustPolyglot",
            Guest::Js => "JsPolyglot",
            Guest::C => "CPolyglot",
            Guest::Python => "PyPolyglot",
            Guest::Go => "GoPolyglot",
        }
    }

    /// The project `cargo fidius package` builds.
    fn project(self) -> &'static str {
        match self {
            Guest::Rust => "polyglot",
            Guest::Js => "guests/polyglot-js",
            Guest::C => "guests/polyglot-c",
            Guest::Python => "guests/polyglot-py",
            Guest::Go => "guests/polyglot-go",
        }
    }

    fn package_name(self) -> &'static str {
        match self {
            Guest::Rust => "fixture-polyglot",
            Guest::Js => "polyglot-js",
            Guest::C => "polyglot-c",
            Guest::Python => "polyglot-py",
            Guest::Go => "polyglot-go",
        }
    }

    /// Why this guest cannot run `scenario`, if it cannot.
    fn unsupported(self, scenario: Scenario) -> Option<&'static str> {
        UNSUPPORTED
            .iter()
            .find(|(g, s, _)| *g == self && *s == scenario)
            .map(|(.., why)| *why)
    }

    /// The built guest: its component and its signed package.
    fn built(self) -> &'static Built {
        static BUILT: [OnceLock<Built>; 5] = [const { OnceLock::new() }; 5];
        let index = Guest::ALL.iter().position(|g| *g == self).unwrap();
        BUILT[index].get_or_init(|| build(self))
    }

    fn library(self) -> Arc<WasmLibrary> {
        static OPEN: [OnceLock<Arc<WasmLibrary>>; 5] = [const { OnceLock::new() }; 5];
        let index = Guest::ALL.iter().position(|g| *g == self).unwrap();
        Arc::clone(OPEN[index].get_or_init(|| {
            Arc::new(
                fidius_tests::wasm_runtime()
                    .open(&self.built().component)
                    .unwrap_or_else(|e| panic!("{self:?}: {e}")),
            )
        }))
    }

    fn client_with(self, config: &PolyConfig, caps: Capabilities) -> PolyglotClient {
        self.library()
            .instance(self.plugin())
            .config(config)
            .host(lookup())
            .capabilities(caps)
            .build()
            .unwrap_or_else(|e| panic!("{self:?}: {e}"))
    }

    fn client(self) -> PolyglotClient {
        self.client_with(&config(), Capabilities::none())
    }

    /// Runs `scenario`, or for an unsupported one checks that the
    /// guest fails it with a typed error (and that the docs list it).
    fn run(self, scenario: Scenario, test: impl FnOnce(PolyglotClient)) {
        let Some(why) = self.unsupported(scenario) else {
            test(self.client());
            return;
        };
        assert!(
            documented(self, scenario),
            "{self:?} cannot run {scenario:?} ({why}), but `docs/src/languages.md` does not say so"
        );
        let client = self.client();
        if scenario == Scenario::ManyCalls {
            // Each call's arguments stay in the guest: the instance runs
            // out of memory, a typed error, and the next call gets a
            // fresh one.
            let data = vec![7u8; 4096];
            let err = (0..40_000)
                .find_map(|_| client.echo(data.clone()).err())
                .unwrap_or_else(|| panic!("{self:?} no longer leaks: run {scenario:?}"));
            assert!(
                matches!(err, CallError::MemoryLimit { .. }),
                "{self:?}: {err:?}"
            );
            assert_eq!(
                client.echo(data.clone()),
                Ok(data),
                "{self:?} answers afterwards"
            );
            return;
        }
        if scenario == Scenario::DropToCancel {
            // The host still stops pulling at once: nothing more is
            // produced, but the guest is not told.
            let mut items = client.count(1_000_000).unwrap();
            assert_eq!(items.next(), Some(Ok(0)));
            let before = client.produced().unwrap();
            drop(items);
            assert_eq!(client.produced(), Ok(before), "{self:?}");
            return;
        }
        let err = match scenario {
            Scenario::ServerStreaming
            | Scenario::Backpressure
            | Scenario::DropToCancel
            | Scenario::ErrorItems => client.count(3).map(drop).unwrap_err(),
            Scenario::ClientStreaming => client.sum(0..3u64).unwrap_err(),
            Scenario::Bidirectional => client.doubled(0..3u64).map(drop).unwrap_err(),
            other => panic!("no check for unsupported {other:?}"),
        };
        assert!(
            matches!(err, CallError::Panic { .. } | CallError::Trapped { .. }),
            "{self:?}: {err:?}"
        );
        assert_eq!(client.add(1, 2), Ok(3), "{self:?} answers afterwards");
    }
}

fn config() -> PolyConfig {
    PolyConfig {
        greeting: "Hello".into(),
        factor: 3,
    }
}

/// The host's side of `PolyHost`.
struct Lookup;

impl PolyHost for Lookup {
    fn lookup(&self, key: &str) -> Option<String> {
        (key == "answer").then(|| "42".to_owned())
    }
}

fn lookup() -> Arc<dyn PolyHost> {
    Arc::new(Lookup)
}

/// Whether `docs/src/languages.md` lists `scenario` as unsupported by
/// `guest` (a table row `| Go | ServerStreaming | … |`).
fn documented(guest: Guest, scenario: Scenario) -> bool {
    let docs = std::fs::read_to_string(repo().join("docs/src/languages.md")).unwrap();
    let row = format!("| {guest:?} | {scenario:?} |");
    docs.lines().any(|l| l.starts_with(&row))
}

fn repo() -> &'static Path {
    fidius_tests::repo_root()
}

/// A guest's build products.
struct Built {
    component: PathBuf,
    package: PathBuf,
    key: PathBuf,
}

/// The guests' build directory: `$FIDIUS_GUESTS_DIR` (where `cargo xtask
/// test` built them all once), else one under the fixtures' target dir,
/// built here once per test process.
fn guests_dir() -> PathBuf {
    std::env::var_os("FIDIUS_GUESTS_DIR").map_or_else(
        || fidius_tests::fixtures_target().join("guests"),
        PathBuf::from,
    )
}

fn fidius() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-fidius"));
    cmd.arg("fidius");
    cmd
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Packages (and so builds) `guest` with `cargo fidius package`, unless
/// `cargo xtask test` did.
fn build(guest: Guest) -> Built {
    let dir = guests_dir();
    let name = guest.package_name();
    let built = Built {
        component: dir
            .join("fidius")
            .join(name)
            .join("wasm32-wasip2")
            .join(format!("{}.wasm", name.replace('-', "_"))),
        package: dir.join("packages").join(format!("{name}-0.1.0.fidpkg")),
        key: dir.join("guests.pub"),
    };
    if std::env::var_os("FIDIUS_GUESTS_DIR").is_some() {
        assert!(
            built.component.is_file() && built.package.is_file(),
            "`cargo xtask test` did not build {guest:?} into `{}`",
            dir.display()
        );
        return built;
    }
    static KEY: OnceLock<()> = OnceLock::new();
    KEY.get_or_init(|| {
        std::fs::create_dir_all(&dir).unwrap();
        if !dir.join("guests.key").is_file() {
            run(fidius().arg("keygen").arg("--out").arg(dir.join("guests")));
        }
    });
    let mut cmd = fidius();
    cmd.arg("package");
    if guest == Guest::Rust {
        cmd.arg("--manifest-path")
            .arg(repo().join("tests/fixtures/Cargo.toml"))
            .args(["-p", name, "--target", "wasm32-wasip2"])
            .env("FIDIUS_WIT_PATH", fidius_tests::wit_path());
    } else {
        cmd.arg(repo().join("tests/fixtures").join(guest.project()));
    }
    cmd.arg("--target-dir")
        .arg(&dir)
        .arg("--key")
        .arg(dir.join("guests.key"))
        .arg("--out")
        .arg(dir.join("packages"));
    run(&mut cmd);
    if guest == Guest::Rust {
        // Cargo's own artifact, collected under `fidius/`.
        assert!(built.component.is_file(), "{}", built.component.display());
    }
    built
}

/// Runs the test functions in its body once per guest.
macro_rules! for_each_guest {
    ($($body:tt)*) => {
        mod rust { use super::*; const GUEST: Guest = Guest::Rust; $($body)* }
        mod js { use super::*; const GUEST: Guest = Guest::Js; $($body)* }
        mod c { use super::*; const GUEST: Guest = Guest::C; $($body)* }
        mod python { use super::*; const GUEST: Guest = Guest::Python; $($body)* }
        mod go { use super::*; const GUEST: Guest = Guest::Go; $($body)* }
    };
}

for_each_guest! {
    #[test]
    fn scalars_strings_and_bytes() {
        let p = GUEST.client();
        assert_eq!(p.add(2, 3), Ok(5));
        assert_eq!(p.add(u32::MAX, 2), Ok(1));
        assert_eq!(p.greet("polyglot"), Ok("Hello, polyglot!".into()));
        assert_eq!(p.greet("ünïcödé ✓"), Ok("Hello, ünïcödé ✓!".into()));
        let data: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
        assert_eq!(p.echo(data.clone()), Ok(data));
        assert_eq!(p.echo(Vec::new()), Ok(Vec::new()));
        assert_eq!(p.scale(14), Ok(42));
    }

    /// The host writes arguments into the guest while the guest may not
    /// call out (a Go guest whose allocator read the clock then trapped
    /// after a few thousand calls): many calls on one instance, arguments
    /// growing past any before, then small again.
    #[test]
    fn thousands_of_calls_on_one_instance_answer() {
        GUEST.run(Scenario::ManyCalls, |p| {
            let data: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
            for i in 0..20_000 {
                let back = p.echo(data.clone());
                assert!(back.as_deref() == Ok(&data[..]), "{GUEST:?}: call {i}: {back:?}");
            }
            // From 4 KiB to 4 MiB, each call twice the one before.
            for shift in 12..=22 {
                let big: Vec<u8> = (0..1u32 << shift).map(|i| (i % 251) as u8).collect();
                let back = p.echo(big.clone());
                assert!(
                    back.as_ref() == Ok(&big),
                    "{GUEST:?}: a call of {} bytes: {:?}",
                    big.len(),
                    back.map(|b| b.len())
                );
            }
            for i in 0..2_000 {
                assert_eq!(p.greet("again"), Ok("Hello, again!".into()), "{GUEST:?}: call {i}");
            }
        });
    }

    #[test]
    fn records_lists_options_and_variants() {
        GUEST.run(Scenario::Records, |p| {
            let item = |name: &str, weight: Option<u32>| Item {
                name: name.into(),
                tags: vec!["a".into(), "b".into()],
                weight,
            };
            assert_eq!(p.classify(item("x", None)), Ok(Verdict::Empty));
            assert_eq!(p.classify(item("x", Some(3))), Ok(Verdict::Light(3)));
            assert_eq!(p.classify(item("box", Some(30))), Ok(Verdict::Heavy("box:a,b".into())));
            let items = vec![item("one", Some(1)), item("two", None), item("two", Some(2))];
            assert_eq!(p.find(items.clone(), "two"), Ok(Some(item("two", None))));
            assert_eq!(p.find(items, "three"), Ok(None));
            assert_eq!(p.find(Vec::new(), "one"), Ok(None));
        });
    }

    #[test]
    fn typed_errors_come_back_typed() {
        GUEST.run(Scenario::TypedErrors, |p| {
            assert_eq!(p.check(8), Ok(Ok(4)));
            assert_eq!(
                p.check(7),
                Ok(Err(Refusal { code: 7, reason: "odd".into() }))
            );
            assert_eq!(p.add(1, 1), Ok(2));
        });
    }

    #[test]
    fn server_streaming_yields_every_item() {
        GUEST.run(Scenario::ServerStreaming, |p| {
            let items: Vec<u64> = p.count(1000).unwrap().map(Result::unwrap).collect();
            assert_eq!(items, (0..1000).collect::<Vec<_>>());
            assert_eq!(p.count(0).unwrap().count(), 0);
            assert_eq!(p.produced(), Ok(1000));
        });
    }

    #[test]
    fn a_stream_is_not_run_ahead_of_its_consumer() {
        GUEST.run(Scenario::Backpressure, |p| {
            let mut items = p.count(1_000_000).unwrap();
            for expected in 0..10 {
                assert_eq!(items.next(), Some(Ok(expected)));
            }
            let produced = p.produced().unwrap();
            assert!(
                (10..=10 + u64::from(fidius::DEFAULT_BATCH_LIMIT)).contains(&produced),
                "{produced} items produced for 10 taken"
            );
        });
    }

    #[test]
    fn dropping_a_stream_cancels_it_in_the_guest() {
        GUEST.run(Scenario::DropToCancel, |p| {
            let mut items = p.count(1_000_000).unwrap();
            assert_eq!(items.next(), Some(Ok(0)));
            assert_eq!(p.open_streams(), Ok(1));
            drop(items);
            assert_eq!(p.open_streams(), Ok(0));
            let produced = p.produced().unwrap();
            assert!(produced < 1000, "{produced}");
        });
    }

    #[test]
    fn errors_are_stream_items() {
        GUEST.run(Scenario::ErrorItems, |p| {
            let items: Vec<Result<u64, String>> =
                p.fail_after(3).unwrap().map(Result::unwrap).collect();
            assert_eq!(items, vec![Ok(0), Ok(1), Ok(2), Err("failed after 3".into())]);
        });
    }

    #[test]
    fn client_streaming_pulls_the_hosts_stream() {
        GUEST.run(Scenario::ClientStreaming, |p| {
            assert_eq!(p.sum(1..=1000u64), Ok(500_500));
            assert_eq!(p.sum(std::iter::empty()), Ok(0));
        });
    }

    #[test]
    fn bidirectional_streams() {
        GUEST.run(Scenario::Bidirectional, |p| {
            let items: Vec<u64> = p.doubled(0..500u64).unwrap().map(Result::unwrap).collect();
            assert_eq!(items, (0..500).map(|x| x * 2).collect::<Vec<_>>());
        });
    }

    #[test]
    fn differently_configured_instances_coexist() {
        GUEST.run(Scenario::Configured, |a| {
            let b = GUEST.client_with(
                &PolyConfig { greeting: "Hej".into(), factor: 10 },
                Capabilities::none(),
            );
            assert_eq!(a.greet("x"), Ok("Hello, x!".into()));
            assert_eq!(b.greet("x"), Ok("Hej, x!".into()));
            assert_eq!(a.scale(2), Ok(6));
            assert_eq!(b.scale(2), Ok(20));
        });
    }

    #[test]
    fn the_plugin_calls_the_host() {
        GUEST.run(Scenario::HostCallback, |p| {
            assert_eq!(p.ask_host("answer"), Ok("answer=42".into()));
            assert_eq!(p.ask_host("other"), Ok("other unknown".into()));
        });
    }

    #[test]
    fn a_denied_capability_is_a_typed_error() {
        GUEST.run(Scenario::DeniedCapability, |p| {
            // A file that exists, by its absolute path: only the sandbox
            // stands in the way.
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/guests/main.rs");
            assert!(Path::new(path).is_file());
            let err = p.read_file(path).unwrap().unwrap_err();
            assert!(err.starts_with(&format!("{path}: ")), "{GUEST:?}: {err}");
            assert_eq!(p.add(1, 2), Ok(3));
        });
    }

    #[test]
    fn a_granted_directory_is_readable() {
        GUEST.run(Scenario::GrantedCapability, |_| {
            let dir = fidius_tests::scratch(&format!("guests-grant-{GUEST:?}"));
            std::fs::write(dir.join("f.txt"), "granted").unwrap();
            let p = GUEST.client_with(
                &config(),
                Capabilities::none().dir(&dir, "/data", DirAccess::ReadOnly),
            );
            assert_eq!(p.read_file("/data/f.txt"), Ok(Ok("granted".into())));
            assert!(p.read_file("/data/missing").unwrap().is_err());
        });
    }

    #[test]
    fn a_deadline_stops_a_loop_and_the_client_recovers() {
        GUEST.run(Scenario::Deadline, |_| {
            let runtime = deadline_runtime();
            let library = runtime.open(&GUEST.built().component).unwrap();
            let p: PolyglotClient = library
                .instance(GUEST.plugin())
                .config(&config())
                .host(lookup())
                .build()
                .unwrap();
            assert_eq!(
                p.spin(),
                Err(CallError::Timeout { method: "spin", deadline: Duration::from_millis(500) })
            );
            assert_eq!(p.greet("again"), Ok("Hello, again!".into()));
        });
    }

    #[test]
    fn an_older_guest_loads_in_a_newer_host_and_the_reverse() {
        let (v1, v2) = evolution_guests(GUEST);
        let runtime = fidius_tests::wasm_runtime();
        // A v2 host on a guest built against v1: the optional methods are
        // `NotImplemented`, the required ones answer.
        let old: ShapesV2 = runtime.open(&v1.0).unwrap().load(&v1.1).unwrap();
        assert!(old.supports("area") && !old.supports("describe") && !old.supports("corners"));
        assert_eq!(old.describe(1), Err(CallError::NotImplemented { method: "describe" }));
        assert!(old.area(2.0).is_ok());
        // A v1 host on a guest built against v2.
        let new: ShapesV1 = runtime.open(&v2.0).unwrap().load(&v2.1).unwrap();
        assert!(new.name().is_ok() && new.area(2.0).is_ok());
        assert_eq!(new.interface_info().methods.len(), 2);
        // And a v2 host on it sees its optional methods.
        let both: ShapesV2 = runtime.open(&v2.0).unwrap().load(&v2.1).unwrap();
        assert!(both.supports("describe"));
        assert!(both.describe(1).is_ok());
    }

    #[test]
    fn the_signed_package_loads_through_package_open() {
        GUEST.run(Scenario::Package, |_| {
            let built = GUEST.built();
            let dir = fidius_tests::scratch(&format!("guests-package-{GUEST:?}"));
            let policy = TrustPolicy::new()
                .trust(PublicKey::from_file(&built.key).unwrap())
                .cache_dir(dir.join("cache"))
                .wasm(Arc::new(deadline_runtime_owned()), Capabilities::none());
            // `inspect` reads the component as a Rust guest's; `verify`
            // checks the package's signature and digests.
            let out = fidius().arg("inspect").arg(&built.component).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{text}");
            assert!(text.contains(&format!("Polyglot/{}", GUEST.plugin())), "{text}");
            let out = fidius()
                .arg("verify")
                .arg("--key")
                .arg(&built.key)
                .arg(&built.package)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let package = Package::open(&built.package, &policy).unwrap();
            assert_eq!(package.manifest().plugins.len(), 1);
            assert_eq!(package.manifest().plugins[0].name, GUEST.plugin());
            let p: PolyglotClient = package
                .instance(GUEST.plugin())
                .config(&config())
                .host(lookup())
                .build()
                .unwrap();
            assert_eq!(p.greet("package"), Ok("Hello, package!".into()));
        });
    }
}

/// A guest's component and plugin name built against `Shapes` v1 and v2:
/// the Rust fixtures, or skeletons scaffolded and built in its language
/// (built once per test process).
fn evolution_guests(guest: Guest) -> ((PathBuf, String), (PathBuf, String)) {
    if guest == Guest::Rust {
        return (
            (
                fidius_tests::wasm_fixture("evolution_plugin_v1"),
                "Square".into(),
            ),
            (
                fidius_tests::wasm_fixture("evolution_plugin_v2"),
                "Hexagon".into(),
            ),
        );
    }
    let lang = match guest {
        Guest::Js => "js",
        Guest::C => "c",
        Guest::Python => "python-wasm",
        Guest::Go => "go",
        Guest::Rust => unreachable!(),
    };
    let dir = fidius_tests::scratch(&format!("guests-evolution-{lang}"));
    let build = |version: u32| {
        let name = format!("shapes-v{version}-{}", lang.replace('-', ""));
        run(fidius()
            .args(["new", "plugin", &name, "--lang", lang])
            .arg("--interface")
            .arg(repo().join(format!("tests/fixtures/evolution/api-v{version}")))
            .env("CARGO_TARGET_DIR", guests_dir())
            .current_dir(&dir));
        run(fidius()
            .arg("build")
            .arg("--target-dir")
            .arg(guests_dir())
            .current_dir(dir.join(&name)));
        let component = guests_dir()
            .join("fidius")
            .join(&name)
            .join("wasm32-wasip2")
            .join(format!("{}.wasm", name.replace('-', "_")));
        let plugin: String = name
            .split('-')
            .map(|w| w[..1].to_uppercase() + &w[1..])
            .collect();
        (component, plugin)
    };
    (build(1), build(2))
}

/// A runtime whose calls stop after 500 ms (shared by the deadline tests).
fn deadline_runtime() -> &'static WasmRuntime {
    static RUNTIME: OnceLock<WasmRuntime> = OnceLock::new();
    RUNTIME.get_or_init(deadline_runtime_owned)
}

fn deadline_runtime_owned() -> WasmRuntime {
    WasmRuntime::new(
        WasmSettings::default()
            .deadline(Duration::from_millis(500))
            .memory_limit(256 << 20)
            .cache_dir(Some(fidius_tests::fixtures_target().join("wasm-cache"))),
    )
    .unwrap()
}

#[test]
fn every_listed_gap_is_documented() {
    for (guest, scenario, why) in UNSUPPORTED {
        assert!(
            documented(*guest, *scenario),
            "{guest:?} cannot run {scenario:?} ({why}): add it to docs/src/languages.md"
        );
    }
}
