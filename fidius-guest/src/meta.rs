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
//! | 40 | … | body |
//!
//! The body: strings are a `u16` length then UTF-8 bytes; "pairs" are a
//! `u16` count then that many key and value strings.
//!
//! 1. fidius version, interface name, plugin name, config type (empty when
//!    the plugin takes no configuration);
//! 2. host interface name (empty when none), its version (`u32`) and hash
//!    (`u64`);
//! 3. interface metadata pairs;
//! 4. per method, in vtable order: name, canonical signature, flags (`u8`:
//!    bit 0 optional, bit 1 implemented by this plugin), `since` (`u32`, 0
//!    for required methods), method metadata pairs.

use crate::InterfaceInfo;
use crate::abi::{ABI_VERSION, WIRE_VERSION};
use crate::interface::MetaPairs;

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
    /// Names of the methods the impl block defines (decides the optional
    /// methods' capability bits).
    pub implemented: &'static [&'static str],
    /// Configuration type of `#[plugin_impl(…, config = C)]`, or `""`.
    pub config_type: &'static str,
}

/// Method flag: `#[optional]`.
pub const FLAG_OPTIONAL: u8 = 1;
/// Method flag: implemented by this plugin.
pub const FLAG_IMPLEMENTED: u8 = 2;

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `name` is in `implemented`.
pub const fn contains(implemented: &[&str], name: &str) -> bool {
    let mut i = 0;
    while i < implemented.len() {
        if str_eq(implemented[i], name) {
            return true;
        }
        i += 1;
    }
    false
}

/// The capability bits of a plugin that defines `implemented`: bit `i` for
/// the `i`-th optional method of `interface`.
pub const fn capabilities(interface: &InterfaceInfo, implemented: &[&str]) -> u64 {
    let mut bits = 0u64;
    let mut bit = 0;
    let mut i = 0;
    while i < interface.methods.len() {
        if interface.methods[i].since.is_some() {
            assert!(bit < 64, "at most 64 optional methods per interface");
            if contains(implemented, interface.methods[i].name) {
                bits |= 1 << bit;
            }
            bit += 1;
        }
        i += 1;
    }
    bits
}

const fn str_len(s: &str) -> usize {
    2 + s.len()
}

const fn pairs_len(pairs: MetaPairs) -> usize {
    let mut len = 2;
    let mut i = 0;
    while i < pairs.len() {
        len += str_len(pairs[i].0) + str_len(pairs[i].1);
        i += 1;
    }
    len
}

const fn host_name(info: &InterfaceInfo) -> &'static str {
    match info.host {
        Some(host) => host.name,
        None => "",
    }
}

/// Length in bytes of the encoded `record`.
pub const fn encoded_len(record: &Record) -> usize {
    let iface = record.interface;
    let mut len = HEADER_LEN
        + str_len(env!("CARGO_PKG_VERSION"))
        + str_len(iface.name)
        + str_len(record.plugin_name)
        + str_len(record.config_type)
        + str_len(host_name(iface))
        + 4
        + 8
        + pairs_len(iface.meta);
    let methods = iface.methods;
    let mut i = 0;
    while i < methods.len() {
        len += str_len(methods[i].name)
            + str_len(methods[i].signature)
            + 1
            + 4
            + pairs_len(methods[i].meta);
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

const fn put_pairs(out: &mut [u8], at: usize, pairs: MetaPairs) -> usize {
    assert!(pairs.len() <= u16::MAX as usize, "too many metadata pairs");
    let mut at = put(out, at, &(pairs.len() as u16).to_le_bytes());
    let mut i = 0;
    while i < pairs.len() {
        at = put_str(out, at, pairs[i].0);
        at = put_str(out, at, pairs[i].1);
        i += 1;
    }
    at
}

/// Encodes `record`; `N` must be [`encoded_len`] of it (checked at compile
/// time when used in a `static`).
pub const fn encode<const N: usize>(record: &Record) -> [u8; N] {
    let mut out = [0u8; N];
    encode_into(record, &mut out);
    out
}

/// Encodes `record` at run time (for components built outside cargo, which
/// `cargo fidius stamp` gives a record).
pub fn encode_vec(record: &Record) -> Vec<u8> {
    let mut out = vec![0u8; encoded_len(record)];
    encode_into(record, &mut out);
    out
}

/// The record of a plugin that implements every method of `interface`,
/// optional ones included, with the interface's declared configuration
/// type: what a component built from the interface's WIT by another
/// language's toolchain is (it must export every function of its world).
pub fn foreign_record(interface: &'static InterfaceInfo, plugin_name: &str) -> Vec<u8> {
    let implemented: Vec<&'static str> = interface.methods.iter().map(|m| m.name).collect();
    let implemented: &'static [&'static str] = Box::leak(implemented.into_boxed_slice());
    encode_vec(&Record {
        interface,
        plugin_name: Box::leak(plugin_name.to_owned().into_boxed_str()),
        implemented,
        config_type: interface.config.unwrap_or(""),
    })
}

/// Encodes `record` into `out`, which must be [`encoded_len`] long.
const fn encode_into(record: &Record, out: &mut [u8]) {
    let n = out.len();
    assert!(n == encoded_len(record), "metadata length mismatch");
    assert!(n <= u32::MAX as usize, "metadata record too large");
    let iface = record.interface;
    let mut at = put(out, 0, &MAGIC);
    at = put(out, at, &LAYOUT_VERSION.to_le_bytes());
    out[at] = iface.buffer as u8;
    at += 2;
    at = put(out, at, &(n as u32).to_le_bytes());
    at = put(out, at, &ABI_VERSION.to_le_bytes());
    at = put(out, at, &WIRE_VERSION.to_le_bytes());
    at = put(out, at, &iface.version.to_le_bytes());
    at = put(out, at, &(iface.methods.len() as u32).to_le_bytes());
    at = put(out, at, &iface.hash.to_le_bytes());
    at = put_str(out, at, env!("CARGO_PKG_VERSION"));
    at = put_str(out, at, iface.name);
    at = put_str(out, at, record.plugin_name);
    at = put_str(out, at, record.config_type);
    let (host_version, host_hash) = match iface.host {
        Some(host) => (host.version, host.hash),
        None => (0, 0),
    };
    at = put_str(out, at, host_name(iface));
    at = put(out, at, &host_version.to_le_bytes());
    at = put(out, at, &host_hash.to_le_bytes());
    at = put_pairs(out, at, iface.meta);
    let mut i = 0;
    while i < iface.methods.len() {
        let m = &iface.methods[i];
        at = put_str(out, at, m.name);
        at = put_str(out, at, m.signature);
        let (flags, since) = match m.since {
            Some(since) => {
                let implemented = if contains(record.implemented, m.name) {
                    FLAG_IMPLEMENTED
                } else {
                    0
                };
                (FLAG_OPTIONAL | implemented, since)
            }
            None => (FLAG_IMPLEMENTED, 0),
        };
        out[at] = flags;
        at += 1;
        at = put(out, at, &since.to_le_bytes());
        at = put_pairs(out, at, m.meta);
        i += 1;
    }
    assert!(at == n, "metadata length mismatch");
}

/// A method read back from a record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MethodMeta {
    /// Method name.
    pub name: String,
    /// Canonical signature.
    pub signature: String,
    /// `Some(n)` for `#[optional(since = n)]` methods.
    pub since: Option<u32>,
    /// Whether the plugin implements it (always for required methods).
    pub implemented: bool,
    /// `#[method_meta]` pairs.
    pub meta: Vec<(String, String)>,
}

/// The host interface a plugin's interface declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostMeta {
    /// Trait name.
    pub name: String,
    /// Its version.
    pub version: u32,
    /// Its hash.
    pub hash: u64,
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
    /// Configuration type name, for plugins built with
    /// `#[plugin_impl(…, config = C)]`.
    pub config_type: Option<String>,
    /// The host interface the plugin expects, if any.
    pub host: Option<HostMeta>,
    /// `#[interface_meta]` pairs.
    pub interface_meta: Vec<(String, String)>,
}

impl PluginMeta {
    /// The record of a plugin known only by what it declares (a Python
    /// plugin): its interface's name, version and hash and its own name;
    /// no methods (they are checked when it is loaded).
    pub fn declared(
        interface_name: &str,
        interface_version: u32,
        interface_hash: u64,
        plugin_name: &str,
    ) -> Self {
        Self {
            layout_version: LAYOUT_VERSION,
            abi_version: crate::abi::ABI_VERSION,
            wire_version: crate::abi::WIRE_VERSION,
            buffer: 0,
            fidius_version: env!("CARGO_PKG_VERSION").to_owned(),
            interface_name: interface_name.to_owned(),
            interface_version,
            interface_hash,
            plugin_name: plugin_name.to_owned(),
            methods: Vec::new(),
            config_type: None,
            host: None,
            interface_meta: Vec::new(),
        }
    }

    /// The capability bits the record implies (see
    /// [`capabilities`](fn@capabilities)).
    pub fn capabilities(&self) -> u64 {
        self.methods
            .iter()
            .filter(|m| m.since.is_some())
            .enumerate()
            .filter(|(_, m)| m.implemented)
            .fold(0, |bits, (i, _)| {
                bits | 1u64.checked_shl(i as u32).unwrap_or(0)
            })
    }

    /// The value of interface metadata `key`.
    pub fn interface_meta(&self, key: &str) -> Option<&str> {
        find_pair(&self.interface_meta, key)
    }
}

impl MethodMeta {
    /// The value of method metadata `key`.
    pub fn meta(&self, key: &str) -> Option<&str> {
        find_pair(&self.meta, key)
    }
}

fn find_pair<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
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
    /// A method's flags byte has unknown bits or marks a required method
    /// as not implemented.
    #[error("method `{method}` has invalid flags {flags:#04x}")]
    BadFlags {
        /// The method.
        method: String,
        /// The flags byte.
        flags: u8,
    },
    /// The symbol holding the record points outside the section it names
    /// (a library file edited or broken after linking).
    #[error("the symbol points outside its section (address {address:#x})")]
    OutsideSection {
        /// The symbol's address.
        address: u64,
    },
    /// The symbol's size disagrees with the record's own length (the
    /// macros always make them equal).
    #[error("the symbol is {symbol} bytes, the record it holds {record}")]
    SymbolSize {
        /// The symbol's size.
        symbol: u64,
        /// The record's length field.
        record: usize,
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
    fn u8(&mut self) -> Result<u8, MetaError> {
        self.array::<1>().map(|[b]| b)
    }
    fn pairs(&mut self, field: &'static str) -> Result<Vec<(String, String)>, MetaError> {
        let count = usize::from(self.u16()?);
        // Each pair needs at least four bytes, which bounds the allocation.
        let mut pairs = Vec::with_capacity(count.min(self.bytes.len() / 4));
        for _ in 0..count {
            pairs.push((self.string(field)?, self.string(field)?));
        }
        Ok(pairs)
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
    let config_type = r.string("config_type")?;
    let host_name = r.string("host interface name")?;
    let host_version = r.u32()?;
    let host_hash = r.u64()?;
    let interface_meta = r.pairs("interface metadata")?;
    // Each method needs at least eleven bytes, which bounds the allocation.
    let mut methods = Vec::with_capacity((method_count as usize).min(bytes.len() / 11));
    for _ in 0..method_count {
        let name = r.string("method name")?;
        let signature = r.string("method signature")?;
        let flags = r.u8()?;
        let since = r.u32()?;
        let meta = r.pairs("method metadata")?;
        let optional = flags & FLAG_OPTIONAL != 0;
        let implemented = flags & FLAG_IMPLEMENTED != 0;
        if flags & !(FLAG_OPTIONAL | FLAG_IMPLEMENTED) != 0 || (!optional && !implemented) {
            return Err(MetaError::BadFlags {
                method: name,
                flags,
            });
        }
        methods.push(MethodMeta {
            name,
            signature,
            since: optional.then_some(since),
            implemented,
            meta,
        });
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
        config_type: (!config_type.is_empty()).then_some(config_type),
        host: (!host_name.is_empty()).then_some(HostMeta {
            name: host_name,
            version: host_version,
            hash: host_hash,
        }),
        interface_meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::{MethodInfo, abi::BufferStrategy};

    const METHODS: &[MethodInfo] = &[
        MethodInfo::required(
            "apply",
            "fn apply(ApplyInput)->ApplyOutput",
            &[("unit", "pixels")],
        ),
        MethodInfo::optional("preview", "fn preview()->String", 2, &[]),
        MethodInfo::optional("tune", "fn tune(u8)", 2, &[]),
    ];
    const INFO: InterfaceInfo = InterfaceInfo::new(
        "ImageFilter",
        1,
        "ImageFilter{fn apply(ApplyInput)->ApplyOutput;}",
        BufferStrategy::PluginAllocated,
        METHODS,
    )
    .with_meta(&[("category", "color")]);
    const RECORD: Record = Record {
        interface: &INFO,
        plugin_name: "Invert",
        implemented: &["apply", "tune"],
        config_type: "InvertConfig",
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
        assert_eq!(meta.methods[0].meta("unit"), Some("pixels"));
        assert_eq!(meta.interface_meta("category"), Some("color"));
        assert_eq!(meta.config_type.as_deref(), Some("InvertConfig"));
        assert_eq!(meta.host, None);
        assert_eq!(meta.methods[1].since, Some(2));
        assert!(!meta.methods[1].implemented);
        assert!(meta.methods[2].implemented);
        assert_eq!(meta.capabilities(), 0b10);
        assert_eq!(capabilities(&INFO, RECORD.implemented), 0b10);
    }

    #[test]
    fn every_truncation_is_an_error() {
        for cut in 0..LEN {
            assert!(
                matches!(decode(&BYTES[..cut]), Err(MetaError::Truncated { available, .. })
                    if available <= cut),
                "cut at {cut}: {:?}",
                decode(&BYTES[..cut])
            );
        }
    }

    #[test]
    fn bad_magic_and_layout() {
        let mut bytes = BYTES;
        bytes[0] = b'X';
        assert_eq!(
            decode(&bytes),
            Err(MetaError::BadMagic {
                found: *b"XIDIUSMD"
            })
        );
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
