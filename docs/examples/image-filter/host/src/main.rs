//! The example host: opens a plugin library, or a signed `.fidpkg`
//! package under a trust policy (native, or WASM in the sandbox), lists what it contains, and runs every
//! `ImageFilter` in it on a small generated image.
//!
//! Usage: `image-filter-host PATH/TO/libimage_filter_plugin.so`, or
//! `image-filter-host PACKAGE.fidpkg --key TRUSTED.pub`

use std::process::ExitCode;

// ANCHOR: host
use fidius::{PluginInfo, PluginLibrary};
use image_filter_api::{ApplyInput, ImageFilterClient};

fn run(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    // Validates the file (format, architecture, fidius metadata) without
    // running any plugin code.
    let library = PluginLibrary::open(path)?;
    println!("{path}:");
    run_library(&library)
}
// ANCHOR_END: host

// ANCHOR: package
use std::sync::Arc;

use fidius::package::{ArtifactKind, Package, PublicKey, TrustPolicy};
use fidius::wasm::{Capabilities, WasmRuntime, WasmSettings};

fn run_package(path: &str, key: &str) -> Result<(), Box<dyn std::error::Error>> {
    // Trust exactly this key; unsigned packages are refused. A package
    // without a native artifact for this host runs its WebAssembly
    // component in the sandbox, granted nothing.
    let sandbox = Arc::new(WasmRuntime::new(WasmSettings::default())?);
    let policy = TrustPolicy::new()
        .trust(PublicKey::from_file(key)?)
        .wasm(sandbox, Capabilities::none());
    // Verifies the signature and every artifact's SHA-256, writes this
    // host's artifact into a private cache from the verified bytes, and
    // validates it there.
    let package = Package::open(path, &policy)?;
    let manifest = package.manifest();
    println!(
        "{path}: package {} v{}, signed by key {}",
        manifest.package.name,
        manifest.package.version,
        package.signer().unwrap_or("none")
    );
    let artifact = package.artifact();
    let how = match artifact.kind {
        ArtifactKind::Wasm => "verified, compiled and sandboxed",
        _ => "verified and cached",
    };
    println!(
        "  artifact {} for {} (sha256 {}…), {how}",
        artifact.path,
        artifact.target,
        &artifact.sha256[..16]
    );
    run_plugins(package.plugins(), |name| package.load(name))
}
// ANCHOR_END: package

fn run_library(library: &PluginLibrary) -> Result<(), Box<dyn std::error::Error>> {
    run_plugins(library.plugins(), |name| library.load(name))
}

/// Lists the plugins, then runs every `ImageFilter` among them.
fn run_plugins(
    plugins: &[PluginInfo],
    load: impl Fn(&str) -> Result<ImageFilterClient, fidius::LoadError>,
) -> Result<(), Box<dyn std::error::Error>> {
    for PluginInfo {
        plugin_name,
        interface_name,
        interface_version,
        interface_hash,
        ..
    } in plugins
    {
        println!(
            "  plugin {plugin_name}: {interface_name} v{interface_version} (hash {interface_hash:#018x})"
        );
    }

    // A 4x2 gradient, RGBA.
    let (width, height) = (4u32, 2u32);
    let pixels: Vec<u8> = (0..width * height)
        .flat_map(|i| {
            let v = (i * 255 / (width * height - 1)) as u8;
            [v, v / 2, 255 - v, 255]
        })
        .collect();

    let name = <dyn image_filter_api::ImageFilter as fidius::Interface>::INFO.name;
    for info in plugins.iter().filter(|p| p.interface_name == name) {
        // Checks the interface, loads the library, returns a typed client.
        let filter = load(&info.plugin_name)?;
        let output = filter.apply(ApplyInput {
            width,
            height,
            pixels: pixels.clone(),
            strength: 1.0,
        })?;
        println!(
            "  {}: changed {} of {} pixels; first pixel {:?} -> {:?}",
            info.plugin_name,
            output.changed,
            width * height,
            &pixels[..4],
            &output.pixels[..4]
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [path] => run(path),
        [path, flag, key] if flag == "--key" => run_package(path, key),
        _ => {
            eprintln!(
                "usage: image-filter-host PATH/TO/PLUGIN_LIBRARY\n       image-filter-host PACKAGE.fidpkg --key TRUSTED.pub"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
