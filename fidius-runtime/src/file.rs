//! Reading a plugin library file without loading it: object-file headers,
//! target checks, and the static metadata records. No `unsafe` and no plugin
//! code runs here.
//!
//! Only the bytes needed are read, with positional reads into buffers kept
//! per thread. An ELF library usually costs five syscalls: `open`, three
//! reads (its first [`HEAD_LEN`] bytes: file header, program headers,
//! `.dynsym` and `.dynstr`; its section headers; one read spanning every
//! metadata record, sized by the symbols' sizes) and `close`. There is no
//! `stat` on that path: a directory fails its first read, and any error is
//! checked against the file's type before it is returned, so anything that
//! is not a regular file is still [`LoadError::NotAFile`]. Mach-O and PE go
//! through `object`'s generic reader.

use std::borrow::Cow;
use std::cell::Cell;
use std::fs::File;
use std::path::Path;

use fidius_guest::abi::{
    ABI_VERSION, DESCRIPTOR_SYMBOL_PREFIX, LIBRARY_SYMBOL, META_SYMBOL_PREFIX, WIRE_VERSION,
};
use fidius_guest::meta::{self, HEADER_LEN, PluginMeta};
use object::pod::bytes_of_slice_mut;
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
    /// The file's format and architecture, e.g. `elf x86_64 (64-bit)`.
    pub(crate) target: String,
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
    read_with(path, true)
}

/// Reads `path`'s metadata whatever its target (for tools: the result is
/// never loaded).
pub(crate) fn read_any_target(path: &Path) -> Result<LibraryFile, LoadError> {
    read_with(path, false)
}

fn read_with(path: &Path, check_target: bool) -> Result<LibraryFile, LoadError> {
    // Without blocking: opening a FIFO that has no writer would block for
    // good. Reading one (or a device) then fails to parse, and the check
    // below reports what it is.
    let file = crate::open::open_nonblocking(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    let reader = Reader {
        path,
        file: &file,
        check_target,
    };
    // The buffers are kept per thread: zeroing (or allocating) them afresh
    // costs about 3% of a validation. A nested or late (thread exit) call
    // just gets new ones.
    thread_local! {
        static BUFFERS: Cell<Buffers> = Cell::default();
    }
    let mut buffers = BUFFERS.try_with(Cell::take).unwrap_or_default();
    let result = reader.read(&mut buffers);
    buffers.trim();
    let _ = BUFFERS.try_with(|cell| cell.set(buffers));
    result.map_err(|error| {
        // Only now is the file's type worth a syscall: reading a directory
        // fails (`EISDIR`), and a device or pipe does not hold a library.
        match file.metadata() {
            Ok(metadata) if !metadata.is_file() => LoadError::NotAFile {
                path: path.to_owned(),
            },
            _ => error,
        }
    })
}

/// How much of the start of the file is read in one go: the ELF header,
/// program headers, `.dynsym` and `.dynstr` of a typical plugin library.
const HEAD_LEN: usize = 8 * 1024;

/// Reads larger than this first check the file's length, so that a corrupt
/// size cannot make us allocate gigabytes.
const CHECKED_READ_LEN: u64 = 1 << 20;

/// Buffers larger than this are not kept for the next validation.
const KEEP_LEN: usize = 16 * 1024;

/// Where the reads go. Whole `u64`s, so the ELF structures read into them
/// are aligned.
#[derive(Debug, Default)]
struct Buffers {
    head: Vec<u64>,
    sections: Vec<u64>,
    symbols: Vec<u64>,
    strings: Vec<u64>,
    records: Vec<u64>,
    record: Vec<u64>,
}

impl Buffers {
    fn trim(&mut self) {
        for buffer in [
            &mut self.head,
            &mut self.sections,
            &mut self.symbols,
            &mut self.strings,
            &mut self.records,
            &mut self.record,
        ] {
            if buffer.len() * 8 > KEEP_LEN {
                *buffer = Vec::new();
            }
        }
    }
}

/// The first `len` bytes of `buffer`, grown (with zeros) when shorter.
fn prefix(buffer: &mut Vec<u64>, len: usize) -> &mut [u8] {
    let words = len.div_ceil(8);
    if buffer.len() < words {
        buffer.resize(words, 0);
    }
    &mut bytes_of_slice_mut(buffer)[..len]
}

/// Why a read did not return the bytes asked for.
#[derive(Debug)]
enum ReadFailure {
    Io(std::io::Error),
    /// The file ends first.
    Truncated,
}

/// Fills `buf` from `offset` with positional reads (one syscall when the
/// bytes are there); returns how many bytes the file had.
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let Some(at) = offset.checked_add(filled as u64) else {
            break;
        };
        #[cfg(unix)]
        let read = std::os::unix::fs::FileExt::read_at(file, &mut buf[filled..], at);
        #[cfg(windows)]
        let read = std::os::windows::fs::FileExt::seek_read(file, &mut buf[filled..], at);
        match read {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A file read with positional reads (`pread`), for `object`'s `ReadCache`
/// on the generic (Mach-O, PE) path.
#[derive(Debug)]
struct PositionalFile<'f> {
    file: &'f File,
    pos: u64,
    len: u64,
}

impl object::read::ReadCacheOps for PositionalFile<'_> {
    fn len(&mut self) -> Result<u64, ()> {
        Ok(self.len)
    }

    fn seek(&mut self, pos: u64) -> Result<u64, ()> {
        self.pos = pos;
        Ok(pos)
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ()> {
        let read = read_at(self.file, buf, self.pos).map_err(|_| ())?;
        self.pos += read as u64;
        Ok(read)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), ()> {
        match self.read(buf)? {
            n if n == buf.len() => Ok(()),
            _ => Err(()),
        }
    }
}

/// The generic path's view of the file: the head already read, anything
/// else read on demand (and cached).
#[derive(Debug)]
struct FileData<'f> {
    head: &'f [u8],
    rest: ReadCache<PositionalFile<'f>>,
}

impl FileData<'_> {
    fn in_head(&self, offset: u64, size: u64) -> Option<&[u8]> {
        let end = usize::try_from(offset.checked_add(size)?).ok()?;
        self.head.get(usize::try_from(offset).ok()?..end)
    }
}

impl<'a> ReadRef<'a> for &'a FileData<'_> {
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
    /// The symbol's size when the format records one (ELF), else 0. Only a
    /// hint for how much to read; the record's own length field decides.
    size: u64,
}

/// The fidius symbols of a library; names borrow from the string table.
#[derive(Debug, Default)]
struct Symbols<'s> {
    /// The file's format and architecture, e.g. `elf x86_64 (64-bit)`.
    target: String,
    library: bool,
    /// `(symbol name, location)` of every metadata record.
    records: Vec<(Cow<'s, str>, Location)>,
}

impl<'s> Symbols<'s> {
    fn add(&mut self, name: impl Into<Cow<'s, str>>, location: Location) {
        let name = name.into();
        if name == LIBRARY_SYMBOL {
            self.library = true;
        } else if name.starts_with(META_SYMBOL_PREFIX) {
            self.records.push((name, location));
        }
    }
}

/// `sh_offset + (address - sh_addr)` when `address` lies in the section.
fn locate(
    address: u64,
    section_address: u64,
    section_offset: u64,
    section_size: u64,
    size: u64,
) -> Option<Location> {
    let rel = address.checked_sub(section_address)?;
    let available = section_size.checked_sub(rel)?;
    Some(Location {
        offset: section_offset.checked_add(rel)?,
        available,
        size,
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

struct Reader<'a> {
    path: &'a Path,
    file: &'a File,
    /// Refuse files for another target (off for tools that only read).
    check_target: bool,
}

impl Reader<'_> {
    fn not_shared(&self, detail: impl Into<String>) -> LoadError {
        LoadError::NotASharedLibrary {
            path: self.path.to_owned(),
            detail: detail.into(),
        }
    }

    fn malformed(&self, symbol: &str, source: meta::MetaError) -> LoadError {
        LoadError::MalformedMetadata {
            path: self.path.to_owned(),
            symbol: symbol.to_owned(),
            source,
        }
    }

    fn wrong_target(&self, found: String) -> LoadError {
        let (format, arch) = host_target();
        LoadError::WrongTarget {
            path: self.path.to_owned(),
            expected: describe(format, arch, cfg!(target_pointer_width = "64")),
            found,
        }
    }

    fn io(&self, source: std::io::Error) -> LoadError {
        LoadError::Io {
            path: self.path.to_owned(),
            source,
        }
    }

    fn read(&self, buffers: &mut Buffers) -> Result<LibraryFile, LoadError> {
        let Buffers {
            head,
            sections,
            symbols,
            strings,
            records,
            record,
        } = buffers;
        let head = prefix(head, HEAD_LEN);
        let len = read_at(self.file, head, 0).map_err(|e| self.io(e))?;
        let head = &head[..len];
        let found = match object::FileKind::parse(head) {
            Ok(object::FileKind::Elf64) => self
                .elf::<object::elf::FileHeader64<object::Endianness>>(
                    head, sections, symbols, strings,
                )?,
            Ok(object::FileKind::Elf32) => self
                .elf::<object::elf::FileHeader32<object::Endianness>>(
                    head, sections, symbols, strings,
                )?,
            _ => return self.generic(head, records, record),
        };
        self.finish(head, found, records, record)
    }

    /// `len` bytes at `offset`: a window of `head` when they are in it (and
    /// aligned to `align`), else read into `buffer`.
    fn fetch<'b>(
        &self,
        head: &'b [u8],
        (offset, len): (u64, u64),
        align: usize,
        buffer: &'b mut Vec<u64>,
    ) -> Result<&'b [u8], ReadFailure> {
        // No file is longer than `i64::MAX` (`pread` refuses such offsets).
        let end = offset
            .checked_add(len)
            .filter(|&end| end <= i64::MAX as u64)
            .ok_or(ReadFailure::Truncated)?;
        if let (Ok(start), Ok(end)) = (usize::try_from(offset), usize::try_from(end))
            && let Some(bytes) = head.get(start..end)
            && bytes.as_ptr().addr() % align == 0
        {
            return Ok(bytes);
        }
        if len > CHECKED_READ_LEN {
            let file_len = self.file.metadata().map_err(ReadFailure::Io)?.len();
            if end > file_len {
                return Err(ReadFailure::Truncated);
            }
        }
        let len = usize::try_from(len).map_err(|_| ReadFailure::Truncated)?;
        let buf = prefix(buffer, len);
        match read_at(self.file, buf, offset) {
            Ok(n) if n == len => Ok(buf),
            Ok(_) => Err(ReadFailure::Truncated),
            Err(e) => Err(ReadFailure::Io(e)),
        }
    }

    /// ELF fast path: reads only the file header, section headers, the
    /// dynamic symbol table (never the much larger `.symtab`) and the
    /// records.
    fn elf<'b, Elf>(
        &self,
        head: &'b [u8],
        section_buffer: &'b mut Vec<u64>,
        symbol_buffer: &'b mut Vec<u64>,
        string_buffer: &'b mut Vec<u64>,
    ) -> Result<Symbols<'b>, LoadError>
    where
        Elf: object::read::elf::FileHeader<Endian = object::Endianness>,
    {
        use object::elf;
        use object::read::elf::SectionHeader as _;
        let bad = |detail: &dyn std::fmt::Display| {
            self.not_shared(format!("malformed ELF file ({detail})"))
        };
        let failed = |what: &str, e: ReadFailure| match e {
            ReadFailure::Io(e) => self.io(e),
            ReadFailure::Truncated => self.not_shared(format!(
                "malformed ELF file ({what} past the end of the file)"
            )),
        };
        let header = Elf::parse(head).map_err(|e| bad(&e))?;
        let endian = header.endian().map_err(|e| bad(&e))?;
        let machine = header.e_machine(endian);
        let host_64 = cfg!(target_pointer_width = "64");
        let host_little = cfg!(target_endian = "little");
        let target = format!(
            "elf {} ({}-bit{})",
            elf_machine_name(machine),
            if header.is_type_64() { 64 } else { 32 },
            if header.is_little_endian() == host_little {
                ""
            } else {
                ", other endianness"
            }
        );
        if self.check_target
            && (host_target().0 != BinaryFormat::Elf
                || machine != host_elf_machine()
                || header.is_type_64() != host_64
                || header.is_little_endian() != host_little)
        {
            return Err(self.wrong_target(target));
        }
        match header.e_type(endian) {
            elf::ET_DYN => {}
            elf::ET_EXEC => return Err(self.not_shared("it is an executable")),
            elf::ET_REL => return Err(self.not_shared("it is a relocatable object (.o)")),
            elf::ET_CORE => return Err(self.not_shared("it is a core dump")),
            other => return Err(self.not_shared(format!("unknown ELF type {other}"))),
        }

        // Section headers.
        let entry = std::mem::size_of::<Elf::SectionHeader>();
        let shoff: u64 = header.e_shoff(endian).into();
        let mut shnum = u64::from(header.e_shnum(endian));
        if shoff != 0 && shnum == 0 {
            // More than 0xff00 sections: the count is in section 0's size.
            let zero = self
                .fetch(head, (shoff, entry as u64), 8, section_buffer)
                .map_err(|e| failed("section headers", e))?;
            let (zero, _) = object::pod::from_bytes::<Elf::SectionHeader>(zero)
                .map_err(|()| bad(&"Invalid ELF section header"))?;
            shnum = zero.sh_size(endian).into();
        }
        if shoff == 0 || shnum == 0 {
            return Err(bad(&"no section headers"));
        }
        if usize::from(header.e_shentsize(endian)) != entry {
            return Err(bad(&"Invalid ELF section header entry size"));
        }
        let size = shnum
            .checked_mul(entry as u64)
            .ok_or_else(|| failed("section headers", ReadFailure::Truncated))?;
        let bytes = self
            .fetch(head, (shoff, size), 8, section_buffer)
            .map_err(|e| failed("section headers", e))?;
        let sections = object::pod::slice_from_all_bytes::<Elf::SectionHeader>(bytes)
            .map_err(|()| bad(&"Invalid ELF section headers"))?;
        // Checked as `object` checks it, though nothing here needs the
        // section names.
        let e_shstrndx = header.e_shstrndx(endian);
        let shstrndx = if let Some(index) = e_shstrndx.index() {
            usize::from(index)
        } else if e_shstrndx == elf::SHN_XINDEX {
            sections.first().map_or(0, |s| s.sh_link(endian) as usize)
        } else if e_shstrndx == elf::SHN_UNDEF {
            return Err(bad(&"Missing ELF e_shstrndx"));
        } else {
            return Err(bad(&"Invalid ELF e_shstrndx"));
        };
        let shstrtab = sections
            .get(shstrndx)
            .ok_or_else(|| bad(&"Invalid ELF e_shstrndx"))?;
        if let Some((offset, size)) = shstrtab.file_range(endian)
            && offset.checked_add(size).is_none()
        {
            return Err(bad(&"Invalid ELF shstrtab size"));
        }

        // `.dynsym` and its string table, usually both in the head.
        let Some(dynsym) = sections
            .iter()
            .find(|s| s.sh_type(endian) == elf::SHT_DYNSYM)
        else {
            return Err(bad(&"no dynamic symbol table"));
        };
        let range = |s: &Elf::SectionHeader| s.file_range(endian).unwrap_or((0, 0));
        let bytes = self
            .fetch(head, range(dynsym), 8, symbol_buffer)
            .map_err(|e| failed("`.dynsym`", e))?;
        let symbols = object::pod::slice_from_all_bytes::<Elf::Sym>(bytes)
            .map_err(|()| bad(&"Invalid ELF symbol table data"))?;
        let strings = match dynsym.sh_link(endian) as usize {
            0 => &[][..],
            link => {
                let section = sections
                    .get(link)
                    .ok_or_else(|| bad(&"Invalid ELF section index"))?;
                if section.sh_type(endian) != elf::SHT_STRTAB {
                    return Err(bad(&"Invalid ELF string section type"));
                }
                self.fetch(head, range(section), 1, string_buffer)
                    .map_err(|e| failed("`.dynstr`", e))?
            }
        };
        let mut found = self.elf_symbols::<Elf>(endian, sections, symbols, strings)?;
        found.target = target;
        Ok(found)
    }

    /// The fidius symbols among `symbols`.
    fn elf_symbols<'s, Elf>(
        &self,
        endian: object::Endianness,
        sections: &[Elf::SectionHeader],
        symbols: &[Elf::Sym],
        strings: &'s [u8],
    ) -> Result<Symbols<'s>, LoadError>
    where
        Elf: object::read::elf::FileHeader<Endian = object::Endianness>,
    {
        use object::elf;
        use object::read::elf::{SectionHeader as _, Sym as _};
        let mut found = Symbols::default();
        for sym in symbols {
            let Some(index) = sym.st_shndx(endian).index() else {
                continue;
            };
            if !matches!(sym.st_bind(), elf::STB_GLOBAL | elf::STB_WEAK) {
                continue;
            }
            let Some(tail) = strings.get(sym.st_name(endian) as usize..) else {
                continue;
            };
            // Most symbols are not ours: compare bytes before anything else.
            if !tail.starts_with(LIBRARY_SYMBOL.as_bytes())
                && !tail.starts_with(META_SYMBOL_PREFIX.as_bytes())
            {
                continue;
            }
            let name = tail.split(|&b| b == 0).next().unwrap_or_default();
            let Ok(name) = std::str::from_utf8(name) else {
                continue;
            };
            let section = sections
                .get(usize::from(index))
                .ok_or_else(|| self.not_shared("malformed ELF file (Invalid ELF section index)"))?;
            if section.sh_type(endian) == elf::SHT_NOBITS {
                continue;
            }
            let address = sym.st_value(endian).into();
            let location = locate(
                address,
                section.sh_addr(endian).into(),
                section.sh_offset(endian).into(),
                section.sh_size(endian).into(),
                sym.st_size(endian).into(),
            );
            // One of ours that points nowhere is a broken file, not a
            // plugin to skip.
            let location = location
                .ok_or_else(|| self.malformed(name, meta::MetaError::OutsideSection { address }))?;
            found.add(name, location);
        }
        Ok(found)
    }

    /// Mach-O and PE: `object`'s generic exports. Not a fast path: it asks
    /// for the file's length and reads through `object`'s `ReadCache`.
    fn generic(
        &self,
        head: &[u8],
        records: &mut Vec<u64>,
        record: &mut Vec<u64>,
    ) -> Result<LibraryFile, LoadError> {
        let len = self.file.metadata().map_err(|e| self.io(e))?.len();
        let data = FileData {
            head,
            rest: ReadCache::new(PositionalFile {
                file: self.file,
                pos: 0,
                len,
            }),
        };
        let file = object::File::parse(&data)
            .map_err(|e| self.not_shared(format!("not a recognised object file ({e})")))?;
        let (format, arch) = host_target();
        let host_64 = cfg!(target_pointer_width = "64");
        let target = describe(file.format(), file.architecture(), file.is_64());
        if self.check_target
            && (file.format() != format || file.architecture() != arch || file.is_64() != host_64)
        {
            return Err(self.wrong_target(target));
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
        let mut found = Symbols {
            target,
            ..Symbols::default()
        };
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
                locate(address, s.address(), offset, size.min(s.size()), 0)
            });
            match location {
                Some(location) => found.add(name.to_owned(), location),
                None if name.starts_with(META_SYMBOL_PREFIX) => {
                    return Err(self.malformed(name, meta::MetaError::OutsideSection { address }));
                }
                None => {}
            }
        }
        self.finish(head, found, records, record)
    }

    fn not_fidius(&self) -> LoadError {
        LoadError::NotAFidiusPlugin {
            path: self.path.to_owned(),
        }
    }

    /// Checks the library symbol is there, then reads and decodes every
    /// record (in symbol name order).
    fn finish(
        &self,
        head: &[u8],
        found: Symbols<'_>,
        span_buffer: &mut Vec<u64>,
        own: &mut Vec<u64>,
    ) -> Result<LibraryFile, LoadError> {
        // The header's presence marks a fidius library; its contents hold
        // pointers and are checked after loading (`native::open`). The ABI
        // and wire versions are checked here, per record.
        if !found.library {
            return Err(self.not_fidius());
        }

        let mut records = found.records;
        records.sort_unstable_by(|a, b| a.0.cmp(&b.0));

        // The records usually sit next to each other in `.rodata`: fetch
        // them with one read where possible.
        let span = record_span(&records).and_then(|range| {
            let bytes = self.fetch(head, range, 1, span_buffer).ok()?;
            Some((range.0, bytes))
        });
        let mut plugins = Vec::with_capacity(records.len());
        for (symbol, location) in &records {
            let (symbol, location) = (&**symbol, *location);
            let prefix = self.record_bytes(symbol, location, HEADER_LEN, head, span, own)?;
            let len = meta::record_len(prefix).map_err(|e| self.malformed(symbol, e))?;
            let bytes = self.record_bytes(symbol, location, len, head, span, own)?;
            let meta = meta::decode(bytes).map_err(|e| self.malformed(symbol, e))?;
            // A sound record in a symbol of another size: the file was
            // edited. (Formats without symbol sizes, Mach-O, say 0.)
            if location.size != 0 && location.size != len as u64 {
                return Err(self.malformed(
                    symbol,
                    meta::MetaError::SymbolSize {
                        symbol: location.size,
                        record: len,
                    },
                ));
            }
            self.check_version("ABI", ABI_VERSION, meta.abi_version)?;
            self.check_version("wire", WIRE_VERSION, meta.wire_version)?;
            let suffix = &symbol[META_SYMBOL_PREFIX.len()..];
            let mut descriptor_symbol =
                String::with_capacity(DESCRIPTOR_SYMBOL_PREFIX.len() + suffix.len());
            descriptor_symbol.push_str(DESCRIPTOR_SYMBOL_PREFIX);
            descriptor_symbol.push_str(suffix);
            plugins.push(FoundPlugin {
                meta,
                descriptor_symbol,
            });
        }
        Ok(LibraryFile {
            plugins,
            target: found.target,
        })
    }

    /// `len` bytes of the record at `location`: from `span` when it holds
    /// them, else read on their own.
    fn record_bytes<'b>(
        &self,
        symbol: &str,
        location: Location,
        len: usize,
        head: &'b [u8],
        span: Option<(u64, &'b [u8])>,
        own: &'b mut Vec<u64>,
    ) -> Result<&'b [u8], LoadError> {
        if len as u64 > location.available {
            return Err(self.malformed(symbol, truncated(len)));
        }
        if let Some((start, bytes)) = span
            && let Some(from) = location.offset.checked_sub(start)
            && let Ok(from) = usize::try_from(from)
            && let Some(bytes) = bytes.get(from..from.saturating_add(len))
        {
            return Ok(bytes);
        }
        match self.fetch(head, (location.offset, len as u64), 1, own) {
            Ok(bytes) => Ok(bytes),
            Err(ReadFailure::Io(e)) => Err(self.io(e)),
            Err(ReadFailure::Truncated) => Err(self.malformed(symbol, truncated(len))),
        }
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
            path: self.path.to_owned(),
            what,
            expected,
            found,
        })
    }
}

/// The file range of one read covering every record, when they lie within
/// 64 KiB of each other: from the first to the end of the last, by the
/// symbols' sizes where known (else with some slack). Only a hint: a record
/// it does not hold is read on its own.
fn record_span(records: &[(Cow<'_, str>, Location)]) -> Option<(u64, u64)> {
    const SLACK: u64 = 1024;
    let start = records.iter().map(|r| r.1.offset).min()?;
    let mut end = start;
    for (_, location) in records {
        let len = if location.size >= HEADER_LEN as u64 {
            location.size
        } else {
            SLACK
        };
        let len = len.min(location.available);
        end = end.max(location.offset.checked_add(len)?);
    }
    let len = end - start;
    (len <= 64 * 1024).then_some((start, len))
}

fn truncated(needed: usize) -> meta::MetaError {
    meta::MetaError::Truncated {
        offset: 0,
        needed,
        available: 0,
    }
}
