//! Messages for people, on stderr, cargo-style: `error:` in bold red when
//! stderr is a terminal, plain otherwise.

use std::io::IsTerminal;

pub(crate) fn error(e: &anyhow::Error) {
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let label = if colour {
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
