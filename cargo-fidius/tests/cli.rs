//! `cargo fidius` through the real binary.

use std::process::Command;

fn cargo_fidius() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-fidius"));
    cmd.arg("fidius");
    cmd
}

/// Compares `actual` with `tests/snapshots/<name>.txt` (taken on Linux
/// x86_64, where CI runs), the fixtures' directory written as `<fixtures>`;
/// `FIDIUS_BLESS=1` writes the file instead.
fn snapshot(name: &str, actual: &str) {
    let fixtures = fidius_tests::fixtures_target().display().to_string();
    let actual = actual.replace(&fixtures, "<fixtures>");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if fidius_tests::bless() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with FIDIUS_BLESS=1 to write it)",
            path.display()
        )
    });
    assert!(
        actual == expected,
        "the output differs from {} (FIDIUS_BLESS=1 rewrites it):\n{actual}",
        path.display()
    );
}

/// `cargo fidius inspect FILE`: exit code, stdout, stderr.
fn inspect(file: &std::path::Path) -> (Option<i32>, String, String) {
    run(cargo_fidius().arg("inspect").arg(file))
}

#[test]
fn inspect_lists_plugins_and_methods_without_loading() {
    let (code, stdout, stderr) = inspect(&fidius_tests::fixture("fixture_plugins"));
    assert_eq!(code, Some(0), "{stderr}");
    snapshot("inspect_fixture_plugins", &stdout);
}

#[test]
fn inspect_reads_a_wasm_component_without_compiling_it() {
    let (code, stdout, stderr) = inspect(&fidius_tests::wasm_fixture("fixture_features"));
    assert_eq!(code, Some(0), "{stderr}");
    snapshot("inspect_fixture_features_wasm", &stdout);
}

#[test]
fn inspect_reports_a_typed_error_and_exit_code() {
    let (code, stdout, stderr) = inspect(&fidius_tests::fixture("fixture_no_meta"));
    assert_eq!(code, Some(1));
    assert_eq!(stdout, "");
    snapshot("inspect_no_meta.stderr", &stderr);
}

#[test]
fn inspect_shows_optional_methods_metadata_config_and_host() {
    for (fixture, name) in [
        ("evolution_plugin_v2", "inspect_evolution_plugin_v2"),
        ("fixture_features", "inspect_fixture_features"),
        ("fixture_scripted", "inspect_fixture_scripted"),
    ] {
        let (code, stdout, stderr) = inspect(&fidius_tests::fixture(fixture));
        assert_eq!(code, Some(0), "{stderr}");
        snapshot(name, &stdout);
    }
}

fn run(cmd: &mut Command) -> (Option<i32>, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(cmd: &mut Command) -> (String, String) {
    let (code, stdout, stderr) = run(cmd);
    assert_eq!(
        code,
        Some(0),
        "{cmd:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

/// new → build → keygen → package → verify → inspect → a host loads the
/// package and calls it, through the real binary, in a temporary directory.
#[test]
fn the_whole_flow_from_new_to_a_host_loading_the_package() {
    let dir = fidius_tests::scratch("cli_flow");
    // One target dir for the scaffolds, kept between runs.
    let target = fidius_tests::fixtures_target().join("scaffold-target");
    let mut session = Session::new(&dir, &target);

    // Scaffolds.
    let (_, stderr) = session.ok(&["new", "interface", "greeting-api", "--trait", "Greeting"]);
    assert_eq!(stderr, "     Created interface `greeting-api`\n");
    session.ok(&[
        "new",
        "plugin",
        "greeting-plugin",
        "--interface",
        "greeting-api",
    ]);
    session.ok(&[
        "new",
        "host",
        "greeting-host",
        "--interface",
        "greeting-api",
    ]);
    // Refuses to overwrite, and validates names like `cargo new`.
    let (code, _, stderr) = session.run(&["new", "interface", "greeting-api"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("already exists; not overwriting it"),
        "{stderr}"
    );
    let (code, _, stderr) = session.run(&["new", "interface", "1bad"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("cannot start with a digit"), "{stderr}");

    // Each scaffold's generated tests pass right away.
    for krate in ["greeting-api", "greeting-plugin", "greeting-host"] {
        let status = Command::new(env!("CARGO"))
            .args(["test", "--quiet"])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(dir.join(krate))
            .status()
            .unwrap();
        assert!(status.success(), "`cargo test` failed in {krate}");
        // No fidius crate comes from the registry (crates.io's `fidius*`
        // belong to another project).
        let lock = std::fs::read_to_string(dir.join(krate).join("Cargo.lock")).unwrap();
        for block in lock.split("[[package]]") {
            if block.contains("name = \"fidius") {
                assert!(!block.contains("source = \"registry"), "{krate}: {block}");
            }
        }
    }

    // Build, keys, package, verify.
    let manifest = dir.join("greeting-plugin/Cargo.toml");
    let manifest = manifest.to_str().unwrap();
    let target_arg = target.to_str().unwrap();
    let (stdout, _) = session.ok(&[
        "build",
        "--manifest-path",
        manifest,
        "--target-dir",
        target_arg,
        "--message-format",
        "json",
    ]);
    let artifact: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(artifact["reason"], "fidius-artifact");
    assert_eq!(artifact["package"], "greeting-plugin");
    assert_eq!(artifact["kind"], "native");
    assert!(std::path::Path::new(artifact["path"].as_str().unwrap()).is_file());

    let (key_id, stderr) = session.ok(&["keygen", "--out", "release"]);
    let key_id = key_id.trim().to_owned();
    session.name(&key_id, "<release key id>");
    assert_eq!(key_id.len(), 16);
    assert!(
        stderr.contains(&format!("Generated key {key_id}")),
        "{stderr}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("release.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (code, _, stderr) = session.run(&["keygen", "--out", "release"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("release.key` already exists; not overwriting a key"),
        "{stderr}"
    );

    let (_, stderr) = session.ok(&[
        "package",
        "--manifest-path",
        manifest,
        "--target-dir",
        target_arg,
        "--key",
        "release.key",
        "--out",
        "dist",
    ]);
    assert!(
        stderr.contains(&format!(
            "    Packaged greeting-plugin v0.1.0 (1 artifact(s), signed by key {key_id}) to dist/greeting-plugin-0.1.0.fidpkg\n"
        )),
        "{stderr}"
    );
    let package = "dist/greeting-plugin-0.1.0.fidpkg";
    let (_, stderr) = session.ok(&["verify", "--key", "release.pub", package]);
    assert_eq!(
        stderr,
        format!(
            "    Verified `{package}`: greeting-plugin v0.1.0, 1 artifact(s), signed by key {key_id}\n"
        )
    );

    // Inspect, human and JSON.
    let (stdout, _) = session.ok(&["inspect", "--key", "release.pub", package]);
    assert!(
        stdout.contains(&format!("  signature: signed by key {key_id} (verified)\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains("Greeting/Plugin\n  interface: Greeting v1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("    fn handle(Request)->Response\n"),
        "{stdout}"
    );
    let (stdout, _) = session.ok(&["inspect", package, "--message-format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["signature"]["status"], "unknown-key");
    assert_eq!(doc["manifest"]["package"]["name"], "greeting-plugin");
    assert_eq!(doc["plugins"][0]["methods"][0]["name"], "handle");

    // The generated host loads the package under a trust policy.
    let (stdout, _) = ok(Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--"])
        .arg(dir.join(package))
        .arg("--key")
        .arg(dir.join("release.pub"))
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(dir.join("greeting-host")));
    assert_eq!(
        stdout,
        "package greeting-plugin v0.1.0\nloaded Plugin (Greeting v1)\n"
    );

    // Detached signatures.
    let lib = artifact["path"].as_str().unwrap();
    session.ok(&["sign", "--key", "release.key", lib]);
    session.ok(&["verify", "--key", "release.pub", lib]);
    // The key may come from the environment (for CI secrets).
    let secret = std::fs::read_to_string(dir.join("release.key")).unwrap();
    let (_, stderr) = session.ok_with_env(&["sign", lib], ("FIDIUS_SIGNING_KEY", &secret));
    assert!(
        !stderr.contains(secret.lines().last().unwrap()),
        "the key was printed"
    );

    // Distinct exit codes.
    let (other, _) = session.ok(&["keygen", "--out", "other"]);
    session.name(other.trim(), "<other key id>");
    let (code, _, stderr) = session.run(&["verify", "--key", "other.pub", package]);
    assert_eq!(code, Some(4), "unknown key: {stderr}");
    let bytes = std::fs::read(dir.join(package)).unwrap();
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 1;
    std::fs::write(dir.join("flipped.fidpkg"), &flipped).unwrap();
    let (code, _, stderr) = session.run(&["verify", "--key", "release.pub", "flipped.fidpkg"]);
    assert_eq!(code, Some(6), "malformed: {stderr}");
    // Content changed behind a valid container: tampered.
    let mut tar = fidius_tests::fidpkg_tar(&bytes);
    let at = tar.len() - 2048; // inside the artifact's data
    tar[at] ^= 1;
    std::fs::write(
        dir.join("tampered.fidpkg"),
        fidius_tests::fidpkg_frame(&tar),
    )
    .unwrap();
    let (code, _, stderr) = session.run(&["verify", "--key", "release.pub", "tampered.fidpkg"]);
    assert_eq!(code, Some(5), "tampered: {stderr}");
    assert!(stderr.contains("has SHA-256"), "{stderr}");
    let mut bad_sig = lib.to_owned();
    bad_sig.push_str(".sig");
    std::fs::write(
        &bad_sig,
        std::fs::read_to_string(&bad_sig)
            .unwrap()
            .replace("signature = \"", "signature = \"00"),
    )
    .unwrap();
    let (code, _, stderr) = session.run(&["verify", "--key", "release.pub", lib]);
    assert_eq!(code, Some(6), "malformed signature: {stderr}");
    let (code, _, stderr) = session.run(&["verify", "--key", "release.pub", "release.pub"]);
    assert_eq!(code, Some(7), "unsigned: {stderr}");

    // WASM: the interface's WIT, the same plugin built as a component,
    // inspected from its metadata section; the WIT drift check.
    let api_manifest = dir.join("greeting-api/Cargo.toml");
    let api_manifest = api_manifest.to_str().unwrap();
    let (_, stderr) = session.ok(&[
        "wit",
        "--manifest-path",
        api_manifest,
        "--target-dir",
        target_arg,
    ]);
    assert!(stderr.contains("       Wrote Greeting ("), "{stderr}");
    let wit = std::fs::read_to_string(dir.join("greeting-api/wit/greeting.wit")).unwrap();
    assert!(wit.contains("package fidius:greeting@1.0.0;"), "{wit}");
    assert!(
        wit.contains("handle: func(request: request) -> response;"),
        "{wit}"
    );
    session.ok(&[
        "wit",
        "--check",
        "--manifest-path",
        api_manifest,
        "--target-dir",
        target_arg,
    ]);
    // Python: the interface's typed stubs, and a scaffolded plugin, valid
    // Python both.
    let (_, stderr) = session.ok(&[
        "stub",
        "--python",
        "--manifest-path",
        api_manifest,
        "--target-dir",
        target_arg,
    ]);
    assert!(stderr.contains("       Wrote Greeting ("), "{stderr}");
    let stub = std::fs::read_to_string(dir.join("greeting-api/python/greeting.py")).unwrap();
    assert!(
        stub.contains("INTERFACE = \"Greeting\"\nVERSION = 1\nHASH = 0x"),
        "{stub}"
    );
    assert!(
        stub.contains("class Request(TypedDict):\n    text: str"),
        "{stub}"
    );
    assert!(
        stub.contains("class Greeting(Protocol):")
            && stub.contains("def handle(self, request: \"Request\") -> \"Response\": ..."),
        "{stub}"
    );
    session.ok(&[
        "stub",
        "--python",
        "--check",
        "--manifest-path",
        api_manifest,
        "--target-dir",
        target_arg,
    ]);
    let (_, stderr) = session.ok(&[
        "new",
        "plugin",
        "greeting-py",
        "--lang",
        "python",
        "--interface",
        "greeting-api",
    ]);
    assert!(
        stderr.contains("Created Python plugin `greeting-py`"),
        "{stderr}"
    );
    for file in ["greeting_py.py", "greeting.py", "test_greeting_py.py"] {
        let path = dir.join("greeting-py").join(file);
        let parsed = std::process::Command::new("python3")
            .args(["-c", "import ast, sys; ast.parse(open(sys.argv[1]).read())"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(parsed.success(), "{} is not valid Python", path.display());
    }
    let plugin = std::fs::read_to_string(dir.join("greeting-py/greeting_py.py")).unwrap();
    assert!(
        plugin.contains("@api.plugin()\nclass Plugin:")
            && plugin.contains("return {\"text\": \"\", \"length\": 0}"),
        "{plugin}"
    );
    // The scaffold, packaged as a signed `python` artifact: its module,
    // the stubs and pyproject.toml (not its test), plugins read from its
    // declaration.
    let (_, stderr) = session.ok(&["package", "--python", "greeting-py", "--key", "release.key"]);
    assert!(
        stderr
            .contains("Packaged greeting-py v0.1.0 (Python, 3 file(s), 1 plugin(s), signed by key"),
        "{stderr}"
    );
    let python_package = "greeting-py/dist/greeting-py-0.1.0.fidpkg";
    session.ok(&["verify", "--key", "release.pub", python_package]);
    let (stdout, _) = session.ok(&["inspect", python_package]);
    assert!(
        stdout.contains("python python3 artifacts/python3/greeting_py.tar")
            && stdout.contains("Greeting/Plugin: Greeting v1"),
        "{stdout}"
    );
    assert!(!dir.join("greeting-py/__pycache__").exists());

    let (stdout, _) = session.ok(&[
        "build",
        "--manifest-path",
        manifest,
        "--target-dir",
        target_arg,
        "--target",
        "wasm32-wasip2",
        "--message-format",
        "json",
    ]);
    let component: serde_json::Value =
        serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(component["kind"], "wasm");
    let component = component["path"].as_str().unwrap().to_owned();
    let (stdout, _) = session.ok(&["inspect", &component]);
    assert!(stdout.contains("1 plugin(s), wasm32 component"), "{stdout}");
    assert!(
        stdout.contains("Greeting/Plugin\n  interface: Greeting v1"),
        "{stdout}"
    );
    let api_lib = dir.join("greeting-api/src/lib.rs");
    let source = std::fs::read_to_string(&api_lib).unwrap();
    std::fs::write(
        &api_lib,
        source.replacen(
            "Send + Sync {",
            "Send + Sync {\n    fn extra(&self) -> u32;",
            1,
        ),
    )
    .unwrap();
    let (code, _, stderr) = session.run(&[
        "wit",
        "--check",
        "--manifest-path",
        api_manifest,
        "--target-dir",
        target_arg,
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("the committed WIT is out of date") && stderr.contains("differs"),
        "{stderr}"
    );
    let (code, _, stderr) = session.run(&[
        "stub",
        "--python",
        "--check",
        "--manifest-path",
        api_manifest,
        "--target-dir",
        target_arg,
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("the Python stubs are out of date"),
        "{stderr}"
    );
    std::fs::write(&api_lib, source).unwrap();

    // A build failure passes cargo's exit code through.
    std::fs::write(dir.join("greeting-plugin/src/lib.rs"), "this is not rust").unwrap();
    let (code, _, _) = session.run(&[
        "build",
        "--manifest-path",
        manifest,
        "--target-dir",
        target_arg,
        "-q",
    ]);
    assert_eq!(code, Some(101));
    // A target that is not installed says how to install it.
    let (code, _, stderr) = session.run(&[
        "build",
        "--manifest-path",
        manifest,
        "--target-dir",
        target_arg,
        "--target",
        "riscv64gc-unknown-none-elf",
    ]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("rustup target add riscv64gc-unknown-none-elf"),
        "{stderr}"
    );

    snapshot("whole_flow", &session.finish());
}

/// Runs `cargo fidius` in a directory and keeps a transcript of every
/// command and its output, normalized so it is the same on every machine
/// and run: the directories, key ids and digests by placeholders, and
/// cargo's own progress lines (which depend on what is already built)
/// left out.
struct Session {
    dir: std::path::PathBuf,
    names: Vec<(String, String)>,
    transcript: String,
}

impl Session {
    fn new(dir: &std::path::Path, target: &std::path::Path) -> Self {
        Self {
            dir: dir.to_owned(),
            names: vec![
                (target.display().to_string(), "<target>".into()),
                (dir.display().to_string(), "<dir>".into()),
            ],
            transcript: String::new(),
        }
    }

    /// From now on writes `text` as `name`.
    fn name(&mut self, text: &str, name: &str) {
        self.names.push((text.to_owned(), name.to_owned()));
    }

    fn run(&mut self, args: &[&str]) -> (Option<i32>, String, String) {
        self.run_with(args, None)
    }

    fn ok(&mut self, args: &[&str]) -> (String, String) {
        self.ok_with(args, None)
    }

    fn ok_with_env(&mut self, args: &[&str], env: (&str, &str)) -> (String, String) {
        self.ok_with(args, Some(env))
    }

    fn ok_with(&mut self, args: &[&str], env: Option<(&str, &str)>) -> (String, String) {
        let (code, stdout, stderr) = self.run_with(args, env);
        assert_eq!(
            code,
            Some(0),
            "cargo fidius {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        (stdout, stderr)
    }

    fn run_with(
        &mut self,
        args: &[&str],
        env: Option<(&str, &str)>,
    ) -> (Option<i32>, String, String) {
        let mut cmd = cargo_fidius();
        cmd.args(args).current_dir(&self.dir);
        if let Some((key, value)) = env {
            cmd.env(key, value);
        }
        let (code, stdout, stderr) = run(&mut cmd);
        let mut entry = format!("$ cargo fidius {}", args.join(" "));
        entry = entry.trim_end().to_owned();
        if let Some((key, _)) = env {
            entry = format!("$ {key}=… cargo fidius {}", args.join(" "));
        }
        entry.push('\n');
        if code != Some(0) {
            entry.push_str(&format!("[exit {}]\n", code.unwrap_or(-1)));
        }
        for (stream, text) in [("stdout", &stdout), ("stderr", &stderr)] {
            let text = self.normalize(text);
            if !text.is_empty() {
                entry.push_str(&format!("--- {stream}\n{text}"));
            }
        }
        self.transcript.push_str(&entry);
        self.transcript.push('\n');
        (code, stdout, stderr)
    }

    fn normalize(&self, text: &str) -> String {
        const CARGO: [&str; 12] = [
            "Compiling",
            "Finished",
            "Checking",
            "Blocking",
            "Locking",
            "Updating",
            "Adding",
            "Downloaded",
            "Downloading",
            "Running",
            "Fresh",
            "Dirty",
        ];
        let mut out = String::new();
        let mut in_cargo_diagnostic = false;
        for line in text.lines() {
            let first = line.split_whitespace().next().unwrap_or("");
            if CARGO.contains(&first) {
                continue;
            }
            // rustc's diagnostics (the deliberately broken build) vary
            // with the compiler version: leave them out.
            if line.starts_with("error") || line.starts_with("warning") {
                in_cargo_diagnostic = line.starts_with("error[")
                    || line.starts_with("error: expected")
                    || line.starts_with("error: could not compile");
            }
            if in_cargo_diagnostic {
                continue;
            }
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// The transcript with directories, key ids, digests and artifact sizes
    /// (which vary with the toolchain) replaced by placeholders.
    fn finish(&self) -> String {
        let mut text = self.transcript.clone();
        for (raw, name) in &self.names {
            text = text.replace(raw.as_str(), name);
        }
        text.lines()
            .map(|line| sizes(&hex_digests(line)) + "\n")
            .collect()
    }
}

/// `line` with an artifact size (`N bytes,` or `"size": N`) as `<n>`.
fn sizes(line: &str) -> String {
    for (before, after) in [("(", " bytes,"), ("\"size\": ", ",")] {
        if let Some(end) = line.find(after)
            && let Some(start) = line[..end].rfind(before)
            && line[start + before.len()..end]
                .bytes()
                .all(|b| b.is_ascii_digit())
        {
            return format!("{}{before}<n>{}", &line[..start], &line[end..]);
        }
    }
    line.to_owned()
}

/// `line` with every run of 64 hex digits (a SHA-256) as `<sha256>`.
fn hex_digests(line: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in line.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() {
            run.push(c);
            continue;
        }
        out.push_str(if run.len() == 64 { "<sha256>" } else { &run });
        run.clear();
        out.push(c);
    }
    out.pop();
    out
}
