//! The example host: opens a plugin library, lists what it contains, and
//! runs every `ImageFilter` in it on a small generated image.
//!
//! Usage: `image-filter-host PATH/TO/libimage_filter_plugin.so`

use std::process::ExitCode;

// ANCHOR: host
use fidius::{PluginInfo, PluginLibrary};
use image_filter_api::{ApplyInput, ImageFilterClient};

fn run(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    // Validates the file (format, architecture, fidius metadata) without
    // running any plugin code.
    let library = PluginLibrary::open(path)?;
    println!("{path}:");
    for PluginInfo {
        plugin_name,
        interface_name,
        interface_version,
        interface_hash,
        ..
    } in library.plugins()
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

    for info in library.plugins_for::<ImageFilterClient>() {
        // Checks the interface, loads the library, returns a typed client.
        let filter: ImageFilterClient = library.load(&info.plugin_name)?;
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
// ANCHOR_END: host

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: image-filter-host PATH/TO/PLUGIN_LIBRARY");
        return ExitCode::from(2);
    };
    match run(&path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
