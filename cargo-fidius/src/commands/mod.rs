//! The subcommands.

mod inspect;

/// Exit code for a failed command (documented in `docs/src/cli.md`).
pub(crate) const EXIT_FAILURE: u8 = 1;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    Inspect(inspect::Inspect),
}

impl Command {
    pub(crate) fn exec(self) -> anyhow::Result<()> {
        match self {
            Self::Inspect(cmd) => cmd.exec(),
        }
    }
}

pub(crate) fn exit_code(_error: &anyhow::Error) -> u8 {
    EXIT_FAILURE
}
