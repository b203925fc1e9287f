//! The WASM sandbox against a hostile guest: every escape attempt and
//! runaway is a specific typed error, and the same client answers a normal
//! call afterwards.

use std::time::{Duration, Instant};

use fidius::CallError;
use fidius::wasm::{Capabilities, DirAccess, Output, OutputBuffer, WasmRuntime, WasmSettings};
use fidius_tests::{scratch, wasm_fixture, wasm_library};
use fixture_api::{HostileClient, HostileConfig};

fn config() -> HostileConfig {
    HostileConfig {
        label: "sandboxed".into(),
    }
}

fn guest(caps: Capabilities) -> HostileClient {
    wasm_library("fixture_hostile")
        .instance("Guest")
        .config(&config())
        .capabilities(caps)
        .build()
        .unwrap()
}

/// The client still answers after whatever happened.
fn still_works(client: &HostileClient) {
    assert_eq!(client.label(), Ok("sandboxed".to_owned()));
}

#[test]
fn deny_all_by_default() {
    let g = guest(Capabilities::none());
    let err = g.read_file("/etc/passwd".into()).unwrap().unwrap_err();
    assert!(err.starts_with("/etc/passwd: "), "{err}");
    let err = g
        .write_file("/tmp/fidius-escape".into(), "x".into())
        .unwrap()
        .unwrap_err();
    assert!(err.starts_with("/tmp/fidius-escape: "), "{err}");
    assert!(!std::path::Path::new("/tmp/fidius-escape").exists());
    // SAFETY-free: PATH is set for any test process.
    assert!(std::env::var("PATH").is_ok());
    assert_eq!(g.env_var("PATH".into()), Ok(None));
    // A listener that would accept: the sandbox, not the address, refuses.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let err = g.connect(addr.clone()).unwrap().unwrap_err();
    assert!(err.starts_with(&format!("{addr}: ")), "{err}");
    assert!(!err.contains("refused"), "{err}");
    assert_eq!(
        listener.accept().map(drop).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::WouldBlock),
        "nothing connected"
    );
    assert_eq!(
        g.now_secs(),
        Ok(0),
        "the wall clock is stopped unless granted"
    );
    g.print("nobody sees this".into()).unwrap();
    still_works(&g);
}

#[test]
fn granted_capabilities_work_and_stop_where_the_grant_stops() {
    let dir = scratch("sandbox-grants");
    std::fs::write(dir.join("in.txt"), "hello from the host").unwrap();
    let out = OutputBuffer::new(1 << 16);
    let err = OutputBuffer::new(1 << 16);
    let g = guest(
        Capabilities::none()
            .dir(&dir, "/data", DirAccess::ReadOnly)
            .env_value("GREETING", "hi")
            .stdout(Output::Capture(out.clone()))
            .stderr(Output::Capture(err.clone()))
            .wall_clock(),
    );
    assert_eq!(
        g.read_file("/data/in.txt".into()),
        Ok(Ok("hello from the host".into()))
    );
    let denied = g
        .write_file("/data/out.txt".into(), "x".into())
        .unwrap()
        .unwrap_err();
    assert!(denied.starts_with("/data/out.txt: "), "{denied}");
    assert!(
        !dir.join("out.txt").exists(),
        "a read-only preopen was written"
    );
    assert!(
        g.read_file("/etc/passwd".into()).unwrap().is_err(),
        "outside the preopen"
    );
    assert_eq!(g.env_var("GREETING".into()), Ok(Some("hi".into())));
    assert_eq!(g.env_var("PATH".into()), Ok(None));
    assert!(g.now_secs().unwrap() > 1_700_000_000);
    g.print("captured".into()).unwrap();
    assert_eq!(out.contents(), b"captured\n");
    assert_eq!(err.contents(), b"err: captured\n");

    let rw = guest(Capabilities::none().dir(&dir, "/data", DirAccess::ReadWrite));
    assert_eq!(
        rw.write_file("/data/out.txt".into(), "written".into()),
        Ok(Ok(()))
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("out.txt")).unwrap(),
        "written"
    );
}

#[test]
fn dropping_the_last_client_runs_the_plugins_drop_once() {
    let out = OutputBuffer::new(1 << 16);
    let g = guest(Capabilities::none().stdout(Output::Capture(out.clone())));
    let clone = g.clone();
    still_works(&g);
    drop(g);
    assert_eq!(out.contents(), b"", "a clone still holds the instance");
    still_works(&clone);
    drop(clone);
    assert_eq!(out.contents(), b"dropped sandboxed\n");
}

#[test]
fn an_infinite_loop_times_out_and_the_client_recovers() {
    let g = guest(Capabilities::none());
    let start = Instant::now();
    let err = g.spin().unwrap_err();
    let took = start.elapsed();
    assert_eq!(
        err,
        CallError::Timeout {
            method: "spin",
            deadline: Duration::from_secs(5)
        }
    );
    assert!(took < Duration::from_secs(15), "stopped after {took:?}");
    still_works(&g);
}

#[test]
fn a_memory_bomb_hits_the_limit() {
    let g = guest(Capabilities::none());
    assert_eq!(g.grow(4), Ok(4 << 20));
    let err = g.grow(1024).unwrap_err();
    assert_eq!(
        err,
        CallError::MemoryLimit {
            method: "grow",
            limit: 64 << 20
        }
    );
    still_works(&g);
}

/// `recurse` ran out of stack: wasmtime's own (`call stack exhausted`) or,
/// first, a Rust guest's shadow stack in linear memory (an out-of-bounds
/// access below it).
fn assert_stack_trap(err: &CallError) {
    assert!(
        matches!(err, CallError::Trapped { method: "recurse", reason }
            if reason.contains("call stack exhausted")
                || reason.contains("out of bounds memory access")),
        "{err:?}"
    );
}

/// What a guest can run into, each the cause of one kind of error.
#[derive(Debug, Clone, Copy)]
enum Limit {
    /// A refused `memory.grow` the guest handles (no error).
    Refused,
    Memory,
    Deadline,
    Trap,
    Panic,
}

/// Every limit, hit after every other limit was hit (or, for a refused
/// `memory.grow`, handled by the guest): each error names what this call
/// ran into, never what an earlier one did.
#[test]
fn each_limit_is_named_after_every_other() {
    let deadline = Duration::from_millis(300);
    let runtime = WasmRuntime::new(
        WasmSettings::default()
            .deadline(deadline)
            .memory_limit(64 << 20)
            .cache_dir(None),
    )
    .unwrap();
    let lib = runtime.open(wasm_fixture("fixture_hostile")).unwrap();
    let g: HostileClient = lib.instance("Guest").config(&config()).build().unwrap();
    let hit = |limit: Limit| match limit {
        Limit::Refused => assert_eq!(g.try_grow(1024), Ok(false)),
        Limit::Memory => assert_eq!(
            g.grow(1024),
            Err(CallError::MemoryLimit {
                method: "grow",
                limit: 64 << 20
            })
        ),
        Limit::Deadline => assert_eq!(
            g.spin(),
            Err(CallError::Timeout {
                method: "spin",
                deadline
            })
        ),
        Limit::Trap => assert_stack_trap(&g.recurse(100_000_000).unwrap_err()),
        Limit::Panic => assert_eq!(
            g.fail("given up".into()),
            Err(CallError::Panic {
                method: "fail",
                message: "given up".into()
            })
        ),
    };
    use Limit::*;
    let all = [Refused, Memory, Deadline, Trap, Panic];
    for first in all {
        for second in all {
            hit(first);
            hit(second);
            assert_eq!(g.try_grow(1), Ok(true), "after {first:?}, {second:?}");
            assert_eq!(g.label(), Ok("sandboxed".to_owned()));
        }
    }
}

#[test]
fn deep_recursion_traps() {
    let g = guest(Capabilities::none());
    assert_eq!(g.recurse(100), Ok(100));
    assert_stack_trap(&g.recurse(100_000_000).unwrap_err());
    still_works(&g);
}

#[test]
fn a_panic_is_the_panic_message() {
    let g = guest(Capabilities::none());
    assert_eq!(
        g.fail("guest gave up".into()),
        Err(CallError::Panic {
            method: "fail",
            message: "guest gave up".into()
        })
    );
    still_works(&g);
}

#[test]
fn fuel_bounds_work_per_call() {
    let settings = WasmSettings::default()
        .fuel(5_000_000)
        .deadline(Duration::from_secs(30))
        .cache_dir(None);
    let runtime = WasmRuntime::new(settings).unwrap();
    let lib = runtime.open(wasm_fixture("fixture_hostile")).unwrap();
    let g: HostileClient = lib.instance("Guest").config(&config()).build().unwrap();
    let err = g.spin().unwrap_err();
    assert!(
        matches!(&err, CallError::Trapped { method: "spin", reason } if reason.contains("fuel")),
        "{err:?}"
    );
    still_works(&g);
}

#[test]
fn fresh_instance_per_call_leaves_nothing_behind() {
    let (_runtime, lib) = fidius_tests::per_call_wasm_library("fixture_hostile");
    let out = OutputBuffer::new(1 << 16);
    let g: HostileClient = lib
        .instance("Guest")
        .config(&config())
        .capabilities(Capabilities::none().stdout(Output::Capture(out.clone())))
        .build()
        .unwrap();
    for _ in 0..3 {
        assert_eq!(g.label(), Ok("sandboxed".to_owned()));
        // Each call ran on its own instance: the counter never survives.
        assert_eq!(g.calls(), Ok(0));
    }
    // Every instance was configured from the same config and dropped.
    let text = String::from_utf8(out.contents()).unwrap();
    assert_eq!(text.matches("dropped sandboxed").count(), 7, "{text}");
    assert!(matches!(g.grow(64), Err(CallError::MemoryLimit { .. })));
    still_works(&g);
}

/// Resident set size, from /proc.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn thousands_of_traps_keep_memory_flat() {
    let settings = WasmSettings::default()
        .memory_limit(8 << 20)
        .cache_dir(Some(fidius_tests::fixtures_target().join("wasm-cache")));
    let runtime = WasmRuntime::new(settings).unwrap();
    let lib = runtime.open(wasm_fixture("fixture_hostile")).unwrap();
    let g: HostileClient = lib.instance("Guest").config(&config()).build().unwrap();
    let round = |n: usize| {
        for i in 0..n {
            assert!(matches!(
                g.fail(format!("{i}")),
                Err(CallError::Panic { .. })
            ));
            assert!(matches!(g.grow(64), Err(CallError::MemoryLimit { .. })));
            assert!(matches!(
                g.recurse(100_000_000),
                Err(CallError::Trapped { .. })
            ));
            still_works(&g);
        }
    };
    round(200);
    let before = rss_bytes();
    round(1000);
    let after = rss_bytes();
    assert!(
        after < before + (32 << 20),
        "resident memory grew from {before} to {after} bytes over 4000 failing calls"
    );
}

mod packages {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use fidius::package::{
        self, Artifact, ArtifactKind, Manifest, Package, PackageError, PackageInfo, PluginEntry,
        SecretKey, TrustPolicy,
    };
    use fidius::{Interface, LoadError};
    use fidius_tests::{fixture, scratch, wasm_fixture};

    use super::*;

    fn key() -> SecretKey {
        SecretKey::from_bytes(&[9; 32])
    }

    /// `fixture-hostile` packaged native (for this host) and as a component
    /// that requests `capabilities`.
    fn package(dir: &std::path::Path, capabilities: &[&str], native: bool) -> std::path::PathBuf {
        try_package(dir, capabilities, native).unwrap()
    }

    fn try_package(
        dir: &std::path::Path,
        capabilities: &[&str],
        native: bool,
    ) -> Result<std::path::PathBuf, PackageError> {
        let mut bytes = BTreeMap::new();
        let mut artifacts = Vec::new();
        let mut add = |kind, target: &str, file: &str, data: Vec<u8>, caps: &[&str]| {
            let path = format!("artifacts/{target}/{file}");
            bytes.insert(path.clone(), data);
            artifacts.push(Artifact {
                kind,
                target: target.into(),
                path,
                size: 0,
                sha256: String::new(),
                capabilities: caps.iter().map(|c| (*c).to_owned()).collect(),
            });
        };
        if native {
            add(
                ArtifactKind::Native,
                package::HOST_TARGET,
                "libfixture_hostile.so",
                std::fs::read(fixture("fixture_hostile")).unwrap(),
                &[],
            );
        }
        add(
            ArtifactKind::Wasm,
            package::WASM_TARGET,
            "fixture_hostile.wasm",
            std::fs::read(wasm_fixture("fixture_hostile")).unwrap(),
            capabilities,
        );
        let manifest = Manifest {
            format_version: package::FORMAT_VERSION,
            package: PackageInfo {
                name: "hostile".into(),
                version: "0.1.0".into(),
            },
            plugins: vec![PluginEntry {
                name: "Guest".into(),
                interface: "Hostile".into(),
                interface_version: 1,
                interface_hash: format!(
                    "{:#018x}",
                    <dyn fixture_api::Hostile as Interface>::INFO.hash
                ),
            }],
            artifacts,
        };
        let data = package::write_package(&manifest, &bytes, Some(&key()))?;
        let path = dir.join("hostile-0.1.0.fidpkg");
        std::fs::write(&path, data).unwrap();
        Ok(path)
    }

    fn policy(dir: &std::path::Path, grant: Capabilities) -> TrustPolicy {
        TrustPolicy::new()
            .trust(key().public_key())
            .cache_dir(dir.join("cache"))
            .wasm(
                Arc::new(WasmRuntime::new(WasmSettings::default().cache_dir(None)).unwrap()),
                grant,
            )
    }

    #[test]
    fn a_package_without_a_native_artifact_runs_its_component() {
        let dir = scratch("sandbox-package-wasm");
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("f"), "in the package's sandbox").unwrap();
        let path = package(&dir, &["dir:/data"], false);
        let grant = Capabilities::none().dir(&data, "/data", DirAccess::ReadOnly);
        let package = Package::open(&path, &policy(&dir, grant)).unwrap();
        assert_eq!(package.artifact().kind, ArtifactKind::Wasm);
        assert!(package.wasm_library().is_some() && package.native_library().is_none());
        let g: HostileClient = package.instance("Guest").config(&config()).build().unwrap();
        assert_eq!(
            g.read_file("/data/f".into()),
            Ok(Ok("in the package's sandbox".into()))
        );
        assert_eq!(g.env_var("PATH".into()), Ok(None));
    }

    #[test]
    fn native_wins_unless_the_policy_prefers_wasm() {
        let dir = scratch("sandbox-package-prefer");
        let path = package(&dir, &[], true);
        let native = Package::open(&path, &policy(&dir, Capabilities::none())).unwrap();
        assert_eq!(native.artifact().kind, ArtifactKind::Native);
        let wasm = Package::open(&path, &policy(&dir, Capabilities::none()).prefer_wasm()).unwrap();
        assert_eq!(wasm.artifact().kind, ArtifactKind::Wasm);
        let g: HostileClient = wasm.instance("Guest").config(&config()).build().unwrap();
        still_works(&g);
    }

    #[test]
    fn requested_capabilities_the_host_does_not_grant_are_all_listed() {
        let dir = scratch("sandbox-package-denied");
        let path = package(&dir, &["dir:/data", "env:HOME", "stdout"], false);
        let grant = Capabilities::none().env("HOME");
        let err = Package::open(&path, &policy(&dir, grant)).unwrap_err();
        match err {
            PackageError::Load(e) => match *e {
                LoadError::CapabilitiesNotGranted { missing, .. } => {
                    assert_eq!(missing, ["dir:/data", "stdout"]);
                }
                other => panic!("expected CapabilitiesNotGranted, got {other:?}"),
            },
            other => panic!("expected a load error, got {other:?}"),
        }
    }

    #[test]
    fn unknown_capability_names_are_refused() {
        let dir = scratch("sandbox-package-unknown");
        // `write_package` validates the manifest it signs.
        let err = try_package(&dir, &["teleport"], false).unwrap_err();
        assert!(
            matches!(&err, PackageError::BadManifest { detail, .. } if detail.contains("`teleport`")),
            "{err:?}"
        );
        assert!(!dir.join("hostile-0.1.0.fidpkg").exists());
        let bad = Capabilities::none()
            .missing(&["fs:/".to_owned()])
            .unwrap_err();
        assert!(
            matches!(&bad, LoadError::UnknownCapability { name, .. } if name == "fs:/"),
            "{bad:?}"
        );
        assert!(bad.to_string().contains("`env:NAME`"), "{bad}");
    }

    #[test]
    fn without_a_wasm_runtime_a_component_only_package_says_what_it_has() {
        let dir = scratch("sandbox-package-no-runtime");
        let path = package(&dir, &[], false);
        let policy = TrustPolicy::new()
            .trust(key().public_key())
            .cache_dir(dir.join("cache"));
        let err = Package::open(&path, &policy).unwrap_err();
        assert!(
            matches!(&err, PackageError::NoArtifact { available, .. }
                if available == &["wasm/wasm32-wasip2".to_owned()]),
            "{err:?}"
        );
    }
}

/// Outbound HTTP through `wasi:http`, brokered by the host's egress hook,
/// against a small HTTP server on 127.0.0.1 that answers with the request
/// head it received.
mod http {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    use fidius::wasm::Egress;

    use super::*;

    struct Server {
        port: u16,
        seen: Arc<Mutex<Vec<String>>>,
    }

    impl Server {
        fn start() -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let seen = Arc::new(Mutex::new(Vec::new()));
            let log = seen.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    let mut head = String::new();
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                        head.push_str(&line.to_ascii_lowercase());
                    }
                    log.lock().unwrap().push(head.clone());
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{head}",
                        head.len()
                    );
                }
            });
            Self { port, seen }
        }

        fn seen(&self) -> Vec<String> {
            self.seen.lock().unwrap().clone()
        }
    }

    #[test]
    fn requests_go_through_the_egress_hook() {
        let server = Server::start();
        let port = server.port;
        let g = guest(Capabilities::none().http(|request| match request.host() {
            Some("127.0.0.1") => {
                request.set_header("x-fidius-egress", "checked");
                Egress::Allow
            }
            Some("moved.invalid") => {
                request.url = request.url.replace("moved.invalid", "127.0.0.1");
                Egress::Allow
            }
            other => Egress::Deny(format!("{other:?} is not on the allow-list")),
        }));

        // Allowed: answered, and the server saw the hook's header and the
        // plugin's own.
        let out = g
            .fetch(
                format!("http://127.0.0.1:{port}/allowed"),
                vec![("x-plugin".into(), "yes".into())],
            )
            .unwrap()
            .unwrap();
        assert!(out.starts_with("200\n"), "{out}");
        assert!(out.contains("get /allowed http/1.1"), "{out}");
        assert!(out.contains("x-fidius-egress: checked"), "{out}");
        assert!(out.contains("x-plugin: yes"), "{out}");

        // Denied: an HTTP error in the guest, never sent.
        let err = g
            .fetch(format!("http://localhost:{port}/denied"), vec![])
            .unwrap()
            .unwrap_err();
        assert!(err.contains("HttpRequestDenied"), "{err}");

        // Rewritten: sent where the hook said, with a matching host header.
        let out = g
            .fetch(format!("http://moved.invalid:{port}/moved"), vec![])
            .unwrap()
            .unwrap();
        assert!(out.contains("get /moved http/1.1"), "{out}");
        assert!(out.contains(&format!("host: 127.0.0.1:{port}")), "{out}");

        let seen = server.seen();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen.iter().all(|r| !r.contains("/denied")), "{seen:?}");
        still_works(&g);
    }

    #[test]
    fn without_the_grant_every_request_is_denied() {
        let server = Server::start();
        let g = guest(Capabilities::none());
        let err = g
            .fetch(format!("http://127.0.0.1:{}/", server.port), vec![])
            .unwrap()
            .unwrap_err();
        assert!(err.contains("HttpRequestDenied"), "{err}");
        assert!(server.seen().is_empty());
        // Nor can the guest reach it around `wasi:http`.
        let err = g
            .connect(format!("127.0.0.1:{}", server.port))
            .unwrap()
            .unwrap_err();
        assert!(!err.is_empty());
        assert!(server.seen().is_empty());
        still_works(&g);
    }
}
