//! The package manifest parser and its checks on arbitrary bytes. What
//! parses must write out (`to_toml`) and parse again to the same manifest.
#![no_main]

use std::path::Path;

use fidius_runtime::package::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("manifest.toml");
    match Manifest::from_bytes(path, data) {
        Ok(manifest) => {
            let text = manifest.to_toml();
            let again =
                Manifest::from_bytes(path, text.as_bytes()).expect("a written manifest parses");
            assert_eq!(again, manifest);
        }
        Err(e) => drop(e.to_string()),
    }
});
