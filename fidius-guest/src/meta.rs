//! The static metadata record: a self-describing, pointer-free byte string
//! that `#[plugin_impl]` embeds in the library as an exported data symbol.
//!
//! Because it contains no pointers, its bytes in the file are final (no
//! relocations), so the runtime and `cargo fidius inspect` read it with an
//! object-file parser **without running plugin code**. The encoder is a
//! `const fn` so the record is built at compile time; the decoder checks
//! every length and returns a [`MetaError`] for anything malformed.
//!
//! Layout (all integers little-endian), specified in `docs/src/abi.md`:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `FIDIUSMD` |
//! | 8 | 2 | layout version (1) |
//! | 10 | 1 | buffer strategy |
//! | 11 | 1 | reserved (0) |
//! | 12 | 4 | total length of the record in bytes |
//! | 16 | 4 | ABI version |
//! | 20 | 4 | wire version |
//! | 24 | 4 | interface version |
//! | 28 | 4 | method count |
//! | 32 | 8 | interface hash |
//! | 40 | … | strings, each a `u16` length then UTF-8 bytes: fidius version, interface name, plugin name, then per method its name and canonical signature |

use crate::InterfaceInfo;
use crate::abi::{ABI_VERSION, WIRE_VERSION};

/// Magic at the start of a metadata record.
pub const MAGIC: [u8; 8] = *b"FIDIUSMD";
/// Layout version of the record this crate writes.
pub const LAYOUT_VERSION: u16 = 1;
/// Size of the fixed part before the strings.
pub const HEADER_LEN: usize = 40;

/// Input to [`encode`]: what `#[plugin_impl]` knows at compile time.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    /// The interface implemented.
    pub interface: &'static InterfaceInfo,
    /// Plugin name.
    pub plugin_name: &'static str,
}

const fn str_len(s: &str) -> usize {
    2 + s.len()
}

/// Length in bytes of the encoded `record`.
pub const fn encoded_len(record: &Record) -> usize {
    let mut len = HEADER_LEN
        + str_len(env!("CARGO_PKG_VERSION"))
        + str_len(record.interface.name)
        + str_len(record.plugin_name);
    let methods = record.interface.methods;
    let mut i = 0;
    while i < methods.len() {
        len += str_len(methods[i].name) + str_len(methods[i].signature);
        i += 1;
    }
    len
}

const fn put(out: &mut [u8], at: usize, bytes: &[u8]) -> usize {
    let mut i = 0;
    while i < bytes.len() {
        out[at + i] = bytes[i];
        i += 1;
    }
    at + bytes.len()
}

const fn put_str(out: &mut [u8], at: usize, s: &str) -> usize {
    assert!(
        s.len() <= u16::MAX as usize,
        "metadata string longer than 65535 bytes"
    );
    let at = put(out, at, &(s.len() as u16).to_le_bytes());
    put(out, at, s.as_bytes())
}

/// Encodes `record`; `N` must be [`encoded_len`] of it (checked at compile
/// time when used in a `static`).
pub const fn encode<const N: usize>(record: &Record) -> [u8; N] {
    assert!(N == encoded_len(record), "metadata length mismatch");
    assert!(N <= u32::MAX as usize, "metadata record too large");
    let iface = record.interface;
    let mut out = [0u8; N];
    let mut at = put(&mut out, 0, &MAGIC);
    at = put(&mut out, at, &LAYOUT_VERSION.to_le_bytes());
    out[at] = iface.buffer as u8;
    at += 2;
    at = put(&mut out, at, &(N as u32).to_le_bytes());
    at = put(&mut out, at, &ABI_VERSION.to_le_bytes());
    at = put(&mut out, at, &WIRE_VERSION.to_le_bytes());
    at = put(&mut out, at, &iface.version.to_le_bytes());
    at = put(&mut out, at, &(iface.methods.len() as u32).to_le_bytes());
    at = put(&mut out, at, &iface.hash.to_le_bytes());
    at = put_str(&mut out, at, env!("CARGO_PKG_VERSION"));
    at = put_str(&mut out, at, iface.name);
    at = put_str(&mut out, at, record.plugin_name);
    let mut i = 0;
    while i < iface.methods.len() {
        at = put_str(&mut out, at, iface.methods[i].name);
        at = put_str(&mut out, at, iface.methods[i].signature);
        i += 1;
    }
    assert!(at == N, "metadata length mismatch");
    out
}

/// A method read back from a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodMeta {
    /// Method name.
    pub name: String,
    /// Canonical signature.
    pub signature: String,
}

/// A decoded metadata record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PluginMeta {
    /// Layout version of the record.
    pub layout_version: u16,
    /// ABI version the plugin was built with.
    pub abi_version: u32,
    /// Wire version the plugin was built with.
    pub wire_version: u32,
    /// Buffer strategy byte (see [`BufferStrategy::from_u8`]).
    pub buffer: u8,
    /// `fidius-guest` version the plugin was built with.
    pub fidius_version: String,
    /// Interface name.
    pub interface_name: String,
    /// Interface version.
    pub interface_version: u32,
    /// Interface hash.
    pub interface_hash: u64,
    /// Plugin name.
    pub plugin_name: String,
    /// Methods in vtable order.
    pub methods: Vec<MethodMeta>,
}

/// Why a metadata record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetaError {
    /// The record ends before a field it needs.
    #[error("record truncated: needs {needed} bytes at offset {offset}, has {available}")]
    Truncated {
        /// Where the field starts.
        offset: usize,
        /// How many bytes it needs.
        needed: usize,
        /// How many there are.
        available: usize,
    },
    /// The magic is not `FIDIUSMD`.
    #[error("bad magic: expected `FIDIUSMD`, found {found:02x?}")]
    BadMagic {
        /// The bytes found.
        found: [u8; 8],
    },
    /// The layout version is not one this crate reads.
    #[error("unsupported metadata layout version: expected {expected}, found {found}")]
    UnsupportedLayout {
        /// What this crate reads.
        expected: u16,
        /// What the record says.
        found: u16,
    },
    /// A string field is not UTF-8.
    #[error("field `{field}` is not valid UTF-8")]
    InvalidUtf8 {
        /// Which field.
        field: &'static str,
    },
    /// The declared total length disagrees with the fields.
    #[error("declared length {declared} but the fields end at {actual}")]
    LengthMismatch {
        /// The total length field.
        declared: usize,
        /// Where the fields end.
        actual: usize,
    },
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MetaError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(MetaError::Truncated {
                offset: self.at,
                needed: n,
                available: self.bytes.len().saturating_sub(self.at),
            });
        };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], MetaError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u16(&mut self) -> Result<u16, MetaError> {
        self.array().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Result<u32, MetaError> {
        self.array().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Result<u64, MetaError> {
        self.array().map(u64::from_le_bytes)
    }
    fn string(&mut self, field: &'static str) -> Result<String, MetaError> {
        let len = usize::from(self.u16()?);
        let bytes = self.take(len)?;
        core::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| MetaError::InvalidUtf8 { field })
    }
}

/// Reads the total record length from the first [`HEADER_LEN`] bytes, so a
/// reader knows how many bytes to fetch.
///
/// # Errors
/// [`MetaError::Truncated`], [`MetaError::BadMagic`] or
/// [`MetaError::UnsupportedLayout`] when the prefix is not a record this
/// crate reads.
pub fn record_len(prefix: &[u8]) -> Result<usize, MetaError> {
    let mut r = Reader {
        bytes: prefix,
        at: 0,
    };
    check_prefix(&mut r)?;
    r.take(2)?;
    Ok(r.u32()? as usize)
}

fn check_prefix(r: &mut Reader<'_>) -> Result<(), MetaError> {
    let magic = r.array::<8>()?;
    if magic != MAGIC {
        return Err(MetaError::BadMagic { found: magic });
    }
    let layout = r.u16()?;
    if layout != LAYOUT_VERSION {
        return Err(MetaError::UnsupportedLayout {
            expected: LAYOUT_VERSION,
            found: layout,
        });
    }
    Ok(())
}

/// Decodes one record; `bytes` may extend past it.
///
/// # Errors
/// A [`MetaError`] naming the first malformed field.
pub fn decode(bytes: &[u8]) -> Result<PluginMeta, MetaError> {
    let mut r = Reader { bytes, at: 0 };
    check_prefix(&mut r)?;
    let [buffer, _reserved] = r.array::<2>()?;
    let declared = r.u32()? as usize;
    let abi_version = r.u32()?;
    let wire_version = r.u32()?;
    let interface_version = r.u32()?;
    let method_count = r.u32()?;
    let interface_hash = r.u64()?;
    let fidius_version = r.string("fidius_version")?;
    let interface_name = r.string("interface_name")?;
    let plugin_name = r.string("plugin_name")?;
    // Each method needs at least four bytes, which bounds the allocation.
    let mut methods = Vec::with_capacity((method_count as usize).min(bytes.len() / 4));
    for _ in 0..method_count {
        let name = r.string("method name")?;
        let signature = r.string("method signature")?;
        methods.push(MethodMeta { name, signature });
    }
    if r.at != declared {
        return Err(MetaError::LengthMismatch {
            declared,
            actual: r.at,
        });
    }
    Ok(PluginMeta {
        layout_version: LAYOUT_VERSION,
        abi_version,
        wire_version,
        buffer,
        fidius_version,
        interface_name,
        interface_version,
        interface_hash,
        plugin_name,
        methods,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::{MethodInfo, abi::BufferStrategy};

    const METHODS: &[MethodInfo] = &[MethodInfo {
        name: "apply",
        signature: "fn apply(ApplyInput)->ApplyOutput",
    }];
    const INFO: InterfaceInfo = InterfaceInfo::new(
        "ImageFilter",
        1,
        "ImageFilter{fn apply(ApplyInput)->ApplyOutput;}",
        BufferStrategy::PluginAllocated,
        METHODS,
    );
    const RECORD: Record = Record {
        interface: &INFO,
        plugin_name: "Invert",
    };
    const LEN: usize = encoded_len(&RECORD);
    static BYTES: [u8; LEN] = encode::<LEN>(&RECORD);

    #[test]
    fn round_trip() {
        assert_eq!(record_len(&BYTES), Ok(LEN));
        let meta = decode(&BYTES).unwrap();
        assert_eq!(meta.interface_name, "ImageFilter");
        assert_eq!(meta.plugin_name, "Invert");
        assert_eq!(meta.interface_hash, INFO.hash);
        assert_eq!(meta.abi_version, ABI_VERSION);
        assert_eq!(
            meta.methods[0].signature,
            "fn apply(ApplyInput)->ApplyOutput"
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        for cut in 0..LEN {
            assert!(decode(&BYTES[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn bad_magic_and_layout() {
        let mut bytes = BYTES;
        bytes[0] = b'X';
        assert!(matches!(decode(&bytes), Err(MetaError::BadMagic { .. })));
        let mut bytes = BYTES;
        bytes[8] = 9;
        assert_eq!(
            decode(&bytes),
            Err(MetaError::UnsupportedLayout {
                expected: 1,
                found: 9
            })
        );
    }
}
