//! The hostile corpus (`fidius_tests::hostile`) through every door a host
//! or a CI pipeline opens: `cargo fidius inspect`, `cargo fidius verify`,
//! `PluginLibrary::open`, `WasmRuntime::open` and `Package::open` (each
//! followed by creating the plugin when the file opens). Every file gets
//! the typed error that names its fault, nothing panics or dies of a
//! signal, nothing hangs, nothing is written outside the cache, and a
//! refused package leaves nothing in the cache.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use fidius::runtime::package::{self, Package, PublicKey, TrustPolicy};
use fidius::wasm::{Capabilities, WasmRuntime, WasmSettings};
use fidius::{LoadError, PluginLibrary};
use fidius_tests::hostile::{self, PLUGIN};
use fixture_api::CalculatorClient;

/// How long any one door may take before the test calls it a hang.
const HANG: Duration = Duration::from_secs(60);

/// What each door reports for each file, as one line per file:
/// `name | native | wasm | package | inspect | verify`.
///
/// API doors: `Debug` of the error, up to its first field
/// (`NotAFile`, `Load(AbiVersionMismatch`…); `ok` when the file opens and
/// the plugin is created; `ok, X` when it opens and creating the plugin
/// fails with `X`. A `~ text` suffix must appear in the error's message.
/// CLI doors: the exit code, then `~ text` that stderr (or, for 0,
/// stdout) must contain.
const EXPECTED: &str = include_str!("hostile.expected");

#[test]
fn every_hostile_file_gets_its_own_typed_error_through_every_door() {
    let scratch = fidius_tests::scratch("hostile-corpus");
    let corpus = hostile::generate(&scratch.join("corpus"), &hostile::Sources::fixtures());
    let cache = scratch.join("cache");
    let cli_cache = scratch.join("cli-cache");
    let runtime = Arc::new(
        WasmRuntime::new(
            WasmSettings::default()
                .deadline(Duration::from_millis(500))
                .memory_limit(64 << 20)
                .cache_dir(None),
        )
        .expect("wasmtime engine"),
    );
    let policy = TrustPolicy::new()
        .trust(PublicKey::from_file(&corpus.public_key).unwrap())
        .cache_dir(&cache)
        .wasm(runtime.clone(), Capabilities::none());
    let absolute = Path::new("/tmp/fidius-hostile-absolute");
    let _ = std::fs::remove_file(absolute);
    let outside_before = listing(&scratch, &cache);
    std::fs::create_dir_all(&cli_cache).unwrap();

    let mut actual = BTreeMap::new();
    for name in &corpus.cases {
        let path = corpus.dir.join(name);
        let native = door(name, "PluginLibrary::open", {
            let path = path.clone();
            move || {
                outcome(PluginLibrary::open(&path).and_then(|l| l.load::<CalculatorClient>(PLUGIN)))
            }
        });
        let signed = door(name, "open_signed_library", {
            let (path, policy) = (path.clone(), policy.clone());
            move || match package::open_signed_library(&path, &policy) {
                Err(e) => describe(&e),
                Ok(l) => outcome(l.load::<CalculatorClient>(PLUGIN)),
            }
        });
        let wasm = door(name, "WasmRuntime::open", {
            let (path, runtime) = (path.clone(), runtime.clone());
            move || {
                outcome(
                    runtime
                        .open(&path)
                        .and_then(|l| l.load::<CalculatorClient>(PLUGIN)),
                )
            }
        });
        let cached_before = listing(&cache, Path::new("/"));
        // (`open_signed_library` above may cache a verified library: only
        // what `Package::open` adds is compared.)
        let package = door(name, "Package::open", {
            let (path, policy) = (path.clone(), policy.clone());
            move || match Package::open(&path, &policy) {
                Err(e) => describe(&e),
                Ok(p) => match p.load::<CalculatorClient>(PLUGIN) {
                    Ok(_) => "ok".into(),
                    Err(e) => format!("ok, {}", describe(&e)),
                },
            }
        });
        if !package.starts_with("ok") {
            assert_eq!(
                listing(&cache, Path::new("/")),
                cached_before,
                "{name}: a refused package changed the cache"
            );
        }
        let inspect = cli(name, &["inspect"], &path, &cli_cache);
        let verify = cli(
            name,
            &["verify", "--key", &corpus.public_key.display().to_string()],
            &path,
            &cli_cache,
        );
        // Paths shortened so that the table reads (and matches) anywhere.
        let corpus_dir = format!("{}/", corpus.dir.display());
        let cache_dir = format!("{}/", cache.display());
        let cli_cache_dir = format!("{}/", cli_cache.display());
        let cells = [native, signed, wasm, package, inspect, verify].map(|cell| {
            cell.replace(&corpus_dir, "")
                .replace(&cache_dir, "<cache>/")
                .replace(&cli_cache_dir, "<cache>/")
        });
        actual.insert(name.clone(), cells);
    }

    assert!(
        !absolute.exists(),
        "a package wrote `{}`",
        absolute.display()
    );
    let outside: Vec<_> = listing(&scratch, &cache)
        .into_iter()
        .filter(|(p, ..)| !p.starts_with(&cli_cache))
        .collect();
    assert_eq!(
        outside, outside_before,
        "something was written outside the cache"
    );

    // `FIDIUS_BLESS=1` rewrites the table from what the doors reported
    // (then trim what varies between builds by hand); refused in CI.
    if fidius_tests::bless() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile.expected");
        let header: String = EXPECTED
            .lines()
            .take_while(|l| l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        let rows: String = actual
            .iter()
            .map(|(name, cells)| format!("{name} | {}\n", cells.join(" | ")))
            .collect();
        std::fs::write(path, header + &rows).unwrap();
        return;
    }
    // Compare with the table, and print the whole actual table on any
    // difference so that a reviewer sees every door at once.
    let expected: BTreeMap<String, Vec<String>> = EXPECTED
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let mut cells = line.split(" | ").map(|c| c.trim().to_owned());
            let name = cells.next().unwrap();
            (name, cells.collect())
        })
        .collect();
    let mut problems = Vec::new();
    for (name, got) in &actual {
        let Some(want) = expected.get(name) else {
            problems.push(format!("{name}: not in hostile.expected"));
            continue;
        };
        for (door, (got, want)) in DOORS.iter().zip(got.iter().zip(want)) {
            if !matches(got, want) {
                problems.push(format!(
                    "{name} / {door}:\n    expected {want}\n    got      {got}"
                ));
            }
        }
    }
    for name in expected.keys().filter(|n| !actual.contains_key(*n)) {
        problems.push(format!("{name}: in hostile.expected but not in the corpus"));
    }
    if !problems.is_empty() {
        let table: Vec<String> = actual
            .iter()
            .map(|(name, cells)| format!("{name} | {}", cells.join(" | ")))
            .collect();
        panic!(
            "{} difference(s):\n{}\n\nactual table:\n{}",
            problems.len(),
            problems.join("\n"),
            table.join("\n")
        );
    }
}

const DOORS: [&str; 6] = ["native", "signed", "wasm", "package", "inspect", "verify"];

/// Whether an actual cell satisfies an expected one: the same head (before
/// ` ~ `), and every `~ text` of the expectation inside the actual detail.
fn matches(got: &str, want: &str) -> bool {
    let mut want = want.split(" ~ ");
    let head = want.next().unwrap_or_default();
    let (got_head, got_detail) = got.split_once(" ~ ").unwrap_or((got, ""));
    got_head == head && want.all(|text| got_detail.contains(text))
}

/// `Debug` of `e` up to its first field, then ` ~ ` and its message.
fn describe(e: &dyn DebugDisplay) -> String {
    let debug = e.debug();
    let head: String = debug
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '(' || *c == '_')
        .collect();
    format!("{head} ~ {}", e.display())
}

trait DebugDisplay {
    fn debug(&self) -> String;
    fn display(&self) -> String;
}

impl<E: std::fmt::Debug + std::fmt::Display> DebugDisplay for E {
    fn debug(&self) -> String {
        format!("{self:?}")
    }
    fn display(&self) -> String {
        self.to_string()
    }
}

/// An open-then-load result as a cell: the first step that failed.
fn outcome<T>(result: Result<T, LoadError>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(e @ (LoadError::InterfaceMismatch { .. } | LoadError::Create { .. })) => {
            format!("ok, {}", describe(&e))
        }
        Err(e) => describe(&e),
    }
}

/// Runs `f` on its own thread; a door that takes longer than [`HANG`]
/// fails the test instead of stopping it.
fn door(name: &str, what: &str, f: impl FnOnce() -> String + Send + 'static) -> String {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(f());
    });
    match receive.recv_timeout(HANG) {
        Ok(cell) => cell,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{name}: {what} hung"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{name}: {what} panicked"),
    }
}

/// `cargo fidius ARGS FILE` as a cell: exit code and the line that says
/// why (or stdout's first line when it succeeded). Death by a signal, a
/// panic (exit 101) or a hang fails the test.
fn cli(name: &str, args: &[&str], file: &Path, cache: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cargo-fidius"))
        .env("FIDIUS_CACHE_DIR", cache)
        .arg("fidius")
        .args(args)
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cargo-fidius");
    let start = Instant::now();
    while child.try_wait().expect("wait for cargo-fidius").is_none() {
        if start.elapsed() > HANG {
            let _ = child.kill();
            panic!("{name}: cargo fidius {} hung", args[0]);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().expect("cargo-fidius output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let Some(code) = out.status.code() else {
        panic!(
            "{name}: cargo fidius {} died: {}\n{stderr}",
            args[0], out.status
        );
    };
    assert_ne!(
        code, 101,
        "{name}: cargo fidius {} panicked:\n{stderr}",
        args[0]
    );
    // The report's first line, or the last line of the error (its cause).
    let line = if code == 0 && args[0] == "inspect" {
        stdout.lines().next()
    } else {
        stderr.lines().rev().find(|l| !l.trim().is_empty())
    };
    format!("{code} ~ {}", line.unwrap_or_default().trim())
}

/// Every path under `dir` but `except`, with its size and modification
/// time.
fn listing(dir: &Path, except: &Path) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path == except {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).ok();
        found.push((
            path.clone(),
            meta.as_ref().map_or(0, |m| m.len()),
            meta.and_then(|m| m.modified().ok()),
        ));
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(listing(&path, except));
        }
    }
    found.sort();
    found
}
