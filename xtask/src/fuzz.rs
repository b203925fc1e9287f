//! `cargo xtask fuzz [--seconds N] [TARGET ...]`: the cargo-fuzz targets in
//! `fuzz/`, built with the nightly toolchain (libFuzzer and
//! AddressSanitizer), each run for N seconds (default 60) from a seed
//! corpus made of real artifacts: a plugin built for this host and as a
//! component (release, stripped, so mutations stay fast), the signed
//! package holding both, and its manifest. The corpora grow in
//! `target/fuzz/corpus/<target>`; a crash is written to
//! `target/fuzz/artifacts/<target>/` and fails the task. Each run's
//! executions and coverage go to `target/fuzz/stats/<target>.txt`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run::{cargo, output, root, status, target_dir};

/// cargo-fuzz, installed from crates.io into the target dir.
const CARGO_FUZZ: &str = "cargo-fuzz@0.13.2";

/// The targets (`fuzz/fuzz_targets/<name>.rs`) and what seeds each.
const TARGETS: &[(&str, Seeds)] = &[
    ("wire_decode", Seeds::None),
    ("manifest", Seeds::Manifest),
    ("component_metadata", Seeds::Component),
    ("library_file", Seeds::Artifacts),
    ("package", Seeds::Package),
    ("wit_value", Seeds::None),
    ("component_open", Seeds::Component),
    ("python_value", Seeds::None),
];

/// Targets run without libFuzzer's leak detection: CPython keeps memory
/// by design (interned strings, free lists, caches, an interpreter that is
/// never finalized), so a "leak" there says nothing about fidius.
const LEAKS_UNCHECKED: &[&str] = &["python_value"];

#[derive(Clone, Copy)]
enum Seeds {
    None,
    Manifest,
    Component,
    Artifacts,
    Package,
}

/// The seed artifacts: one plugin for this host and as a component, and
/// the signed package holding both.
struct SeedFiles {
    native: PathBuf,
    component: PathBuf,
    package: PathBuf,
    manifest: PathBuf,
    public_key: PathBuf,
}

pub(crate) fn fuzz(args: &[String]) -> Result<(), String> {
    let mut seconds = 60u64;
    let mut chosen = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = args.next().ok_or("`--seconds` needs a number")?;
                seconds = value
                    .parse()
                    .map_err(|_| format!("`--seconds {value}`: expected a whole number"))?;
            }
            name if TARGETS.iter().any(|(t, _)| *t == name) => chosen.push(name.to_owned()),
            other => {
                return Err(format!(
                    "unknown fuzz target `{other}`; expected one of: {}",
                    TARGETS
                        .iter()
                        .map(|(t, _)| *t)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    run(seconds, &chosen)
}

/// Runs `chosen` (every target when empty) for `seconds` each.
pub(crate) fn run(seconds: u64, chosen: &[String]) -> Result<(), String> {
    let cargo_fuzz = install()?;
    let seeds = seed_files()?;
    let dir = target_dir().join("fuzz");
    // Built first, with cargo's output in view (the runs capture theirs).
    let mut build = fuzz_command(&cargo_fuzz, &seeds);
    build.args(["build", "--fuzz-dir"]).arg(root().join("fuzz"));
    if let [one] = chosen {
        build.arg(one);
    }
    status(build)?;
    let mut report = Vec::new();
    for (name, kind) in TARGETS {
        if !chosen.is_empty() && !chosen.iter().any(|c| c == name) {
            continue;
        }
        let _ = std::fs::remove_dir_all(scratch_dir());
        let corpus = dir.join("corpus").join(name);
        seed(&corpus, *kind, &seeds)?;
        let artifacts = dir.join("artifacts").join(name);
        std::fs::create_dir_all(&artifacts)
            .map_err(|e| format!("failed to create `{}`: {e}", artifacts.display()))?;
        // Inputs from earlier runs, to tell this run's findings apart.
        let known: Vec<PathBuf> = std::fs::read_dir(&artifacts)
            .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        let mut cmd = fuzz_command(&cargo_fuzz, &seeds);
        cmd.args(["run", "--fuzz-dir"])
            .arg(root().join("fuzz"))
            .arg(name)
            .arg(&corpus)
            .args(["--", "-print_final_stats=1", "-rss_limit_mb=3072"])
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-artifact_prefix={}/", artifacts.display()));
        if LEAKS_UNCHECKED.contains(name) {
            // Per input (libFuzzer) and at exit (the sanitizer).
            cmd.arg("-detect_leaks=0")
                .env("ASAN_OPTIONS", "detect_leaks=0");
        }
        // libFuzzer reports on stderr: kept, for its figures.
        eprintln!("\x20    Running fuzz target `{name}` for {seconds} s");
        let out = cmd
            .stderr(std::process::Stdio::piped())
            .output()
            .map_err(|e| format!("failed to start cargo-fuzz: {e}"))?;
        let log = String::from_utf8_lossy(&out.stderr);
        let stats = Stats::read(&log);
        let line = format!(
            "{name}: {} executions in {seconds} s, coverage {} edges, {} features, corpus {} inputs",
            stats.execs, stats.cov, stats.ft, stats.corpus
        );
        let stats_dir = dir.join("stats");
        std::fs::create_dir_all(&stats_dir)
            .and_then(|()| std::fs::write(stats_dir.join(format!("{name}.txt")), &line))
            .map_err(|e| format!("failed to write `{}`: {e}", stats_dir.display()))?;
        if !out.status.success() {
            let found = std::fs::read_dir(&artifacts)
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .filter(|e| !known.contains(&e.path()))
                        .map(|e| e.path().display().to_string())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            return Err(if found.is_empty() {
                format!("cargo-fuzz failed on `{name}`:\n{}", tail(&log, 60))
            } else {
                format!(
                    "fuzz target `{name}` found a failure (its input: {}):\n{}",
                    found.join(", "),
                    tail(&log, 60)
                )
            });
        }
        eprintln!("      Fuzzed {line}");
        report.push(line);
    }
    eprintln!("    Finished fuzzing:\n{}", report.join("\n"));
    Ok(())
}

/// `cargo fuzz` on the nightly toolchain, for `fuzz/`, with its own target
/// dir (its builds are instrumented) and what the targets read.
fn fuzz_command(cargo_fuzz: &Path, seeds: &SeedFiles) -> Command {
    let mut cmd = Command::new(cargo_fuzz);
    cmd.current_dir(root())
        .arg("fuzz")
        .env("RUSTUP_TOOLCHAIN", "nightly")
        .env("CARGO_TARGET_DIR", target_dir().join("fuzz-build"))
        .env("FIDIUS_FUZZ_KEY", &seeds.public_key)
        .env("FIDIUS_FUZZ_COMPONENT", &seeds.component)
        .env("FIDIUS_FUZZ_SCRATCH", scratch_dir());
    cmd
}

/// Where the targets write their inputs (and `package` its cache).
fn scratch_dir() -> PathBuf {
    target_dir().join("fuzz").join("scratch")
}

/// cargo-fuzz under `<target>/tools`, installed unless it is there.
fn install() -> Result<PathBuf, String> {
    let tools = target_dir().join("tools");
    let bin = tools.join("bin").join("cargo-fuzz");
    if !bin.is_file() {
        let mut install = cargo();
        install
            .args(["install", "--locked", CARGO_FUZZ, "--root"])
            .arg(&tools);
        status(install)?;
    }
    require_nightly()?;
    Ok(bin)
}

/// The nightly toolchain is preinstalled beside the pinned stable; says so
/// plainly if it is not.
pub(crate) fn require_nightly() -> Result<(), String> {
    let mut nightly = Command::new("rustup");
    nightly.args(["run", "nightly", "rustc", "--version"]);
    output(nightly).map_err(|e| {
        format!("{e}: the nightly toolchain is missing (`rustup toolchain install nightly`)")
    })?;
    Ok(())
}

/// Builds the seed artifacts (once): the polyglot fixture for this host
/// and as a component, release and stripped, packaged and signed with a
/// key of its own.
fn seed_files() -> Result<SeedFiles, String> {
    let dir = target_dir().join("fuzz").join("seeds");
    let key = dir.join("seed");
    let fidius = |args: &[&str]| {
        let mut cmd = crate::tasks::fidius_cli();
        cmd.args(args);
        cmd
    };
    if !dir.join("seed.key").is_file() {
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("failed to create `{}`: {e}", dir.display()))?;
        let mut keygen = fidius(&["keygen", "--out"]);
        keygen.arg(&key);
        status(keygen)?;
    }
    let host = host_triple()?;
    let mut package = fidius(&[
        "package",
        "--manifest-path",
        "tests/fixtures/Cargo.toml",
        "-p",
        "fixture-polyglot",
        "--release",
        "--target",
        &host,
        "--target",
        "wasm32-wasip2",
    ]);
    package
        .arg("--target-dir")
        .arg(dir.join("build"))
        .arg("--key")
        .arg(dir.join("seed.key"))
        .arg("--out")
        .arg(&dir)
        .env("FIDIUS_WIT_PATH", root().join("tests/fixtures/api/wit"))
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "s")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "0");
    status(package)?;
    let artifacts = dir.join("build").join("fidius").join("fixture-polyglot");
    let seeds = SeedFiles {
        native: artifacts.join(&host).join("libfixture_polyglot.so"),
        component: artifacts
            .join("wasm32-wasip2")
            .join("fixture_polyglot.wasm"),
        package: dir.join("fixture-polyglot-0.1.0.fidpkg"),
        manifest: dir.join("fidius.toml"),
        public_key: dir.join("seed.pub"),
    };
    // The package is a gzip'd tar: its manifest, as a parser's seed.
    let mut tar = Command::new("tar");
    tar.arg("-xzOf").arg(&seeds.package).arg("fidius.toml");
    let out = output(tar)?;
    std::fs::write(&seeds.manifest, out.stdout)
        .map_err(|e| format!("failed to write `{}`: {e}", seeds.manifest.display()))?;
    for file in [&seeds.native, &seeds.component, &seeds.package] {
        if !file.is_file() {
            return Err(format!("the seed `{}` was not built", file.display()));
        }
    }
    Ok(seeds)
}

/// This host's target triple, from `rustc -vV`.
pub(crate) fn host_triple() -> Result<String, String> {
    let mut rustc = Command::new("rustc");
    rustc.arg("-vV");
    let out = output(rustc)?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| "`rustc -vV` names no host".to_owned())
}

/// Copies the seeds of `kind` into `corpus` (kept across runs).
fn seed(corpus: &Path, kind: Seeds, seeds: &SeedFiles) -> Result<(), String> {
    std::fs::create_dir_all(corpus)
        .map_err(|e| format!("failed to create `{}`: {e}", corpus.display()))?;
    let files: &[&PathBuf] = match kind {
        Seeds::None => &[],
        Seeds::Manifest => &[&seeds.manifest],
        Seeds::Component => &[&seeds.component],
        Seeds::Artifacts => &[&seeds.native, &seeds.component],
        Seeds::Package => &[&seeds.package],
    };
    for file in files {
        let name = format!(
            "seed-{}",
            file.file_name().and_then(|n| n.to_str()).unwrap_or("file")
        );
        std::fs::copy(file, corpus.join(name))
            .map_err(|e| format!("failed to copy `{}`: {e}", file.display()))?;
    }
    Ok(())
}

/// The figures of libFuzzer's last status line and final stats.
#[derive(Default)]
struct Stats {
    execs: u64,
    cov: u64,
    ft: u64,
    corpus: u64,
}

impl Stats {
    fn read(log: &str) -> Self {
        let mut stats = Stats::default();
        for line in log.lines() {
            if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
                stats.execs = n.trim().parse().unwrap_or(0);
            }
            // `#1234 DONE cov: 56 ft: 78 corp: 9/1kb ...` (or INITED, pulse...)
            if line.starts_with('#') {
                let mut words = line.split_whitespace();
                while let Some(word) = words.next() {
                    let value = || -> u64 {
                        words
                            .clone()
                            .next()
                            .and_then(|v| v.split('/').next())
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0)
                    };
                    match word {
                        "cov:" => stats.cov = value(),
                        "ft:" => stats.ft = value(),
                        "corp:" => stats.corpus = value(),
                        _ => {}
                    }
                }
            }
        }
        stats
    }
}

/// The last `n` lines of `log`.
fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
