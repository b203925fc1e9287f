//! C guests: the bindings come from `wit-bindgen c` (the wit-bindgen-c
//! library, so no extra tool), clang compiles them with the plugin's
//! sources against wasi-libc for WASI preview 1 as a reactor, and the
//! module is made a component with the preview 1 adapter.

use std::process::Command;

use anyhow::Context as _;

use super::{Inputs, componentize, run, tool};

/// What to install on Debian for C guests.
pub(crate) const INSTALL: &str = "install clang, lld and wasi-libc (Debian: `apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32`)";

pub(crate) fn build(inputs: &Inputs<'_>) -> anyhow::Result<Vec<u8>> {
    let clang = tool("FIDIUS_CLANG", "clang", &["--version"], INSTALL)?;
    let (mut resolve, world) = componentize::resolve(inputs.wit, inputs.world)?;
    let bindings = inputs.work.join("bindings");
    std::fs::create_dir_all(&bindings)?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world, &mut files)
        .context("`wit-bindgen c` failed on the interface's WIT")?;
    let mut sources = Vec::new();
    for (name, bytes) in files.iter() {
        let path = bindings.join(name);
        let bytes = if name.ends_with(".c") {
            dtor_names(&String::from_utf8_lossy(bytes)).into_bytes()
        } else {
            bytes.to_vec()
        };
        std::fs::write(&path, bytes)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
        if name.ends_with(".c") || name.ends_with(".o") {
            sources.push(path);
        }
    }
    let dir = &inputs.guest.dir;
    let source = dir.join(&inputs.guest.source);
    // `source` is a file, or a directory of `.c` files.
    if source.is_dir() {
        let mut found: Vec<_> = std::fs::read_dir(&source)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "c"))
            .collect();
        found.sort();
        sources.extend(found);
    } else {
        sources.push(source);
    }
    let module = inputs.work.join("module.wasm");
    run(
        "clang",
        Command::new(clang)
            .args([
                "--target=wasm32-wasi",
                "-mexec-model=reactor",
                "-O2",
                "-Wall",
                "-Werror=implicit-function-declaration",
            ])
            .arg("-I")
            .arg(&bindings)
            .arg("-I")
            .arg(dir)
            .args(&sources)
            .arg("-o")
            .arg(&module),
    )
    .map_err(|e| {
        e.context(format!(
            "the C compiler failed; if it cannot find wasm32-wasi headers or libraries, {INSTALL}"
        ))
    })?;
    let module = std::fs::read(&module)?;
    componentize::component(&module)
}

/// wit-bindgen-c 0.63 exports a resource's destructor as
/// `<interface>#[dtor]<snake_name>`, but the component model (and
/// wit-component, which ignores the misnamed export without a word) wants
/// the resource's WIT name, `#[dtor]<kebab-name>`: without this the
/// resources get no destructor and the plugin never learns that the host
/// dropped a stream (upstream wit-bindgen PR #1341).
fn dtor_names(source: &str) -> String {
    const MARK: &str = "#[dtor]";
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(at) = rest.find(MARK) {
        let (before, after) = rest.split_at(at + MARK.len());
        out.push_str(before);
        let end = after.find('"').unwrap_or(after.len());
        out.push_str(&after[..end].replace('_', "-"));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn destructors_get_their_wit_names() {
        let generated = "__attribute__((__export_name__(\"a:b/c@1.0.0#[dtor]count_stream\")))\nvoid x_dtor(count_stream_t *arg);";
        assert_eq!(
            super::dtor_names(generated),
            "__attribute__((__export_name__(\"a:b/c@1.0.0#[dtor]count-stream\")))\nvoid x_dtor(count_stream_t *arg);"
        );
    }
}
