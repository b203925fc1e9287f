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
    ABI_VERSION, DESCRIPTOR_SYMBOL_PREFIX, LIBRARY_SYMBOL, META_SYMBOL_PREFIX, WIRE_VERSION,
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
    let metadata = file.metadata().map_err(io)?;
    if !metadata.is_file() {
        return Err(LoadError::NotAFile {
            path: path.to_owned(),
        });
    }
    let data = FileData::new(file, metadata.len()).map_err(io)?;
    let reader = Reader {
        path: path.to_owned(),
        data: &data,
    };
    reader.read()
}

struct Reader<'a> {
    path: PathBuf,
    data: &'a FileData,
}

/// A file read with positional reads (`pread`): one syscall per read
/// instead of a seek plus a read, which halves the cost of validation.
#[derive(Debug)]
pub(crate) struct PositionalFile {
    file: File,
    pos: u64,
    len: u64,
}

impl object::read::ReadCacheOps for PositionalFile {
    fn len(&mut self) -> Result<u64, ()> {
        Ok(self.len)
    }

    fn seek(&mut self, pos: u64) -> Result<u64, ()> {
        self.pos = pos;
        Ok(pos)
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ()> {
        #[cfg(unix)]
        let read = std::os::unix::fs::FileExt::read_at(&self.file, buf, self.pos);
        #[cfg(windows)]
        let read = std::os::windows::fs::FileExt::seek_read(&self.file, buf, self.pos);
        let read = read.map_err(|_| ())?;
        self.pos += read as u64;
        Ok(read)
    }

    fn read_exact(&mut self, mut buf: &mut [u8]) -> Result<(), ()> {
        while !buf.is_empty() {
            match self.read(buf)? {
                0 => return Err(()),
                n => buf = &mut buf[n..],
            }
        }
        Ok(())
    }
}

/// How much of the start of the file is read in one go: the ELF header,
/// program headers, `.dynsym` and `.dynstr` of a typical plugin library.
const HEAD_LEN: u64 = 8 * 1024;

/// The file: its first [`HEAD_LEN`] bytes read up front, anything else read
/// on demand (and cached) with positional reads. Validating a typical
/// library takes about six reads.
#[derive(Debug)]
pub(crate) struct FileData {
    head: Vec<u8>,
    rest: ReadCache<PositionalFile>,
}

impl FileData {
    fn new(file: File, len: u64) -> std::io::Result<Self> {
        let mut head = vec![0u8; len.min(HEAD_LEN) as usize];
        let mut filled = 0;
        while filled < head.len() {
            #[cfg(unix)]
            let n = std::os::unix::fs::FileExt::read_at(&file, &mut head[filled..], filled as u64)?;
            #[cfg(windows)]
            let n = std::os::windows::fs::FileExt::seek_read(
                &file,
                &mut head[filled..],
                filled as u64,
            )?;
            if n == 0 {
                head.truncate(filled);
                break;
            }
            filled += n;
        }
        Ok(Self {
            head,
            rest: ReadCache::new(PositionalFile { file, pos: 0, len }),
        })
    }

    fn in_head(&self, offset: u64, size: u64) -> Option<&[u8]> {
        let end = usize::try_from(offset.checked_add(size)?).ok()?;
        self.head.get(usize::try_from(offset).ok()?..end)
    }
}

impl<'a> ReadRef<'a> for &'a FileData {
    fn len(self) -> Result<u64, ()> {
        (&self.rest).len()
    }

    fn read_bytes_at(self, offset: u64, size: u64) -> Result<&'a [u8], ()> {
        match self.in_head(offset, size) {
            Some(bytes) => Ok(bytes),
            None => (&self.rest).read_bytes_at(offset, size),
        }
    }

    fn read_bytes_at_until(
        self,
        range: std::ops::Range<u64>,
        delimiter: u8,
    ) -> Result<&'a [u8], ()> {
        let head_end = range.end.min(self.head.len() as u64);
        if let Some(window) = self.in_head(range.start, head_end.saturating_sub(range.start))
            && let Some(len) = window.iter().position(|&b| b == delimiter)
        {
            return Ok(&window[..len]);
        }
        (&self.rest).read_bytes_at_until(range, delimiter)
    }
}

/// Where a symbol's bytes are in the file.
#[derive(Debug, Clone, Copy)]
struct Location {
    offset: u64,
    /// Bytes from `offset` to the end of the symbol's section.
    available: u64,
}

/// The fidius symbols of a library.
#[derive(Debug, Default)]
struct Symbols {
    library: Option<Location>,
    /// `(symbol name, location)` of every metadata record.
    records: Vec<(String, Location)>,
}

impl Symbols {
    fn add(&mut self, name: &str, location: Location) {
        if name == LIBRARY_SYMBOL {
            self.library = Some(location);
        } else if name.starts_with(META_SYMBOL_PREFIX) {
            self.records.push((name.to_owned(), location));
        }
    }
}

/// `sh_offset + (address - sh_addr)` when `address` lies in the section.
fn locate(
    address: u64,
    section_address: u64,
    section_offset: u64,
    section_size: u64,
) -> Option<Location> {
    let rel = address.checked_sub(section_address)?;
    let available = section_size.checked_sub(rel)?;
    Some(Location {
        offset: section_offset.checked_add(rel)?,
        available,
    })
}

/// ELF `e_machine` of this host.
fn host_elf_machine() -> object::elf::Machine {
    use object::elf;
    match host_target().1 {
        Architecture::X86_64 => elf::EM_X86_64,
        Architecture::Aarch64 => elf::EM_AARCH64,
        Architecture::I386 => elf::EM_386,
        Architecture::Arm => elf::EM_ARM,
        Architecture::Riscv64 => elf::EM_RISCV,
        Architecture::PowerPc64 => elf::EM_PPC64,
        Architecture::S390x => elf::EM_S390,
        Architecture::LoongArch64 => elf::EM_LOONGARCH,
        _ => elf::EM_NONE,
    }
}

fn elf_machine_name(machine: object::elf::Machine) -> String {
    use object::elf;
    let name = match machine {
        elf::EM_X86_64 => "x86_64",
        elf::EM_AARCH64 => "aarch64",
        elf::EM_386 => "i386",
        elf::EM_ARM => "arm",
        elf::EM_RISCV => "riscv64",
        elf::EM_PPC64 => "powerpc64",
        elf::EM_PPC => "powerpc",
        elf::EM_S390 => "s390x",
        elf::EM_LOONGARCH => "loongarch64",
        elf::EM_MIPS => "mips",
        other => return format!("{other:?}"),
    };
    name.to_owned()
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

    fn wrong_target(&self, found: String) -> LoadError {
        let (format, arch) = host_target();
        LoadError::WrongTarget {
            path: self.path.clone(),
            expected: describe(format, arch, cfg!(target_pointer_width = "64")),
            found,
        }
    }

    fn read(&self) -> Result<LibraryFile, LoadError> {
        let kind = object::FileKind::parse(self.data)
            .map_err(|e| self.not_shared(format!("not a recognised object file ({e})")))?;
        let symbols = match kind {
            object::FileKind::Elf64 => {
                self.elf_symbols::<object::elf::FileHeader64<object::Endianness>>()?
            }
            object::FileKind::Elf32 => {
                self.elf_symbols::<object::elf::FileHeader32<object::Endianness>>()?
            }
            _ => self.generic_symbols()?,
        };
        // The header's presence marks a fidius library; its contents hold
        // pointers and are checked after loading (`native::open`). The ABI
        // and wire versions are checked here, per record.
        if symbols.library.is_none() {
            return Err(LoadError::NotAFidiusPlugin {
                path: self.path.clone(),
            });
        }

        let mut records = symbols.records;
        records.sort_by(|a, b| a.0.cmp(&b.0));
        // The records usually sit next to each other in `.rodata`: fetch
        // them with one read where possible.
        let span = self.record_span(&records);
        let fetch = |location: Location, len: usize| -> Option<&'a [u8]> {
            if len as u64 > location.available {
                return None;
            }
            span.and_then(|(start, bytes)| {
                let from = usize::try_from(location.offset.checked_sub(start)?).ok()?;
                bytes.get(from..from.checked_add(len)?)
            })
            .or_else(|| self.bytes_at(location, len as u64))
        };
        let mut plugins = Vec::with_capacity(records.len());
        for (symbol, location) in records {
            let head = fetch(location, HEADER_LEN)
                .ok_or_else(|| self.malformed(&symbol, truncated(HEADER_LEN)))?;
            let len = meta::record_len(head).map_err(|e| self.malformed(&symbol, e))?;
            let bytes =
                fetch(location, len).ok_or_else(|| self.malformed(&symbol, truncated(len)))?;
            let meta = meta::decode(bytes).map_err(|e| self.malformed(&symbol, e))?;
            self.check_version("ABI", ABI_VERSION, meta.abi_version)?;
            self.check_version("wire", WIRE_VERSION, meta.wire_version)?;
            let suffix = &symbol[META_SYMBOL_PREFIX.len()..];
            plugins.push(FoundPlugin {
                meta,
                descriptor_symbol: format!("{DESCRIPTOR_SYMBOL_PREFIX}{suffix}"),
            });
        }
        Ok(LibraryFile { plugins })
    }

    /// ELF fast path: reads only the file header, section headers and the
    /// dynamic symbol table (never the much larger `.symtab`).
    fn elf_symbols<Elf>(&self) -> Result<Symbols, LoadError>
    where
        Elf: object::read::elf::FileHeader<Endian = object::Endianness>,
    {
        use object::elf;
        let bad = |e: object::read::Error| self.not_shared(format!("malformed ELF file ({e})"));
        let header = Elf::parse(self.data).map_err(bad)?;
        let endian = header.endian().map_err(bad)?;
        let machine = header.e_machine(endian);
        let host_64 = cfg!(target_pointer_width = "64");
        let host_little = cfg!(target_endian = "little");
        if host_target().0 != BinaryFormat::Elf
            || machine != host_elf_machine()
            || header.is_type_64() != host_64
            || header.is_little_endian() != host_little
        {
            return Err(self.wrong_target(format!(
                "elf {} ({}-bit{})",
                elf_machine_name(machine),
                if header.is_type_64() { 64 } else { 32 },
                if header.is_little_endian() == host_little {
                    ""
                } else {
                    ", other endianness"
                }
            )));
        }
        match header.e_type(endian) {
            elf::ET_DYN => {}
            elf::ET_EXEC => return Err(self.not_shared("it is an executable")),
            elf::ET_REL => return Err(self.not_shared("it is a relocatable object (.o)")),
            elf::ET_CORE => return Err(self.not_shared("it is a core dump")),
            other => return Err(self.not_shared(format!("unknown ELF type {other}"))),
        }
        let sections = header.sections(endian, self.data).map_err(bad)?;
        let dynsym = sections
            .symbols(endian, self.data, elf::SHT_DYNSYM)
            .map_err(bad)?;
        use object::read::elf::{SectionHeader as _, Sym as _};
        // One read for all names: looking each one up through the cache
        // would cost two syscalls per symbol.
        let strings = sections
            .section(dynsym.string_section())
            .and_then(|s| s.data(endian, self.data))
            .map_err(bad)?;
        let mut symbols = Symbols::default();
        for sym in dynsym.iter() {
            let Some(index) = sym.st_shndx(endian).index() else {
                continue;
            };
            if !matches!(sym.st_bind(), elf::STB_GLOBAL | elf::STB_WEAK) {
                continue;
            }
            let Some(name) = strings
                .get(sym.st_name(endian) as usize..)
                .and_then(|tail| tail.split(|&b| b == 0).next())
                .and_then(|name| std::str::from_utf8(name).ok())
            else {
                continue;
            };
            if name != LIBRARY_SYMBOL && !name.starts_with(META_SYMBOL_PREFIX) {
                continue;
            }
            let section = sections
                .section(object::SectionIndex(usize::from(index)))
                .map_err(bad)?;
            if section.sh_type(endian) == elf::SHT_NOBITS {
                continue;
            }
            let location = locate(
                sym.st_value(endian).into(),
                section.sh_addr(endian).into(),
                section.sh_offset(endian).into(),
                section.sh_size(endian).into(),
            );
            if let Some(location) = location {
                symbols.add(name, location);
            }
        }
        Ok(symbols)
    }

    /// Mach-O and PE: `object`'s generic exports.
    fn generic_symbols(&self) -> Result<Symbols, LoadError> {
        let file = object::File::parse(self.data)
            .map_err(|e| self.not_shared(format!("not a recognised object file ({e})")))?;
        let (format, arch) = host_target();
        let host_64 = cfg!(target_pointer_width = "64");
        if file.format() != format || file.architecture() != arch || file.is_64() != host_64 {
            return Err(self.wrong_target(describe(
                file.format(),
                file.architecture(),
                file.is_64(),
            )));
        }
        if file.kind() != ObjectKind::Dynamic {
            return Err(self.not_shared(format!(
                "it is a {:?} object, not a shared library",
                file.kind()
            )));
        }
        let exports = file
            .exports()
            .map_err(|e| self.not_shared(format!("unreadable symbol table ({e})")))?;
        let mut symbols = Symbols::default();
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
            let location = file.sections().find_map(|s| {
                let (offset, size) = s.file_range()?;
                locate(address, s.address(), offset, size.min(s.size()))
            });
            if let Some(location) = location {
                symbols.add(name, location);
            }
        }
        Ok(symbols)
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

    /// One read covering every record plus room for the last one, when they
    /// lie within 64 KiB of each other in one section.
    fn record_span(&self, records: &[(String, Location)]) -> Option<(u64, &'a [u8])> {
        const SLACK: u64 = 4096;
        let first = records.iter().map(|r| r.1).min_by_key(|l| l.offset)?;
        let last = records.iter().map(|r| r.1.offset).max()?;
        let end = last
            .checked_add(SLACK)?
            .min(first.offset.checked_add(first.available)?);
        let len = end.checked_sub(first.offset)?;
        if len > 64 * 1024 {
            return None;
        }
        Some((
            first.offset,
            self.data.read_bytes_at(first.offset, len).ok()?,
        ))
    }

    /// `len` bytes at `location`, if its section holds that many.
    fn bytes_at(&self, location: Location, len: u64) -> Option<&'a [u8]> {
        if len > location.available {
            return None;
        }
        self.data.read_bytes_at(location.offset, len).ok()
    }
}

fn truncated(needed: usize) -> meta::MetaError {
    meta::MetaError::Truncated {
        offset: 0,
        needed,
        available: 0,
    }
}
