//! `cargo xtask memcheck`: the native end-to-end tests under valgrind's
//! memcheck (Debian's valgrind, installed with apt when missing). A
//! definite leak, or any invalid read, write, free or use of an
//! uninitialised value, fails the run; `xtask/valgrind.supp` holds the
//! suppressions for the toolchain's own reports, each with its reason.

use std::process::Command;

use crate::run::{apt_install, cargo, output, root, status};

/// The test binaries of `fidius-tests` that load native plugins, and the
/// filter that picks their native tests (`None`: all of them).
const TESTS: &[(&str, Option<&str>)] = &[
    ("native", None),
    ("configured", None),
    ("streams", Some("native::")),
    ("semantics", Some("native::")),
    ("host_callbacks", Some("native::")),
    ("stream_stress", Some("native_")),
];

pub(crate) fn memcheck() -> Result<(), String> {
    apt_install(&["valgrind"])?;
    let fixtures = crate::tasks::build_fixtures()?;

    // The whole workspace's test binaries, as `cargo test --workspace`
    // builds them: after the test command's own run nothing is rebuilt
    // (building one package alone would resolve other features).
    let mut tests = cargo();
    tests.args(["test", "--workspace", "--no-run", "--message-format=json"]);
    let out = output(tests)?;
    let executables = executables(&String::from_utf8_lossy(&out.stdout));

    for (name, filter) in TESTS {
        let exe = executables
            .iter()
            .find(|(test, _)| test == name)
            .map(|(_, exe)| exe)
            .ok_or_else(|| format!("cargo built no test binary `{name}`"))?;
        let mut valgrind = Command::new("valgrind");
        valgrind
            .args([
                "--tool=memcheck",
                "--leak-check=full",
                "--show-leak-kinds=definite",
                "--errors-for-leak-kinds=definite",
                "--error-exitcode=97",
                "--num-callers=40",
                // Symbols of plugin libraries that were unloaded stay known,
                // so a report from one names its functions.
                "--keep-debuginfo=yes",
            ])
            .arg(format!(
                "--suppressions={}",
                root().join("xtask/valgrind.supp").display()
            ))
            .arg(exe)
            .arg("--test-threads=1")
            .args(filter.iter())
            .current_dir(root())
            .env("FIDIUS_FIXTURES_DIR", &fixtures)
            // A panic in a plugin with backtraces on makes that library's
            // std parse and cache its own debug information, which it never
            // frees: once the library is unloaded, memcheck reports the
            // cache as lost (tens of MiB). That is the toolchain's, not
            // fidius's (see docs/src/reliability.md); run without it.
            .env("RUST_BACKTRACE", "0");
        status(valgrind).map_err(|e| format!("memcheck of the `{name}` tests: {e}"))?;
    }
    Ok(())
}

/// `(test target name, executable)` of every test binary of `fidius-tests`
/// in cargo's JSON messages (the binaries are named `<target>-<hash>`).
fn executables(messages: &str) -> Vec<(String, String)> {
    const KEY: &str = "\"executable\":\"";
    messages
        .lines()
        .filter(|line| line.contains("\"compiler-artifact\"") && line.contains("#fidius-tests@"))
        .filter_map(|line| {
            let start = line.find(KEY)? + KEY.len();
            let exe = &line[start..start + line[start..].find('"')?];
            let file = std::path::Path::new(exe).file_name()?.to_str()?;
            let (name, _hash) = file.rsplit_once('-')?;
            Some((name.to_owned(), exe.to_owned()))
        })
        .collect()
}
