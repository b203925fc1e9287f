//! Python plugins (`fidius::python`): a Python class implements a Rust
//! interface and is called through the same generated clients.

use std::path::PathBuf;

use fidius::python::PythonLibrary;
use fidius::runtime::InterfaceField;
use fidius::{CallError, LoadError, PluginClient, PluginError};
use fixture_api::{
    CalculatorClient, CheckError, Description, GreeterClient, HostileClient, HostileConfig, Shape,
};

fn module(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/python")
        .join(relative)
}

fn plugins() -> PythonLibrary {
    PythonLibrary::open(module("plugins/calculator.py")).unwrap()
}

#[test]
fn the_host_runs_the_intended_interpreter() {
    // The rpath the build script sets: pyenv's CPython, not whichever
    // libpython the system's loader would find.
    let lib = plugins();
    let hello: GreeterClient = lib.load("Hello").unwrap();
    assert_eq!(hello.greet("fidius"), Ok("Hello, fidius!".to_owned()));
    let version = pyo3_version();
    assert!(version.starts_with("3.11.7"), "{version}");
}

/// `sys.version` of the embedded interpreter, read by a Python plugin.
fn pyo3_version() -> String {
    greet_with("python_version", "sys.version")
}

/// What a Greeter plugin whose `greet` returns the Python expression
/// `expression` (with `sys` imported) answers.
fn greet_with(test: &str, expression: &str) -> String {
    let dir = fidius_tests::scratch(test);
    let path = dir.join("probe.py");
    std::fs::write(
        &path,
        format!(
            "import sys\nimport fidius\n\n\
             @fidius.plugin(interface=\"Greeter\", version=3, hash=0xE5C86588C6AA44B9)\n\
             class Probe:\n    def greet(self, name):\n        return {expression}\n"
        ),
    )
    .unwrap();
    let lib = PythonLibrary::open(&path).unwrap();
    let client: GreeterClient = lib.load("Probe").unwrap();
    client.greet("").unwrap()
}

#[test]
fn every_value_kind_crosses_the_boundary() {
    let calc: CalculatorClient = plugins().load("Basic").unwrap();
    assert_eq!(calc.plugin_name(), "Basic");
    assert_eq!(calc.add(40, 2), Ok(42));
    assert_eq!(calc.add(i64::MAX, 1), Ok(i64::MIN));
    assert_eq!(calc.add(i64::MIN, -1), Ok(i64::MAX));
    assert_eq!(calc.echo(vec![1, 2, 3]), Ok(vec![1, 2, 3]));
    assert_eq!(calc.echo(Vec::new()), Ok(Vec::new()));
    assert_eq!(calc.count_bytes(&[0; 1000]), Ok(1000));
    assert_eq!(calc.shout("héllo"), Ok("HÉLLO".to_owned()));
    assert_eq!(
        calc.describe(Shape::Rect {
            width: 2.0,
            height: 3.0
        }),
        Ok(Description {
            name: "rect".into(),
            area: 6.0,
            tags: vec!["basic".into(), "rect".into()]
        })
    );
    assert_eq!(calc.is_even(4, false), Ok(true));
    assert_eq!(calc.is_even(4, true), Ok(false));
    assert_eq!(calc.initial("ünicode".into()), Ok(Some('ü')));
    assert_eq!(calc.initial(String::new()), Ok(None));
    calc.bump().unwrap();
    calc.bump().unwrap();
    assert_eq!(calc.bumps(), Ok(2));
}

#[test]
fn plugin_errors_come_back_typed() {
    let calc: CalculatorClient = plugins().load("Basic").unwrap();
    assert_eq!(calc.divide(7, 2), Ok(Ok(3)));
    assert_eq!(calc.divide(-7, 2), Ok(Ok(-3)));
    assert_eq!(
        calc.divide(7, 0).unwrap().unwrap_err(),
        PluginError::new("division_by_zero", "cannot divide by zero").with_detail("dividend", "7")
    );
    let square = Shape::Rect {
        width: 2.0,
        height: 2.0,
    };
    assert_eq!(calc.check(&square, 1.0), Ok(Ok(())));
    assert!(matches!(
        calc.check(&Shape::Circle { radius: 0.1 }, 1.0),
        Ok(Err(CheckError::TooSmall { min, .. })) if min == 1.0
    ));
    let flat = Shape::Rect {
        width: 0.0,
        height: 1.0,
    };
    assert_eq!(calc.check(&flat, 1.0), Ok(Err(CheckError::Degenerate)));
}

#[test]
fn an_exception_is_a_typed_error_with_its_traceback_and_the_plugin_stays_usable() {
    let calc: CalculatorClient = plugins().load("Basic").unwrap();
    for round in 0..3 {
        match calc.panic_with(format!("kaboom {round}")) {
            Err(CallError::Exception { method, exception }) => {
                assert_eq!(
                    (method, exception.kind.as_str()),
                    ("panic_with", "RuntimeError")
                );
                assert_eq!(exception.message, format!("kaboom {round}"));
                let traceback = &exception.traceback;
                assert!(
                    traceback.contains("calculator.py") && traceback.contains("panic_with"),
                    "{traceback}"
                );
            }
            other => panic!("expected an exception, got {other:?}"),
        }
        assert_eq!(calc.add(1, 1), Ok(2));
    }
}

#[test]
fn a_value_of_the_wrong_shape_names_the_method_and_field() {
    let wrong: CalculatorClient = plugins().load("Wrong").unwrap();
    let err = wrong.add(1, 2).unwrap_err();
    assert!(
        matches!(&err, CallError::ResultEncode { method: "add", message }
            if message.contains("expected an int (i64), found str")),
        "{err:?}"
    );
    let err = wrong.describe(Shape::Circle { radius: 1.0 }).unwrap_err();
    assert!(
        matches!(&err, CallError::ResultEncode { method: "describe", message }
            if message.contains("field `area` of `description`: expected a float, found str")),
        "{err:?}"
    );
    let err = wrong.is_even(1, false).unwrap_err();
    assert!(
        matches!(&err, CallError::ResultEncode { method: "is_even", message }
            if message.contains("expected a bool, found int")),
        "{err:?}"
    );
    // Out of range for the Rust type (`u64`).
    let err = wrong.count_bytes(b"x").unwrap_err();
    assert!(
        matches!(&err, CallError::ResultEncode { method: "count_bytes", message }
            if message.contains("is out of range for u64")),
        "{err:?}"
    );
    let calc: CalculatorClient = plugins().load("Basic").unwrap();
    assert_eq!(calc.add(1, 1), Ok(2));
}

#[test]
fn many_threads_call_one_client() {
    let calc = std::sync::Arc::new(plugins().load::<CalculatorClient>("Basic").unwrap());
    std::thread::scope(|s| {
        for t in 0..8_i64 {
            let calc = &calc;
            s.spawn(move || {
                for i in 0..300_i64 {
                    assert_eq!(calc.add(t, i), Ok(t + i));
                    calc.bump().unwrap();
                }
            });
        }
    });
    assert_eq!(calc.bumps(), Ok(8 * 300));
}

#[test]
fn several_plugins_and_interfaces_in_one_module() {
    let lib = plugins();
    let names: Vec<String> = lib
        .plugins()
        .iter()
        .map(|p| format!("{}/{}", p.interface_name, p.plugin_name))
        .collect();
    assert_eq!(
        names,
        [
            "Calculator/Basic",
            "Calculator/Doubler",
            "Greeter/Hello",
            "Hostile/Guest",
            "Calculator/Wrong"
        ]
    );
    let basic: CalculatorClient = lib.load("Basic").unwrap();
    let doubler: CalculatorClient = lib.load("Doubler").unwrap();
    assert_eq!((basic.add(2, 3), doubler.add(2, 3)), (Ok(5), Ok(10)));
    assert_eq!(doubler.echo(vec![1, 2]), Ok(vec![1, 2, 1, 2]));
    match lib.load::<CalculatorClient>("Nope") {
        Err(LoadError::NoSuchPlugin { available, .. }) => {
            assert!(available.contains(&"Calculator/Doubler".to_owned()))
        }
        other => panic!("expected NoSuchPlugin, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn configured_instances_keep_their_own_configuration_and_state() {
    let lib = plugins();
    let make = |label: &str| {
        lib.instance::<HostileClient>("Guest")
            .config(&HostileConfig {
                label: label.into(),
            })
            .build()
    };
    let a = make("alpha").unwrap();
    let b = make("beta").unwrap();
    assert_eq!(a.label(), Ok("alpha".to_owned()));
    assert_eq!(a.label(), Ok("alpha".to_owned()));
    assert_eq!(b.label(), Ok("beta".to_owned()));
    assert_eq!((a.calls(), b.calls()), (Ok(2), Ok(1)));
    match make("") {
        Err(LoadError::Create {
            plugin,
            source: CallError::Rejected { error },
            ..
        }) => {
            assert_eq!(plugin, "Guest");
            assert_eq!(error.message, "the label must not be empty");
        }
        other => panic!("expected Rejected, got {:?}", other.map(|_| ())),
    }
    match make("panic") {
        Err(LoadError::Create {
            source: CallError::Exception { method, exception },
            ..
        }) => assert_eq!(
            (method, exception.message.as_str()),
            ("create", "configure was told to panic")
        ),
        other => panic!("expected an exception, got {:?}", other.map(|_| ())),
    }
    assert!(matches!(
        lib.load::<HostileClient>("Guest"),
        Err(LoadError::NeedsConfig { plugin, config_type, .. })
            if plugin == "Guest" && config_type == "HostileConfig"
    ));
    assert!(matches!(
        lib.instance::<GreeterClient>("Hello").config(&1u8).build(),
        Err(LoadError::NotConfigurable { plugin, .. }) if plugin == "Hello"
    ));
}

#[test]
fn modules_of_two_plugins_do_not_collide_and_nothing_is_left_on_sys_path() {
    let lib = plugins();
    let other = PythonLibrary::open(module("other/greeter.py")).unwrap();
    let greeter: GreeterClient = other.load("Other").unwrap();
    // `other/util.py`, not `plugins/util.py`.
    assert_eq!(greeter.greet("you"), Ok("other greets you".to_owned()));
    let calc: CalculatorClient = lib.load("Basic").unwrap();
    assert_eq!(calc.add(1, 2), Ok(3));
    // No bytecode written next to the plugins' sources.
    for dir in ["plugins", "other"] {
        assert!(
            !module(dir).join("__pycache__").exists(),
            "__pycache__ written into {dir}"
        );
    }
    // Nothing of theirs on the interpreter's search path.
    let path = sys_path();
    assert!(
        !path.iter().any(|p| p.contains("fixtures/python")),
        "{path:?}"
    );
}

fn sys_path() -> Vec<String> {
    greet_with("python_sys_path", "\"\\n\".join(sys.path)")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bad_modules_and_classes_are_typed_load_errors() {
    match PythonLibrary::open(module("other/broken.py")) {
        Err(LoadError::Python { path, detail }) => {
            assert!(path.ends_with("broken.py"));
            assert!(
                detail.contains("ValueError: this module is broken on purpose"),
                "{detail}"
            );
        }
        other => panic!("expected a Python load error, got {other:?}"),
    }
    match PythonLibrary::open(module("other/missing.py")) {
        Err(LoadError::Python { path, detail }) => {
            assert!(path.ends_with("missing.py"));
            assert_eq!(detail, "no such Python module file");
        }
        other => panic!("expected a missing-file error, got {other:?}"),
    }
    // A module without plugins opens (as a library without plugins does),
    // and asking it for one lists none.
    let empty = PythonLibrary::open(module("other/nothing.py")).unwrap();
    assert!(empty.plugins().is_empty());
    match empty.load::<GreeterClient>("Hello") {
        Err(e @ LoadError::NoSuchPlugin { .. }) => {
            assert!(e.to_string().ends_with("it has: no plugins"), "{e}");
        }
        other => panic!("expected no such plugin, got {:?}", other.map(|_| ())),
    }
    let lib = PythonLibrary::open(module("other/stale.py")).unwrap();
    match lib.load::<GreeterClient>("Stale") {
        Err(LoadError::InterfaceMismatch { field, found, .. }) => {
            assert_eq!(field, InterfaceField::Hash);
            assert_eq!(found, "0x0000000000001234");
        }
        other => panic!("expected a hash mismatch, got {:?}", other.map(|_| ())),
    }
    match lib.load::<GreeterClient>("Missing") {
        Err(LoadError::Python { detail, .. }) => assert!(
            detail.contains("class `Missing` has no method `greet`"),
            "{detail}"
        ),
        other => panic!("expected a missing method, got {:?}", other.map(|_| ())),
    }
    match lib.load::<GreeterClient>("Arity") {
        Err(LoadError::Python { detail, .. }) => assert!(
            detail.contains("method `greet` of class `Arity` takes 2 arguments"),
            "{detail}"
        ),
        other => panic!("expected an arity error, got {:?}", other.map(|_| ())),
    }
    // A plugin of another interface than the client's.
    assert!(matches!(
        plugins().load::<GreeterClient>("Basic"),
        Err(LoadError::InterfaceMismatch {
            field: InterfaceField::Name,
            ..
        })
    ));
}

#[test]
fn a_call_past_its_deadline_is_stopped_and_the_plugin_stays_usable() {
    let lib = plugins();
    let guest: HostileClient = lib
        .instance("Guest")
        .config(&HostileConfig {
            label: "deadline".into(),
        })
        .deadline(std::time::Duration::from_millis(300))
        .build()
        .unwrap();
    for _ in 0..2 {
        let started = std::time::Instant::now();
        match guest.spin() {
            Err(CallError::Timeout { method, deadline }) => {
                assert_eq!(method, "spin");
                assert_eq!(deadline, std::time::Duration::from_millis(300));
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        // The same instance answers, and calls after the deadline's time
        // are not interrupted by a stale one.
        assert_eq!(guest.label(), Ok("deadline".to_owned()));
        std::thread::sleep(std::time::Duration::from_millis(400));
        assert_eq!(guest.recurse(50), Ok(50));
    }
}

#[test]
fn a_missing_optional_method_is_not_implemented_as_on_native() {
    use evolution_api_v2::ShapesClient;
    let info = <dyn evolution_api_v2::Shapes as fidius::Interface>::INFO;
    let dir = fidius_tests::scratch("python_optional");
    let path = dir.join("shapes.py");
    std::fs::write(
        &path,
        format!(
            "import fidius\n\n\
             @fidius.plugin(interface=\"Shapes\", version={}, hash={:#x})\n\
             class Square:\n\
             \x20   def name(self):\n        return \"square\"\n\
             \x20   def area(self, scale):\n        return 4.0 * scale\n\
             \x20   def describe(self, detail):\n        return \"four sides\" * detail\n",
            info.version, info.hash
        ),
    )
    .unwrap();
    let lib = PythonLibrary::open(&path).unwrap();
    let square: ShapesClient = lib.load("Square").unwrap();
    assert_eq!(square.area(2.0), Ok(8.0));
    assert!(square.supports("describe"));
    assert_eq!(square.describe(1), Ok("four sides".to_owned()));
    assert!(!square.supports("corners"));
    assert_eq!(
        square.corners(),
        Err(CallError::NotImplemented { method: "corners" })
    );
}

#[test]
fn a_scaffolded_plugin_and_its_stubs_load_and_answer() {
    // What `cargo fidius new plugin --lang python` and `cargo fidius stub
    // --python` write, from the interface's own code.
    let dir = fidius_tests::scratch("python_scaffold");
    let stubs = <dyn fixture_api::Calculator>::__fidius_python().unwrap();
    std::fs::write(dir.join("calculator.py"), stubs).unwrap();
    let plugin = <dyn fixture_api::Calculator>::__fidius_python_plugin("calculator").unwrap();
    std::fs::write(dir.join("scaffold.py"), plugin).unwrap();
    let lib = PythonLibrary::open(dir.join("scaffold.py")).unwrap();
    let calc: CalculatorClient = lib.load("Plugin").unwrap();
    assert_eq!(calc.add(1, 2), Ok(0));
    assert_eq!(calc.echo(vec![1]), Ok(Vec::new()));
    assert_eq!(calc.shout("x"), Ok(String::new()));
    assert_eq!(
        calc.describe(Shape::Circle { radius: 1.0 }),
        Ok(Description {
            name: String::new(),
            area: 0.0,
            tags: Vec::new()
        })
    );
    assert_eq!(calc.divide(1, 1), Ok(Ok(0)));
    assert_eq!(calc.check(&Shape::Circle { radius: 1.0 }, 0.0), Ok(Ok(())));
    assert_eq!(calc.initial("x".into()), Ok(None));
    assert_eq!(calc.is_even(1, false), Ok(false));

    // Streams, configuration and host interfaces scaffold too.
    for (stubs, plugin, module) in [
        (
            <dyn fixture_api::Streams>::__fidius_python(),
            <dyn fixture_api::Streams>::__fidius_python_plugin("streams"),
            "streams",
        ),
        (
            <dyn fixture_api::Hostile>::__fidius_python(),
            <dyn fixture_api::Hostile>::__fidius_python_plugin("hostile"),
            "hostile",
        ),
        (
            <dyn fixture_api::Scripted>::__fidius_python(),
            <dyn fixture_api::Scripted>::__fidius_python_plugin("scripted"),
            "scripted",
        ),
    ] {
        std::fs::write(dir.join(format!("{module}.py")), stubs.unwrap()).unwrap();
        std::fs::write(dir.join(format!("{module}_plugin.py")), plugin.unwrap()).unwrap();
        let lib = PythonLibrary::open(dir.join(format!("{module}_plugin.py"))).unwrap();
        assert_eq!(lib.plugins().len(), 1, "{module}");
    }
    let lib = PythonLibrary::open(dir.join("streams_plugin.py")).unwrap();
    let streams: fixture_api::StreamsClient = lib.load("Plugin").unwrap();
    assert_eq!(streams.count_up(0, 10).unwrap().count(), 0);
    assert_eq!(streams.sum(1..=3u64), Ok(0));
    let lib = PythonLibrary::open(dir.join("hostile_plugin.py")).unwrap();
    let hostile: HostileClient = lib
        .instance("Plugin")
        .config(&HostileConfig { label: "x".into() })
        .build()
        .unwrap();
    assert_eq!(hostile.label(), Ok(String::new()));
}

mod packaged {
    use super::*;
    use fidius::package::{
        self, Artifact, ArtifactKind, Manifest, Package, PackageError, PackageInfo, SecretKey,
        TrustPolicy,
    };

    fn key() -> SecretKey {
        SecretKey::from_bytes(&[9; 32])
    }

    /// A signed package holding the plugins fixture as a Python artifact
    /// whose tar is `tar`.
    fn package_with(tar: Vec<u8>) -> Vec<u8> {
        let path = format!("artifacts/{}/calculator.tar", package::PYTHON_TARGET);
        let manifest = Manifest {
            format_version: package::FORMAT_VERSION,
            package: PackageInfo {
                name: "py-calculator".into(),
                version: "0.1.0".into(),
            },
            plugins: Vec::new(),
            artifacts: vec![Artifact {
                kind: ArtifactKind::Python,
                target: package::PYTHON_TARGET.into(),
                path: path.clone(),
                size: 0,
                sha256: String::new(),
                capabilities: Vec::new(),
            }],
        };
        let artifacts = [(path, tar)].into_iter().collect();
        package::write_package(&manifest, &artifacts, Some(&key())).unwrap()
    }

    fn fixture_tar() -> Vec<u8> {
        let files: Vec<(PathBuf, Vec<u8>)> = ["calculator.py", "util.py"]
            .iter()
            .map(|f| {
                (
                    PathBuf::from(f),
                    std::fs::read(module("plugins").join(f)).unwrap(),
                )
            })
            .collect();
        package::python_artifact(&files).unwrap()
    }

    fn policy(dir: &std::path::Path) -> TrustPolicy {
        TrustPolicy::new()
            .trust(key().public_key())
            .cache_dir(dir.join("cache"))
    }

    #[test]
    fn a_python_package_opens_verified_and_loads_when_the_host_enables_python() {
        let dir = fidius_tests::scratch("python_package");
        let path = dir.join("py-calculator.fidpkg");
        std::fs::write(&path, package_with(fixture_tar())).unwrap();

        // Not without the host's consent: Python plugins are not sandboxed.
        match Package::open(&path, &policy(&dir)) {
            Err(PackageError::NoArtifact { available, .. }) => {
                assert_eq!(available, ["python/python3"])
            }
            other => panic!("expected NoArtifact, got {other:?}"),
        }
        let policy = policy(&dir).python();
        let pkg = Package::open(&path, &policy).unwrap();
        assert_eq!(pkg.artifact().kind, ArtifactKind::Python);
        let names: Vec<&str> = pkg
            .plugins()
            .iter()
            .map(|p| p.plugin_name.as_str())
            .collect();
        assert_eq!(names, ["Basic", "Doubler", "Hello", "Guest", "Wrong"]);
        let calc: CalculatorClient = pkg.load("Doubler").unwrap();
        assert_eq!(calc.add(2, 3), Ok(10));
        let guest: HostileClient = pkg
            .instance("Guest")
            .config(&HostileConfig {
                label: "packaged".into(),
            })
            .build()
            .unwrap();
        assert_eq!(guest.label(), Ok("packaged".to_owned()));

        // The unpacked tree is checked on every open: a changed file is
        // replaced by the verified one, and no bytecode is written there.
        let unpacked = module_dir(&dir, &pkg);
        assert!(!unpacked.join("__pycache__").exists());
        std::fs::write(unpacked.join("util.py"), "raise SystemExit('tampered')\n").unwrap();
        std::fs::write(unpacked.join("extra.py"), "").unwrap();
        let again = Package::open(&path, &policy).unwrap();
        assert_eq!(module_dir(&dir, &again), unpacked);
        assert!(!unpacked.join("extra.py").exists());
        let calc: CalculatorClient = again.load("Basic").unwrap();
        assert_eq!(calc.add(2, 3), Ok(5));
    }

    fn module_dir(dir: &std::path::Path, pkg: &Package) -> PathBuf {
        dir.join("cache")
            .join(&pkg.artifact().sha256)
            .join("python")
    }

    #[test]
    fn a_python_artifact_with_a_hostile_file_is_refused() {
        let dir = fidius_tests::scratch("python_package_hostile");
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in [("calculator.py", &b"x = 1\n"[..]), ("../escape.py", b"")] {
            let mut header = tar::Header::new_gnu();
            let gnu = header.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            builder.append(&header, data).unwrap();
        }
        let path = dir.join("hostile.fidpkg");
        std::fs::write(&path, package_with(builder.into_inner().unwrap())).unwrap();
        match Package::open(&path, &policy(&dir).python()) {
            Err(PackageError::HostileEntry { entry, reason, .. }) => {
                assert!(entry.ends_with("calculator.tar"), "{entry}");
                assert!(reason.contains("`..`"), "{reason}");
            }
            other => panic!("expected a refused entry, got {other:?}"),
        }
        assert!(!dir.join("escape.py").exists() && !dir.join("cache/escape.py").exists());
    }
}

#[test]
fn dropping_a_returned_stream_closes_the_generator() {
    let info = <dyn fixture_api::Streams as fidius::Interface>::INFO;
    let dir = fidius_tests::scratch("python_generator_close");
    let path = dir.join("generators.py");
    std::fs::write(
        &path,
        format!(
            "import fidius\n\n\
             closed = []\n\n\
             @fidius.plugin(interface=\"Streams\", version={}, hash={:#x})\n\
             class Gen:\n\
             \x20   def count_up(self, start, end):\n\
             \x20       def items():\n\
             \x20           try:\n\
             \x20               yield from range(start, end)\n\
             \x20           finally:\n\
             \x20               closed.append(start)\n\
             \x20       return items()\n\
             \x20   def stats(self):\n\
             \x20       return {{\"produced\": 0, \"dropped\": len(closed), \"live_iterators\": 0}}\n\
             \x20   def sum(self, items): return sum(items)\n\
             \x20   def scale(self, items, factor): return (x * factor for x in items)\n\
             \x20   def chunks(self, count, size): return iter(())\n\
             \x20   def total_len(self, items): return 0\n\
             \x20   def checked(self, items): return iter(())\n\
             \x20   def explode_after(self, n): return iter(())\n\
             \x20   def take_some(self, items, take): return 0\n\
             \x20   def maybe(self, fail): return iter(())\n\
             \x20   def range(self, start, end): return iter(range(start, end))\n",
            info.version, info.hash
        ),
    )
    .unwrap();
    let lib = PythonLibrary::open(&path).unwrap();
    let s: fixture_api::StreamsClient = lib.load("Gen").unwrap();
    let mut stream = s.count_up(7, u64::MAX).unwrap();
    assert_eq!(stream.next().unwrap(), Ok(7));
    assert_eq!(stream.next().unwrap(), Ok(8));
    assert_eq!(s.stats().unwrap().dropped, 0, "still open while held");
    drop(stream);
    // The generator's `finally` ran when the host let go.
    assert_eq!(s.stats().unwrap().dropped, 1);
    // And at its end, too.
    assert_eq!(s.count_up(0, 3).unwrap().count(), 3);
    assert_eq!(s.stats().unwrap().dropped, 2);
}

/// The deadline covers everything a call runs in Python: the method,
/// converting its result (a generator given for a list runs then), each
/// pull of a returned stream, closing it, and the constructor.
#[test]
fn the_deadline_covers_conversions_stream_pulls_and_the_constructor() {
    use std::time::{Duration, Instant};
    let calc = <dyn fixture_api::Calculator as fidius::Interface>::INFO;
    let streams = <dyn fixture_api::Streams as fidius::Interface>::INFO;
    let dir = fidius_tests::scratch("python_deadline_everywhere");
    let path = dir.join("slow.py");
    std::fs::write(
        &path,
        format!(
            r#"import time
import fidius

@fidius.plugin(interface="Calculator", version={cv}, hash={ch:#x}, name="Slow")
class Slow:
    def __init__(self):
        self.mode = 0
    def bump(self):
        self.mode += 1
    def bumps(self):
        return self.mode
    def describe(self, shape):
        def tags():
            if self.mode == 0:
                time.sleep(2)
            else:
                while True:
                    pass
            yield "late"
        return {{"name": "slow", "area": 1.0, "tags": tags()}}
    def shout(self, text):
        return text.upper()
    def add(self, a, b): return a + b
    def echo(self, data): return data
    def count_bytes(self, data): return len(data)
    def divide(self, a, b): return a // b
    def check(self, shape, min_area): return None
    def is_even(self, n, invert): return (n % 2 == 0) != invert
    def initial(self, word): return word[:1] or None
    def panic_with(self, message): raise RuntimeError(message)

@fidius.plugin(interface="Calculator", version={cv}, hash={ch:#x}, name="Stuck")
class Stuck(Slow):
    def __init__(self):
        while True:
            pass

@fidius.plugin(interface="Streams", version={sv}, hash={sh:#x}, name="Endless")
class Endless:
    def count_up(self, start, end):
        def items():
            yield start
            while True:
                pass
        return items()
    def range(self, start, end):
        def items():
            try:
                yield start
            finally:
                while True:
                    pass
        return items()
    def stats(self):
        return {{"produced": 0, "dropped": 0, "live_iterators": 0}}
    def sum(self, items): return sum(items)
    def scale(self, items, factor): return (x * factor for x in items)
    def chunks(self, count, size): return iter(())
    def total_len(self, items): return 0
    def checked(self, items): return iter(())
    def explode_after(self, n): return iter(())
    def take_some(self, items, take): return 0
    def maybe(self, fail): return iter(())
"#,
            cv = calc.version,
            ch = calc.hash,
            sv = streams.version,
            sh = streams.hash,
        ),
    )
    .unwrap();
    let deadline = Duration::from_millis(300);
    let timeout = |method| Err::<(), _>(CallError::Timeout { method, deadline });
    let lib = PythonLibrary::open(&path).unwrap();
    let slow: CalculatorClient = lib.instance("Slow").deadline(deadline).build().unwrap();
    let circle = Shape::Circle { radius: 1.0 };
    // A generator that sleeps 2 s while its list is converted.
    let started = Instant::now();
    assert_eq!(slow.describe(circle.clone()).map(drop), timeout("describe"));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(slow.shout("still here"), Ok("STILL HERE".to_owned()));
    // One that loops forever (and would hold the GIL for good).
    slow.bump().unwrap();
    let started = Instant::now();
    assert_eq!(slow.describe(circle).map(drop), timeout("describe"));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(slow.bumps(), Ok(1));

    // A returned stream whose second pull loops forever.
    let endless: fixture_api::StreamsClient =
        lib.instance("Endless").deadline(deadline).build().unwrap();
    let mut items = endless.count_up(5, 10).unwrap();
    assert_eq!(items.next(), Some(Ok(5)));
    let started = Instant::now();
    assert_eq!(items.next().map(|r| r.map(drop)), Some(timeout("count_up")));
    assert!(started.elapsed() < Duration::from_secs(10));
    // One whose `finally` loops forever when it is closed: dropping it
    // returns.
    let mut items = endless.range(1, 3).unwrap();
    assert_eq!(items.next(), Some(Ok(1)));
    let started = Instant::now();
    drop(items);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(endless.stats().map(|s| s.dropped), Ok(0));

    // A constructor that loops forever.
    let started = Instant::now();
    match lib
        .instance::<CalculatorClient>("Stuck")
        .deadline(deadline)
        .build()
    {
        Err(LoadError::Create { source, .. }) => {
            assert_eq!(
                source,
                CallError::Timeout {
                    method: "create",
                    deadline
                }
            );
        }
        other => panic!(
            "expected the constructor's timeout, got {:?}",
            other.map(|_| ())
        ),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}
