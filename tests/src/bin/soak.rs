//! `soak [--calls N] [--threads N]`: the long form of the soak (see
//! `fidius_tests::soak`): the hostile mix, then the same number of good
//! calls only, and the figures of both with the cost of containment per
//! backend. `cargo xtask soak` runs it in release mode.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use fidius_tests::soak::{self, BACKENDS, Settings};

fn main() -> ExitCode {
    let mut settings = Settings {
        threads: 16,
        calls: 1_000_000,
        hostile: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .and_then(|v| v.replace('_', "").parse::<u64>().ok());
        match (arg.as_str(), value) {
            ("--calls", Some(n)) => settings.calls = n,
            ("--threads", Some(n)) => settings.threads = n as usize,
            _ => {
                eprintln!("usage: soak [--calls N] [--threads N]");
                return ExitCode::from(2);
            }
        }
    }
    let run = |settings| match soak::run(settings) {
        Ok(report) => {
            println!("{report}");
            Some(report)
        }
        Err(e) => {
            eprintln!("error: {e}");
            None
        }
    };
    let Some(hostile) = run(settings) else {
        return ExitCode::FAILURE;
    };
    let Some(clean) = run(Settings {
        hostile: false,
        ..settings
    }) else {
        return ExitCode::FAILURE;
    };
    println!("cost of containment (good-calls-only rate / hostile-mix rate):");
    for backend in BACKENDS {
        println!(
            "  {backend:?}: {:.0} / {:.0} calls/s = {:.2}x",
            clean.rate(backend),
            hostile.rate(backend),
            clean.rate(backend) / hostile.rate(backend)
        );
    }
    ExitCode::SUCCESS
}
