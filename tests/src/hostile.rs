//! The hostile corpus: artifacts and packages made to break a host, each
//! written to a file by [`generate`] (run it as
//! `cargo run -p fidius-tests --bin hostile-corpus -- DIR`, or through
//! `cargo xtask hostile-corpus DIR`). `cargo-fidius/tests/hostile.rs` runs
//! every one through `inspect`, `verify`, `PluginLibrary::open`,
//! `WasmRuntime::open` and `Package::open`.
//!
//! Everything is derived from the fixtures' real builds (the
//! `fixture-plugins` library and component, the `fixture-no-meta`
//! library), patched at the byte where each fault lives, so the corpus
//! follows the ABI as it changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use fidius::runtime::package::{
    self, Artifact, ArtifactKind, Manifest, PackageInfo, PluginEntry, SecretKey,
};
use object::{Object as _, ObjectSection as _, ObjectSymbol as _};

/// The key the corpus's packages and signatures are made with; a host
/// trusting [`Corpus::public_key`] accepts exactly what it signed.
pub fn key() -> SecretKey {
    SecretKey::from_bytes(&[42; 32])
}

/// A key nobody trusts.
fn stranger() -> SecretKey {
    SecretKey::from_bytes(&[13; 32])
}

/// The plugin every patched artifact declares: `Basic`, of fixture-api's
/// `Calculator`.
pub const PLUGIN: &str = "Basic";
const META_SYMBOL: &str = "fidius_meta__Calculator__Basic";

/// What [`generate`] wrote.
#[derive(Debug)]
pub struct Corpus {
    /// The directory holding the corpus.
    pub dir: PathBuf,
    /// The public key file of [`key`] (`corpus.pub`).
    pub public_key: PathBuf,
    /// Every hostile file's name in `dir`, in the order written.
    pub cases: Vec<String>,
}

/// The real artifacts the corpus is cut from.
#[derive(Debug, Clone)]
pub struct Sources {
    /// A fidius plugin library for this host (`fixture-plugins`).
    pub library: PathBuf,
    /// A shared library without fidius metadata (`fixture-no-meta`).
    pub plain_library: PathBuf,
    /// A fidius WASM component (`fixture-plugins`, `wasm32-wasip2`).
    pub component: PathBuf,
}

impl Sources {
    /// The fixtures' debug builds (built first when needed).
    pub fn fixtures() -> Self {
        Self {
            library: crate::fixture("fixture_plugins"),
            plain_library: crate::fixture("fixture_no_meta"),
            component: crate::wasm_fixture("fixture_plugins"),
        }
    }
}

/// Writes the corpus into `dir` (emptied first) from `sources`.
///
/// # Panics
/// When a source cannot be read or `dir` written: the corpus is a test
/// input, and a broken one must stop the run.
pub fn generate(dir: &Path, sources: &Sources) -> Corpus {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create the corpus directory");
    let mut out = Writer {
        dir: dir.to_owned(),
        cases: Vec::new(),
    };
    let public_key = dir.join("corpus.pub");
    std::fs::write(&public_key, key().public_key().to_file_text()).expect("write corpus.pub");
    let library = read(&sources.library);
    let component = read(&sources.component);
    let record = Record::find(&library);

    // --- Files that are not libraries at all.
    out.file("empty.so", b"");
    out.file("text.so", b"#!/bin/sh\necho not a library\n");
    out.file("truncated.so", &library[..library.len().min(4096) / 2]);
    let mut magic = library.clone();
    magic[1..4].copy_from_slice(b"FLE");
    out.file("wrong-magic.so", &magic);
    out.special("directory.so", |path| std::fs::create_dir(path));
    out.special("fifo.so", |path| {
        let status = Command::new("mkfifo").arg(path).status()?;
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("mkfifo: {status}")))
        }
    });
    out.special("dangling-link.so", |path| {
        std::os::unix::fs::symlink("does-not-exist.so", path)
    });
    out.special("link-loop.so", |path| {
        std::os::unix::fs::symlink("link-loop.so", path)
    });
    out.special("link-to-dev-zero.so", |path| {
        std::os::unix::fs::symlink("/dev/zero", path)
    });
    out.file("no-fidius.so", &read(&sources.plain_library));

    // --- Libraries with one fault each.
    let mut foreign = library.clone();
    // `e_machine` (offset 18): EM_AARCH64, or EM_X86_64 on an aarch64 host.
    let machine: u16 = if cfg!(target_arch = "aarch64") {
        62
    } else {
        183
    };
    foreign[18..20].copy_from_slice(&machine.to_le_bytes());
    out.file("foreign-arch.so", &foreign);
    out.file(
        "abi-version.so",
        &record.patched(&library, 16, &999u32.to_le_bytes()),
    );
    out.file(
        "wire-version.so",
        &record.patched(&library, 20, &999u32.to_le_bytes()),
    );
    out.file(
        "interface-version.so",
        &record.patched(&library, 24, &7u32.to_le_bytes()),
    );
    let mut hash = record.bytes(&library)[32..40].to_vec();
    hash[0] ^= 0xff;
    out.file("interface-hash.so", &record.patched(&library, 32, &hash));
    out.file("record-magic.so", &record.patched(&library, 0, b"FIDIUSXX"));
    out.file(
        "record-length.so",
        &record.patched(&library, 12, &u32::MAX.to_le_bytes()),
    );
    out.file(
        "record-outside.so",
        &record.symbol_patched(&library, 8, u64::MAX / 2),
    );
    out.file(
        "record-size.so",
        &record.symbol_patched(&library, 16, 1 << 40),
    );
    // Signed, then one byte changed: a detached signature that no longer
    // matches.
    let mut tampered = library.clone();
    let sig = key().sign(&tampered).to_file_text();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    out.file("tampered-signed.so", &tampered);
    out.file("tampered-signed.so.sig", sig.as_bytes());
    out.file("stranger-signed.so", &library);
    out.file(
        "stranger-signed.so.sig",
        stranger().sign(&library).to_file_text().as_bytes(),
    );

    // --- Components.
    out.file("core-module.wasm", &LOOPING_MODULE);
    out.file("truncated.wasm", &component[..component.len() / 2]);
    out.file("no-metadata.wasm", &looping_component());
    out.file(
        "bad-metadata.wasm",
        &stamp(&looping_component(), b"FIDIUSMD\x01"),
    );
    let mut abi = record.bytes(&library).to_vec();
    abi[16..20].copy_from_slice(&999u32.to_le_bytes());
    out.file("abi-version.wasm", &stamp(&looping_component(), &abi));
    let mut hash_record = record.bytes(&library).to_vec();
    hash_record[32] ^= 0xff;
    out.file(
        "interface-hash.wasm",
        &stamp(&looping_component(), &hash_record),
    );
    out.file(
        "start-loops.wasm",
        &stamp(&looping_component(), record.bytes(&library)),
    );

    // --- Packages.
    let native_path = format!("artifacts/{}/libplugin.so", package::HOST_TARGET);
    let native = |bytes: &[u8]| {
        Packed::new(
            ArtifactKind::Native,
            package::HOST_TARGET,
            &native_path,
            bytes,
        )
    };
    let good = native(&library).write(Some(&key()));
    out.file("empty.fidpkg", b"");
    out.file("truncated.fidpkg", &good[..good.len() / 2]);
    out.file("not-gzip.fidpkg", b"PK\x03\x04 a zip archive");
    out.file("unsigned.fidpkg", &native(&library).write(None));
    out.file(
        "stranger-signed.fidpkg",
        &native(&library).write(Some(&stranger())),
    );
    // A tampered byte in each region of a signed package: the gzip header,
    // its check value, the compressed stream, and (framed again, so that
    // the outer checks pass) the manifest, the signature and the artifact.
    let mut header = good.clone();
    header[4] ^= 0x01; // the header's mtime
    out.file("tampered-header.fidpkg", &header);
    let mut check = good.clone();
    check[16] ^= 0x01;
    out.file("tampered-check.fidpkg", &check);
    let mut stream = good.clone();
    let middle = 20 + (stream.len() - 28) / 2;
    stream[middle] ^= 0x01;
    out.file("tampered-stream.fidpkg", &stream);
    let entries = entries_of(&good);
    let edited = |name: &str, edit: &dyn Fn(&mut Vec<u8>)| {
        let mut entries = entries.clone();
        let entry = entries
            .iter_mut()
            .find(|e| e.name == name.as_bytes())
            .unwrap_or_else(|| panic!("the package has `{name}`"));
        edit(&mut entry.data);
        raw_package(&entries)
    };
    out.file(
        "tampered-manifest.fidpkg",
        &edited(package::MANIFEST, &|text| {
            let at = find(text, b"0.1.0").expect("the version in the manifest");
            text[at] = b'9';
        }),
    );
    out.file(
        "tampered-signature.fidpkg",
        &edited(package::SIGNATURE, &|text| {
            // A character of the base64 signature value.
            let at = text.len() - 10;
            text[at] = if text[at] == b'A' { b'B' } else { b'A' };
        }),
    );
    out.file(
        "tampered-artifact.fidpkg",
        &edited(&native_path, &|data| {
            let last = data.len() - 1;
            data[last] ^= 1;
        }),
    );
    let signed = |files: &[(&str, &[u8])]| {
        let data = b"not a library";
        let (m, s) = signed_manifest(&native_path, data);
        let mut entries = vec![m, s, Raw::file(&native_path, data)];
        entries.extend(files.iter().map(|(name, data)| Raw::file(name, data)));
        entries
    };
    let with = |extra: Raw| {
        let mut entries = signed(&[]);
        entries.push(extra);
        raw_package(&entries)
    };
    out.file(
        "path-traversal.fidpkg",
        &with(Raw::file("artifacts/../../../escaped", b"x")),
    );
    out.file(
        "absolute-path.fidpkg",
        &with(Raw::file("/tmp/fidius-hostile-absolute", b"x")),
    );
    out.file(
        "symlink-entry.fidpkg",
        &with(Raw::special("artifacts/link", tar::EntryType::Symlink)),
    );
    out.file(
        "hardlink-entry.fidpkg",
        &with(Raw::special("artifacts/hard", tar::EntryType::Link)),
    );
    out.file(
        "device-entry.fidpkg",
        &with(Raw::special("artifacts/dev", tar::EntryType::Char)),
    );
    out.file(
        "duplicate-entry.fidpkg",
        &with(Raw::file(&native_path, b"not a library")),
    );
    out.file(
        "oversized-entry.fidpkg",
        &with(Raw::declared("artifacts/huge", 1 << 40)),
    );
    out.file("gzip-bomb.fidpkg", &gzip_bomb());
    out.file("missing-artifact.fidpkg", &{
        let mut entries = signed(&[]);
        entries.pop();
        raw_package(&entries)
    });
    out.file(
        "no-manifest.fidpkg",
        &raw_package(&[Raw::file(&native_path, b"x")]),
    );
    out.file(
        "wrong-abi.fidpkg",
        &native(&record.patched(&library, 16, &999u32.to_le_bytes())).write(Some(&key())),
    );
    out.file(
        "foreign-target.fidpkg",
        &Packed::new(
            ArtifactKind::Native,
            "riscv64gc-unknown-linux-gnu",
            "artifacts/riscv64gc-unknown-linux-gnu/libplugin.so",
            &foreign,
        )
        .write(Some(&key())),
    );
    let mut capability = Packed::new(
        ArtifactKind::Wasm,
        package::WASM_TARGET,
        "artifacts/wasm32-wasip2/plugin.wasm",
        &component,
    );
    capability.capabilities = vec!["dir:/data".into()];
    out.file(
        "ungranted-capability.fidpkg",
        &capability.write(Some(&key())),
    );
    out.file(
        "start-loops.fidpkg",
        &Packed::new(
            ArtifactKind::Wasm,
            package::WASM_TARGET,
            "artifacts/wasm32-wasip2/plugin.wasm",
            &stamp(&looping_component(), record.bytes(&library)),
        )
        .write(Some(&key())),
    );

    Corpus {
        dir: dir.to_owned(),
        public_key,
        cases: out.cases,
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read `{}`: {e}", path.display()))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

struct Writer {
    dir: PathBuf,
    cases: Vec<String>,
}

impl Writer {
    fn file(&mut self, name: &str, bytes: &[u8]) {
        let path = self.dir.join(name);
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write `{}`: {e}", path.display()));
        // A detached signature belongs to the artifact before it.
        if !name.ends_with(".sig") {
            self.cases.push(name.to_owned());
        }
    }

    fn special(&mut self, name: &str, make: impl FnOnce(&Path) -> std::io::Result<()>) {
        let path = self.dir.join(name);
        make(&path).unwrap_or_else(|e| panic!("make `{}`: {e}", path.display()));
        self.cases.push(name.to_owned());
    }
}

/// Where `#[plugin_impl]` put the metadata record of [`PLUGIN`] in a
/// library: its `.dynsym` entry and its bytes.
struct Record {
    /// File offset of the symbol's `Elf64_Sym`.
    symbol: usize,
    /// File offset and length of the record.
    offset: usize,
    len: usize,
}

impl Record {
    fn find(library: &[u8]) -> Self {
        let file = object::File::parse(library).expect("the fixture library parses");
        let symbol = file
            .dynamic_symbols()
            .find(|s| s.name() == Ok(META_SYMBOL))
            .unwrap_or_else(|| panic!("the fixture library exports `{META_SYMBOL}`"));
        let section = file
            .section_by_index(symbol.section_index().expect("a defined symbol"))
            .expect("its section");
        let (start, _) = section.file_range().expect("a section with file data");
        let offset = (start + symbol.address() - section.address()) as usize;
        // The symbol's own entry: `.dynsym` holds 24-byte `Elf64_Sym`s in
        // symbol-index order.
        let dynsym = file.section_by_name(".dynsym").expect("a .dynsym section");
        let (table, _) = dynsym.file_range().expect(".dynsym has file data");
        let entry = table as usize + symbol.index().0 * 24;
        assert_eq!(
            u64::from_le_bytes(library[entry + 8..entry + 16].try_into().unwrap()),
            symbol.address(),
            "the .dynsym entry of `{META_SYMBOL}`"
        );
        assert_eq!(&library[offset..offset + 8], b"FIDIUSMD");
        Self {
            symbol: entry,
            offset,
            len: symbol.size() as usize,
        }
    }

    fn bytes<'a>(&self, library: &'a [u8]) -> &'a [u8] {
        &library[self.offset..self.offset + self.len]
    }

    /// `library` with the record's bytes at `at` replaced by `with`.
    fn patched(&self, library: &[u8], at: usize, with: &[u8]) -> Vec<u8> {
        let mut out = library.to_vec();
        out[self.offset + at..self.offset + at + with.len()].copy_from_slice(with);
        out
    }

    /// `library` with the symbol's field at `at` (8: `st_value`, 16:
    /// `st_size`) set to `value`.
    fn symbol_patched(&self, library: &[u8], at: usize, value: u64) -> Vec<u8> {
        let mut out = library.to_vec();
        out[self.symbol + at..self.symbol + at + 8].copy_from_slice(&value.to_le_bytes());
        out
    }
}

/// A core module whose start function loops forever: the type section
/// `() -> ()`, one function of that type, the start section naming it,
/// and its body `loop br 0 end`.
const LOOPING_MODULE: [u8; 32] = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: func () -> ()
    0x03, 0x02, 0x01, 0x00, // function section: one func of type 0
    0x08, 0x01, 0x00, // start section: func 0
    0x0a, 0x09, 0x01, 0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, // code
];

/// A component that instantiates [`LOOPING_MODULE`]: its start function
/// runs, and loops, as soon as the component is instantiated.
fn looping_component() -> Vec<u8> {
    let mut out = b"\0asm\x0d\x00\x01\x00".to_vec(); // component, layer 1
    out.push(0x01); // core module section
    out.push(LOOPING_MODULE.len() as u8);
    out.extend_from_slice(&LOOPING_MODULE);
    // Core instance section: one instance, `instantiate` module 0, no args.
    out.extend_from_slice(&[0x02, 0x04, 0x01, 0x00, 0x00, 0x00]);
    out
}

/// `component` with a `fidius-meta` section holding `records`, appended
/// as its last section (what `cargo fidius stamp` writes, without its
/// checks).
fn stamp(component: &[u8], records: &[u8]) -> Vec<u8> {
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
    let name = b"fidius-meta";
    let mut content = vec![name.len() as u8];
    content.extend_from_slice(name);
    content.extend_from_slice(records);
    let mut out = component.to_vec();
    out.push(0);
    leb128(&mut out, content.len());
    out.extend_from_slice(&content);
    out
}

/// One artifact to package.
struct Packed {
    kind: ArtifactKind,
    target: String,
    path: String,
    bytes: Vec<u8>,
    capabilities: Vec<String>,
}

impl Packed {
    fn new(kind: ArtifactKind, target: &str, path: &str, bytes: &[u8]) -> Self {
        Self {
            kind,
            target: target.into(),
            path: path.into(),
            bytes: bytes.to_vec(),
            capabilities: Vec::new(),
        }
    }

    /// The package, through the real writer.
    fn write(&self, key: Option<&SecretKey>) -> Vec<u8> {
        let mut manifest = manifest(&self.path);
        manifest.artifacts[0].kind = self.kind;
        manifest.artifacts[0].target = self.target.clone();
        manifest.artifacts[0].capabilities = self.capabilities.clone();
        let artifacts = BTreeMap::from([(self.path.clone(), self.bytes.clone())]);
        package::write_package(&manifest, &artifacts, key).expect("write the package")
    }
}

/// The manifest of a package of plugin [`PLUGIN`] with one native
/// artifact at `path` (size and digest filled in by the writer).
fn manifest(path: &str) -> Manifest {
    Manifest {
        format_version: package::FORMAT_VERSION,
        package: PackageInfo {
            name: "hostile".into(),
            version: "0.1.0".into(),
        },
        plugins: vec![PluginEntry {
            name: PLUGIN.into(),
            interface: "Calculator".into(),
            interface_version: 1,
            interface_hash: "0x90b311f6c432a8c6".into(),
        }],
        artifacts: vec![Artifact {
            kind: ArtifactKind::Native,
            target: package::HOST_TARGET.into(),
            path: path.into(),
            size: 0,
            sha256: String::new(),
            capabilities: Vec::new(),
        }],
    }
}

/// The manifest listing `data` at `path`, signed, as two entries.
fn signed_manifest(path: &str, data: &[u8]) -> (Raw, Raw) {
    let mut m = manifest(path);
    m.artifacts[0].size = data.len() as u64;
    m.artifacts[0].sha256 = package::sha256_hex(data);
    let text = m.to_toml();
    let sig = key().sign(text.as_bytes()).to_file_text();
    (
        Raw::file(package::MANIFEST, text.as_bytes()),
        Raw::file(package::SIGNATURE, sig.as_bytes()),
    )
}

/// One raw tar entry, written without any of `tar`'s path checks (so that
/// hostile names get in).
#[derive(Debug, Clone)]
pub struct Raw {
    /// The entry's name.
    pub name: Vec<u8>,
    /// Its type.
    pub kind: tar::EntryType,
    /// Its contents.
    pub data: Vec<u8>,
    /// The size its header declares, when not `data.len()`.
    pub declared: Option<u64>,
    /// Its modification time.
    pub mtime: u64,
}

impl Raw {
    /// A regular file.
    pub fn file(name: &str, data: &[u8]) -> Self {
        Self {
            name: name.as_bytes().to_vec(),
            kind: tar::EntryType::Regular,
            data: data.to_vec(),
            declared: None,
            mtime: 0,
        }
    }

    /// An empty entry of type `kind` (link, device, directory…).
    pub fn special(name: &str, kind: tar::EntryType) -> Self {
        Self {
            kind,
            ..Self::file(name, b"")
        }
    }

    /// A regular file whose header declares `size` bytes, with none after
    /// it.
    pub fn declared(name: &str, size: u64) -> Self {
        Self {
            declared: Some(size),
            ..Self::file(name, b"")
        }
    }
}

/// A `.fidpkg` of `entries` as given: canonical ustar headers, the
/// package's gzip framing.
pub fn raw_package(entries: &[Raw]) -> Vec<u8> {
    crate::fidpkg_frame(&raw_tar(entries))
}

fn raw_tar(entries: &[Raw]) -> Vec<u8> {
    let mut tar = Vec::new();
    for e in entries {
        let mut header = tar::Header::new_ustar();
        header.as_old_mut().name[..e.name.len()].copy_from_slice(&e.name);
        header.set_size(e.declared.unwrap_or(e.data.len() as u64));
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(e.mtime);
        header.set_entry_type(e.kind);
        header.set_cksum();
        tar.extend_from_slice(header.as_bytes());
        tar.extend_from_slice(&e.data);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }
    tar.extend_from_slice(&[0; 1024]);
    tar
}

/// The entries of a package the real writer made.
fn entries_of(package: &[u8]) -> Vec<Raw> {
    let tar = crate::fidpkg_tar(package);
    let mut archive = tar::Archive::new(tar.as_slice());
    archive
        .entries()
        .expect("a tar stream")
        .map(|entry| {
            let mut entry = entry.expect("a tar entry");
            let name = entry.path_bytes().into_owned();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).expect("an entry's data");
            Raw {
                name,
                kind: tar::EntryType::Regular,
                data,
                declared: None,
                mtime: 0,
            }
        })
        .collect()
}

/// A package whose three entries of 400 MiB of zeros each (within the
/// per-entry limit) inflate past the 1 GiB total limit from about 1.2 MiB
/// on disk. The tar stream is deflated piece by piece, never held whole.
fn gzip_bomb() -> Vec<u8> {
    use std::io::Write as _;
    const ENTRY: u64 = 400 << 20;
    let mut tar_len = 0u64;
    let mut crc = flate2::Crc::new();
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let mut put = |bytes: &[u8]| {
        crc.update(bytes);
        tar_len += bytes.len() as u64;
        deflate.write_all(bytes).expect("deflate into memory");
    };
    let zeros = vec![0u8; 1 << 20];
    for i in 0..3 {
        let header = raw_tar(&[Raw::declared(&format!("artifacts/zeros-{i}"), ENTRY)]);
        put(&header[..512]);
        for _ in 0..ENTRY / zeros.len() as u64 {
            put(&zeros);
        }
    }
    put(&[0; 1024]);
    let mut body = deflate.finish().expect("deflate into memory");
    body.extend_from_slice(&crc.sum().to_le_bytes());
    body.extend_from_slice(&(tar_len as u32).to_le_bytes());
    crate::fidpkg_wrap(&body)
}
