//! Reading a plugin library file without loading it: object-file headers,
//! target checks, and the static metadata records. No `unsafe` and no plugin
//! code runs here.
//!
//! Only the bytes needed are read (headers, the dynamic symbol table, and the
//! records themselves) through `object`'s `ReadCache`, so validating a large
//! library costs a handful of small reads.

use std::fs::File;
use std::path::{Path, PathBuf};

use fidius_guest::abi::{
    ABI_VERSION, DESCRIPTOR_SYMBOL_PREFIX, LIBRARY_LAYOUT_VERSION, LIBRARY_MAGIC, LIBRARY_SYMBOL,
    META_SYMBOL_PREFIX, WIRE_VERSION,
};
use fidius_guest::meta::{self, HEADER_LEN, PluginMeta};
use object::read::ReadCache;
use object::{Architecture, BinaryFormat, Object, ObjectKind, ObjectSection, ReadRef};

use crate::LoadError;

/// One plugin found in the file.
#[derive(Debug, Clone)]
pub(crate) struct FoundPlugin {
    pub(crate) meta: PluginMeta,
    /// Name of its descriptor symbol.
    pub(crate) descriptor_symbol: String,
}

/// What the file says, before anything is loaded.
#[derive(Debug)]
pub(crate) struct LibraryFile {
    pub(crate) plugins: Vec<FoundPlugin>,
}

/// This host's binary format and architecture.
pub(crate) fn host_target() -> (BinaryFormat, Architecture) {
    let format = if cfg!(target_vendor = "apple") {
        BinaryFormat::MachO
    } else if cfg!(windows) {
        BinaryFormat::Pe
    } else {
        BinaryFormat::Elf
    };
    let arch = if cfg!(target_arch = "x86_64") {
        Architecture::X86_64
    } else if cfg!(target_arch = "aarch64") {
        Architecture::Aarch64
    } else if cfg!(target_arch = "x86") {
        Architecture::I386
    } else if cfg!(target_arch = "arm") {
        Architecture::Arm
    } else if cfg!(target_arch = "riscv64") {
        Architecture::Riscv64
    } else if cfg!(target_arch = "powerpc64") {
        Architecture::PowerPc64
    } else if cfg!(target_arch = "s390x") {
        Architecture::S390x
    } else if cfg!(target_arch = "loongarch64") {
        Architecture::LoongArch64
    } else {
        Architecture::Unknown
    };
    (format, arch)
}

fn describe(format: BinaryFormat, arch: Architecture, is_64: bool) -> String {
    let format = format!("{format:?}").to_lowercase();
    let arch = format!("{arch:?}").to_lowercase();
    format!("{format} {arch} ({}-bit)", if is_64 { 64 } else { 32 })
}

/// Reads and checks `path`.
pub(crate) fn read(path: &Path) -> Result<LibraryFile, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(LoadError::NotAFile {
            path: path.to_owned(),
        });
    }
    let cache = ReadCache::new(file);
    let reader = Reader {
        path: path.to_owned(),
        data: &cache,
    };
    reader.read()
}

struct Reader<'a> {
    path: PathBuf,
    data: &'a ReadCache<File>,
}

impl<'a> Reader<'a> {
    fn not_shared(&self, detail: impl Into<String>) -> LoadError {
        LoadError::NotASharedLibrary {
            path: self.path.clone(),
            detail: detail.into(),
        }
    }

    fn malformed(&self, symbol: &str, source: meta::MetaError) -> LoadError {
        LoadError::MalformedMetadata {
            path: self.path.clone(),
            symbol: symbol.to_owned(),
            source,
        }
    }

    fn read(&self) -> Result<LibraryFile, LoadError> {
        let file = object::File::parse(self.data)
            .map_err(|e| self.not_shared(format!("not a recognised object file ({e})")))?;
        let (format, arch) = host_target();
        let host_64 = cfg!(target_pointer_width = "64");
        if file.format() != format || file.architecture() != arch || file.is_64() != host_64 {
            return Err(LoadError::WrongTarget {
                path: self.path.clone(),
                expected: describe(format, arch, host_64),
                found: describe(file.format(), file.architecture(), file.is_64()),
            });
        }
        if file.kind() != ObjectKind::Dynamic {
            return Err(self.not_shared(format!(
                "it is {} object",
                match file.kind() {
                    ObjectKind::Executable => "an executable",
                    ObjectKind::Relocatable => "a relocatable (.o)",
                    ObjectKind::Core => "a core dump",
                    _ => "an unknown kind of",
                }
            )));
        }

        let exports = file
            .exports()
            .map_err(|e| self.not_shared(format!("unreadable symbol table ({e})")))?;
        let mut library_header = None;
        let mut records = Vec::new();
        for export in exports {
            let export = export.map_err(|e| self.not_shared(format!("unreadable export ({e})")))?;
            let object::read::NameOrOrdinal::Name(raw) = export.name() else {
                continue;
            };
            let Ok(name) = std::str::from_utf8(raw) else {
                continue;
            };
            // Mach-O prefixes C symbols with `_`.
            let name = if format == BinaryFormat::MachO {
                name.strip_prefix('_').unwrap_or(name)
            } else {
                name
            };
            let object::read::ExportTarget::Address { address } = export.target() else {
                continue;
            };
            if name == LIBRARY_SYMBOL {
                library_header = Some(address);
            } else if let Some(suffix) = name.strip_prefix(META_SYMBOL_PREFIX) {
                records.push((name.to_owned(), suffix.to_owned(), address));
            }
        }
        let Some(header_address) = library_header else {
            return Err(LoadError::NotAFidiusPlugin {
                path: self.path.clone(),
            });
        };
        self.check_library_header(&file, header_address)?;

        records.sort();
        let mut plugins = Vec::with_capacity(records.len());
        for (symbol, suffix, address) in records {
            let head = self
                .bytes_at(&file, address, HEADER_LEN as u64)
                .ok_or_else(|| self.malformed(&symbol, truncated(HEADER_LEN)))?;
            let len = meta::record_len(head).map_err(|e| self.malformed(&symbol, e))?;
            let bytes = self
                .bytes_at(&file, address, len as u64)
                .ok_or_else(|| self.malformed(&symbol, truncated(len)))?;
            let meta = meta::decode(bytes).map_err(|e| self.malformed(&symbol, e))?;
            self.check_version("ABI", ABI_VERSION, meta.abi_version)?;
            self.check_version("wire", WIRE_VERSION, meta.wire_version)?;
            plugins.push(FoundPlugin {
                meta,
                descriptor_symbol: format!("{DESCRIPTOR_SYMBOL_PREFIX}{suffix}"),
            });
        }
        Ok(LibraryFile { plugins })
    }

    /// Checks the pointer-free prefix of the library header as stored in the
    /// file: magic, layout version, size, ABI and wire version.
    fn check_library_header(
        &self,
        file: &object::File<'a, &'a ReadCache<File>>,
        address: u64,
    ) -> Result<(), LoadError> {
        let bytes = self
            .bytes_at(file, address, 24)
            .ok_or_else(|| self.malformed(LIBRARY_SYMBOL, truncated(24)))?;
        let u32_at = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        if bytes[..8] != LIBRARY_MAGIC {
            return Err(LoadError::NotAFidiusPlugin {
                path: self.path.clone(),
            });
        }
        self.check_version("library layout", LIBRARY_LAYOUT_VERSION, u32_at(8))?;
        self.check_version("ABI", ABI_VERSION, u32_at(16))?;
        self.check_version("wire", WIRE_VERSION, u32_at(20))
    }

    fn check_version(
        &self,
        what: &'static str,
        expected: u32,
        found: u32,
    ) -> Result<(), LoadError> {
        if expected == found {
            return Ok(());
        }
        Err(LoadError::AbiVersionMismatch {
            path: self.path.clone(),
            what,
            expected,
            found,
        })
    }

    /// `len` bytes at virtual `address`, read from the section holding it.
    fn bytes_at(
        &self,
        file: &object::File<'a, &'a ReadCache<File>>,
        address: u64,
        len: u64,
    ) -> Option<&'a [u8]> {
        let end = address.checked_add(len)?;
        let section = file
            .sections()
            .find(|s| s.address() <= address && end <= s.address().saturating_add(s.size()))?;
        let (offset, size) = section.file_range()?;
        let rel = address - section.address();
        if rel.checked_add(len)? > size {
            return None;
        }
        self.data.read_bytes_at(offset.checked_add(rel)?, len).ok()
    }
}

fn truncated(needed: usize) -> meta::MetaError {
    meta::MetaError::Truncated {
        offset: 0,
        needed,
        available: 0,
    }
}
