//! Python guests: componentize-py builds the component from the WIT and the
//! module (its interpreter and the module's imports are bundled in it).

use std::process::Command;

use super::{Inputs, run, tool};

/// The componentize-py version the docs and the tests use.
pub(crate) const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

pub(crate) fn build(inputs: &Inputs<'_>) -> anyhow::Result<Vec<u8>> {
    let exe = tool(
        "FIDIUS_COMPONENTIZE_PY",
        "componentize-py",
        &["--version"],
        &format!("install it with `pip install {COMPONENTIZE_PY}`"),
    )?;
    let module = inputs.guest.source.trim_end_matches(".py");
    let out = inputs.work.join("component.wasm");
    run(
        "componentize-py",
        Command::new(exe)
            .arg("-d")
            .arg(inputs.wit)
            .arg("-w")
            .arg(inputs.world)
            .arg("componentize")
            .arg("-p")
            .arg(&inputs.guest.dir)
            .arg(module)
            .arg("-o")
            .arg(&out),
    )?;
    std::fs::read(&out).map_err(Into::into)
}
