//! The one helper every subprocess goes through: echoes the command like
//! cargo does, runs it from the repository root, and turns a failure into
//! an error naming the command.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the repository root")
        .to_owned()
}

/// The cargo that runs us (`$CARGO`), or `cargo`, with incremental
/// compilation off unless the caller set `CARGO_INCREMENTAL`: the tasks
/// build from scratch or once, and the incremental caches would double the
/// workspace's share of the target dir.
pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    if std::env::var_os("CARGO_INCREMENTAL").is_none() {
        cmd.env("CARGO_INCREMENTAL", "0");
    }
    cmd
}

/// `<target-dir>`: `$CARGO_TARGET_DIR` or `<root>/target`.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Runs `cmd` with inherited stdio.
pub(crate) fn status(mut cmd: Command) -> Result<(), String> {
    let text = describe(&cmd);
    eprintln!("\x20    Running `{text}`");
    let status = cmd
        .status()
        .map_err(|e| format!("failed to start `{text}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{text}` failed ({status})"))
    }
}

/// Runs `cmd` capturing stdout (stderr inherited).
pub(crate) fn output(mut cmd: Command) -> Result<Output, String> {
    let text = describe(&cmd);
    eprintln!("\x20    Running `{text}`");
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("failed to start `{text}`: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!("`{text}` failed ({})", out.status))
    }
}

/// Installs Debian's `packages` with apt when one is missing: as root (CI),
/// or through sudo.
pub(crate) fn apt_install(packages: &[&str]) -> Result<(), String> {
    let mut have = Command::new("dpkg");
    have.arg("-s").args(packages);
    if have.output().is_ok_and(|o| o.status.success()) {
        return Ok(());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let apt = || {
        if root {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.arg("apt-get");
            sudo
        }
    };
    let mut update = apt();
    update.args(["update", "-qq"]);
    status(update)?;
    let mut install = apt();
    install
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive");
    status(install)
}
