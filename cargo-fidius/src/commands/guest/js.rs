//! JavaScript guests: componentize-js (StarlingMonkey, from npm) builds the
//! component from the WIT and the module, driven by a small node script
//! (its `componentize` function; the `jco componentize` command line of
//! jco 1.35 cannot read WIT paths with the preview2-shim it pulls in).
//!
//! A JavaScript guest can import only what its world imports, and
//! StarlingMonkey has no file API of its own, so the world it is built
//! against is the plugin world plus `wasi:filesystem` (a deny-all host
//! grants no directory, so this adds no authority). The WASI WIT comes
//! from jco, which componentize-js depends on.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use super::{Inputs, run, tool};

/// The componentize-js version the scaffold's `package.json` and the tests
/// use.
pub(crate) const COMPONENTIZE_JS: &str = "0.23.0";

const PACKAGE: &str = "@bytecodealliance/componentize-js";

/// The `node_modules` holding componentize-js: `$FIDIUS_NODE_MODULES`, or
/// the project's own (or a parent's, as node resolves packages).
fn node_modules(project: &Path) -> anyhow::Result<PathBuf> {
    let holds = |dir: &Path| dir.join(PACKAGE).join("package.json").is_file();
    if let Some(dir) = std::env::var_os("FIDIUS_NODE_MODULES").map(PathBuf::from) {
        if holds(&dir) {
            return Ok(dir);
        }
        bail!(
            "`$FIDIUS_NODE_MODULES` (`{}`) holds no `{PACKAGE}`; install it there with \
             `npm install --prefix <dir> {PACKAGE}@{COMPONENTIZE_JS}`",
            dir.display()
        );
    }
    let found = project
        .ancestors()
        .map(|d| d.join("node_modules"))
        .find(|d| holds(d));
    found.with_context(|| {
        format!(
            "`{PACKAGE}` is not installed: run `npm install` in `{}` (its package.json lists it), \
             or set `$FIDIUS_NODE_MODULES` to a node_modules directory holding it",
            project.display()
        )
    })
}

pub(crate) fn build(inputs: &Inputs<'_>) -> anyhow::Result<Vec<u8>> {
    let node = tool(
        "FIDIUS_NODE",
        "node",
        &["--version"],
        "install Node.js 18 or newer (e.g. `apt-get install nodejs npm`)",
    )?;
    let modules = node_modules(&inputs.guest.dir)?;
    let wit = world_with_filesystem(inputs, &modules)?;
    let entry = modules.join(PACKAGE).join("src").join("componentize.js");
    let script = inputs.work.join("componentize.mjs");
    // Nothing StarlingMonkey would import on its own (stdio, randomness,
    // clocks, HTTP): the guest imports what its world lists.
    let text = format!(
        "import {{ componentize }} from {entry};\n\
         import {{ writeFile }} from 'node:fs/promises';\n\
         const [sourcePath, witPath, worldName, out] = process.argv.slice(2);\n\
         const {{ component }} = await componentize({{\n  \
         sourcePath, witPath, worldName,\n  \
         disableFeatures: ['stdio', 'random', 'clocks', 'http', 'fetch-event'],\n}});\n\
         await writeFile(out, component);\n",
        entry = serde_json::to_string(&url(&entry))?,
    );
    std::fs::write(&script, text)
        .with_context(|| format!("failed to write `{}`", script.display()))?;
    let out = inputs.work.join("component.wasm");
    run(
        "componentize-js",
        Command::new(node)
            .arg(&script)
            .arg(inputs.guest.dir.join(&inputs.guest.source))
            .arg(&wit)
            .arg(inputs.world)
            .arg(&out),
    )?;
    std::fs::read(&out).map_err(Into::into)
}

/// The WASI version of the WIT jco ships (what wasmtime 48 provides too).
const WASI: &str = "0.2.12";

/// A WIT directory whose world `inputs.world` is the interface's plugin
/// world plus `wasi:filesystem`.
fn world_with_filesystem(inputs: &Inputs<'_>, modules: &Path) -> anyhow::Result<PathBuf> {
    let dir = inputs.work.join("wit");
    let deps = dir.join("deps");
    let builtin = modules
        .join("@bytecodealliance/jco/lib/wit/builtin")
        .join(WASI);
    let copy = |from: &Path, to: &Path| -> anyhow::Result<()> {
        std::fs::create_dir_all(to.parent().context("no parent")?)?;
        std::fs::copy(from, to).with_context(|| format!("failed to copy `{}`", from.display()))?;
        Ok(())
    };
    copy(inputs.wit, &deps.join("interface").join("interface.wit"))?;
    for package in ["filesystem", "io", "clocks"] {
        let from = builtin.join(format!("wasi-{package}")).join("package.wit");
        if !from.is_file() {
            bail!(
                "the WASI WIT that jco ships is missing (`{}`); reinstall `{PACKAGE}@{COMPONENTIZE_JS}`",
                from.display()
            );
        }
        copy(&from, &deps.join(package).join("package.wit"))?;
    }
    let package = wit_package(inputs.wit)?;
    let (name, version) = package.split_once('@').unwrap_or((package.as_str(), ""));
    let version = if version.is_empty() {
        String::new()
    } else {
        format!("@{version}")
    };
    let world = format!(
        "package fidius:javascript-guest;\n\n\
         /// The plugin world, plus the WASI file system a JavaScript guest reads\n\
         /// granted directories through.\n\
         world {world} {{\n    \
         include {name}/{world}{version};\n    \
         import wasi:filesystem/preopens@{WASI};\n    \
         import wasi:filesystem/types@{WASI};\n}}\n",
        world = inputs.world,
    );
    std::fs::write(dir.join("world.wit"), world)?;
    Ok(dir)
}

/// The package a WIT file declares (`fidius:polyglot@1.0.0`).
fn wit_package(wit: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(wit)?;
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("package "))
        .with_context(|| format!("`{}` has no `package` line", wit.display()))?;
    Ok(line.trim_end_matches(';').to_owned())
}

/// A `file://` URL of an absolute path (node's ESM `import` wants one).
fn url(path: &Path) -> String {
    format!("file://{}", path.display())
}
