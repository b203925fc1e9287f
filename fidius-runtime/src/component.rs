//! Reading a WebAssembly component's fidius metadata without compiling or
//! instantiating it: `#[plugin_impl]` puts each plugin's metadata record
//! (the same bytes as in a native library) into a `fidius-meta` custom
//! section of the component's core module.

use std::path::Path;

use fidius_guest::meta;

use crate::{LoadError, PluginInfo};

/// The custom section holding the records.
pub(crate) const META_SECTION: &str = "fidius-meta";

/// What `describe` calls a component's target.
pub(crate) const COMPONENT_TARGET: &str = "wasm32 component";

/// Whether `bytes` start like a WebAssembly binary.
pub(crate) fn is_wasm(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\0asm")
}

/// Adds a `fidius-meta` custom section holding the metadata `records`
/// (see `fidius_guest::meta::foreign_record`) to the component in `bytes`
/// (read from `path`), which was built from an interface's WIT by another
/// toolchain; returns the stamped component and the plugins it now lists.
///
/// # Errors
/// [`LoadError::NotAComponent`], [`LoadError::MetadataPresent`] when it
/// already has metadata, or what reading the new section back finds wrong
/// with `records`.
pub fn stamp_component(
    path: &Path,
    bytes: &[u8],
    records: &[u8],
) -> Result<(Vec<u8>, Vec<PluginInfo>), LoadError> {
    match plugins(path, bytes) {
        Err(LoadError::NoComponentMetadata { .. }) => {}
        Ok(existing) => {
            return Err(LoadError::MetadataPresent {
                path: path.to_owned(),
                plugins: existing
                    .iter()
                    .map(|p| format!("{} ({})", p.plugin_name, p.interface_name))
                    .collect(),
            });
        }
        Err(e) => return Err(e),
    }
    // A custom section (id 0): its size, then the name and the data, sizes
    // as unsigned LEB128. Appended, it is the component's last section.
    fn leb128(out: &mut Vec<u8>, mut n: usize) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut content = Vec::with_capacity(records.len() + META_SECTION.len() + 2);
    leb128(&mut content, META_SECTION.len());
    content.extend_from_slice(META_SECTION.as_bytes());
    content.extend_from_slice(records);
    let mut stamped = Vec::with_capacity(bytes.len() + content.len() + 6);
    stamped.extend_from_slice(bytes);
    stamped.push(0);
    leb128(&mut stamped, content.len());
    stamped.extend_from_slice(&content);
    let plugins = plugins(path, &stamped)?;
    Ok((stamped, plugins))
}

/// The plugins of the component in `bytes` (read from `path`).
pub(crate) fn plugins(path: &Path, bytes: &[u8]) -> Result<Vec<PluginInfo>, LoadError> {
    decode(path, &records(path, bytes)?)
}

/// The contents of the component's `fidius-meta` sections, one after
/// another.
pub(crate) fn records(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, LoadError> {
    let not_component = |detail: String| LoadError::NotAComponent {
        path: path.to_owned(),
        detail,
    };
    let mut sections = Vec::new();
    let mut saw_component = false;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| not_component(e.to_string()))?;
        match payload {
            wasmparser::Payload::Version { encoding, .. } => {
                if !saw_component && encoding != wasmparser::Encoding::Component {
                    return Err(not_component(
                        "it is a core WebAssembly module, not a component (build it for \
                         `wasm32-wasip2`)"
                            .into(),
                    ));
                }
                saw_component = true;
            }
            wasmparser::Payload::CustomSection(reader) if reader.name() == META_SECTION => {
                sections.push(reader.data().to_vec());
            }
            _ => {}
        }
    }
    if sections.is_empty() {
        return Err(LoadError::NoComponentMetadata {
            path: path.to_owned(),
        });
    }
    Ok(sections.concat())
}

/// The plugins of the `fidius-meta` records in `records` (the sections of
/// a component, one after another) read from `path`.
pub(crate) fn decode(path: &Path, records: &[u8]) -> Result<Vec<PluginInfo>, LoadError> {
    let malformed = |source| LoadError::MalformedMetadata {
        path: path.to_owned(),
        symbol: META_SECTION.to_owned(),
        source,
    };
    let mut plugins = Vec::new();
    let mut rest = records;
    while !rest.is_empty() {
        let len = meta::record_len(rest).map_err(malformed)?;
        let record = rest.get(..len).ok_or_else(|| {
            malformed(meta::MetaError::Truncated {
                offset: 0,
                needed: len,
                available: rest.len(),
            })
        })?;
        let info = meta::decode(record).map_err(malformed)?;
        crate::error::check_versions(path, info.abi_version, info.wire_version)?;
        plugins.push(info);
        rest = &rest[len..];
    }
    // The linker concatenates the records in no fixed order (it varies
    // between builds of the same source): list them in a stable one.
    plugins.sort_by(|a, b| {
        (&a.interface_name, &a.plugin_name).cmp(&(&b.interface_name, &b.plugin_name))
    });
    Ok(plugins)
}
