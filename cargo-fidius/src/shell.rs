//! Messages for people, on stderr, cargo-style: status lines with the verb
//! right-aligned to 12 columns in bold green, `error:` in bold red, colour
//! only when stderr is a terminal (and `NO_COLOR` is unset); `-q` silences
//! status lines. stdout is for data.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

/// Silences [`status`] lines (`-q`).
pub(crate) fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether status lines are silenced.
pub(crate) fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// `   Packaging demo v0.1.0 (…)`.
pub(crate) fn status(verb: &str, message: impl std::fmt::Display) {
    if QUIET.load(Ordering::Relaxed) {
        return;
    }
    if colour() {
        eprintln!("\x1b[1;32m{verb:>12}\x1b[0m {message}");
    } else {
        eprintln!("{verb:>12} {message}");
    }
}

/// `warning: …`.
pub(crate) fn warn(message: impl std::fmt::Display) {
    let label = if colour() {
        "\x1b[1;33mwarning\x1b[0m"
    } else {
        "warning"
    };
    eprintln!("{label}: {message}");
}

pub(crate) fn error(e: &anyhow::Error) {
    let label = if colour() {
        "\x1b[1;31merror\x1b[0m"
    } else {
        "error"
    };
    eprintln!("{label}: {e}");
    // Library errors often repeat their source in their own message; print
    // each cause only when it adds something.
    let mut shown = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !shown.contains(&text) {
            eprintln!("\nCaused by:\n  {text}");
            shown.push_str(&text);
        }
    }
}
