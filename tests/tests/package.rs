//! Signed `.fidpkg` packages: round trip, reproducibility, every hostile
//! archive case with its specific error, and single-byte tampering.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fidius::runtime::package::{
    self, Artifact, ArtifactKind, ErrorKind, Limits, Manifest, Package, PackageError, PackageInfo,
    PluginEntry, PublicKey, SecretKey, TrustPolicy, VerifiedPackage,
};
use fidius_tests::hostile::{Raw, raw_package};
use fidius_tests::{fixture, scratch};
use fixture_api::CalculatorClient;
use proptest::prelude::*;

fn key() -> SecretKey {
    // A fixed key keeps the packages (and the property test) reproducible.
    SecretKey::from_bytes(&[7; 32])
}

fn policy(dir: &Path) -> TrustPolicy {
    TrustPolicy::new()
        .trust(key().public_key())
        .cache_dir(dir.join("cache"))
}

fn manifest(artifacts: &[(&str, &str)]) -> Manifest {
    Manifest {
        format_version: package::FORMAT_VERSION,
        package: PackageInfo {
            name: "demo".into(),
            version: "1.2.3".into(),
        },
        plugins: vec![PluginEntry {
            name: "Basic".into(),
            interface: "Calculator".into(),
            interface_version: 1,
            interface_hash: "0x90b311f6c432a8c6".into(),
        }],
        artifacts: artifacts
            .iter()
            .map(|(target, path)| Artifact {
                kind: ArtifactKind::Native,
                target: (*target).into(),
                path: (*path).into(),
                size: 0,
                sha256: String::new(),
                capabilities: Vec::new(),
            })
            .collect(),
    }
}

/// A small signed package with one fake artifact.
fn small_package() -> Vec<u8> {
    let path = "artifacts/x86_64-unknown-linux-gnu/libdemo.so";
    let mut artifacts = BTreeMap::new();
    artifacts.insert(path.to_string(), b"\x7fELF not really a library".to_vec());
    package::write_package(
        &manifest(&[("x86_64-unknown-linux-gnu", path)]),
        &artifacts,
        Some(&key()),
    )
    .unwrap()
}

/// The real fixture library, packaged for this host.
fn real_package(key: Option<&SecretKey>) -> Vec<u8> {
    let lib = std::fs::read(fixture("fixture_plugins")).unwrap();
    let path = format!("artifacts/{}/libfixture_plugins.so", package::HOST_TARGET);
    let mut artifacts = BTreeMap::new();
    artifacts.insert(path.clone(), lib);
    package::write_package(&manifest(&[(package::HOST_TARGET, &path)]), &artifacts, key).unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_signed_package_opens_verifies_and_loads() {
    let dir = scratch("package_round_trip");
    let path = write(&dir, "demo-1.2.3.fidpkg", &real_package(Some(&key())));
    let package = Package::open(&path, &policy(&dir)).unwrap();
    assert_eq!(package.signer(), Some(key().id()));
    assert_eq!(package.manifest().package.version, "1.2.3");
    assert_eq!(package.artifact().target, package::HOST_TARGET);
    let cached = package.native_library().unwrap().path().to_owned();
    assert!(
        cached.starts_with(dir.join("cache")),
        "{}",
        cached.display()
    );
    let calc: CalculatorClient = package.load("Basic").unwrap();
    assert_eq!(calc.add(40, 2).unwrap(), 42);

    // A second open hits the cache; a replaced cache entry is rewritten.
    // (Replaced, not overwritten in place: the first copy is still mapped.)
    let tmp = dir.join("garbage");
    std::fs::write(&tmp, b"garbage").unwrap();
    std::fs::rename(&tmp, &cached).unwrap();
    let again = Package::open(&path, &policy(&dir)).unwrap();
    let calc: CalculatorClient = again.load("Doubler").unwrap();
    assert_eq!(calc.add(1, 1).unwrap(), 4);
}

#[test]
fn packages_are_reproducible() {
    assert_eq!(real_package(Some(&key())), real_package(Some(&key())));
    assert_eq!(small_package(), small_package());
    let bytes = small_package();
    assert_eq!(
        &bytes[..16],
        b"\x1f\x8b\x08\x04\0\0\0\0\0\xff\x08\0FD\x04\0"
    );
    // Any gzip reader can list it.
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            package::MANIFEST,
            package::SIGNATURE,
            "artifacts/x86_64-unknown-linux-gnu/libdemo.so"
        ]
    );
}

#[test]
fn unsigned_packages_need_an_explicit_opt_out() {
    let dir = scratch("package_unsigned");
    let path = write(&dir, "unsigned.fidpkg", &real_package(None));
    let err = Package::open(&path, &policy(&dir)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsigned, "{err}");
    let package = Package::open(&path, &policy(&dir).allow_unsigned()).unwrap();
    assert_eq!(package.signer(), None);
}

#[test]
fn a_package_without_an_artifact_for_this_host_says_what_it_has() {
    let dir = scratch("package_no_artifact");
    // A target no host runs, and a fake library for this host.
    let package_for = |target: &str| {
        let path = format!("artifacts/{target}/libdemo.so");
        let mut artifacts = BTreeMap::new();
        artifacts.insert(path.clone(), b"\x7fELF not really a library".to_vec());
        package::write_package(&manifest(&[(target, &path)]), &artifacts, Some(&key())).unwrap()
    };
    let other = write(
        &dir,
        "other.fidpkg",
        &package_for("riscv64gc-unknown-none-elf"),
    );
    match Package::open(&other, &policy(&dir)) {
        Err(PackageError::NoArtifact {
            kind,
            target,
            available,
            ..
        }) => {
            assert_eq!(kind, "native");
            assert_eq!(target, package::HOST_TARGET);
            assert_eq!(available, ["native/riscv64gc-unknown-none-elf"]);
        }
        other => panic!("expected no artifact, got {other:?}"),
    }
    // For this host, the fake artifact is picked, and it is no library.
    let fake = write(&dir, "fake.fidpkg", &package_for(package::HOST_TARGET));
    match Package::open(&fake, &policy(&dir)) {
        Err(PackageError::Load(e)) => {
            assert!(e.to_string().contains("not a shared library"), "{e}")
        }
        other => panic!("expected a load error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Hostile archives.

fn entry(name: &str, data: &[u8]) -> Raw {
    Raw::file(name, data)
}

fn special(name: &str, kind: tar::EntryType) -> Raw {
    Raw::special(name, kind)
}

const ART: &str = "artifacts/x86_64-unknown-linux-gnu/libdemo.so";

/// A manifest listing `ART` as `data` (size and digest filled in), its
/// signature, and the entries for both.
fn signed_manifest(data: &[u8], edit: impl FnOnce(&mut Manifest)) -> (Raw, Raw) {
    let mut m = manifest(&[("x86_64-unknown-linux-gnu", ART)]);
    m.artifacts[0].size = data.len() as u64;
    m.artifacts[0].sha256 = package::sha256_hex(data);
    edit(&mut m);
    let text = m.to_toml();
    let sig = key().sign(text.as_bytes()).to_file_text();
    (
        entry(package::MANIFEST, text.as_bytes()),
        entry(package::SIGNATURE, sig.as_bytes()),
    )
}

fn valid_entries() -> Vec<Raw> {
    let data = b"library bytes";
    let (m, s) = signed_manifest(data, |_| {});
    vec![m, s, entry(ART, data)]
}

/// Every path under `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}

fn open(bytes: &[u8], policy: &TrustPolicy) -> Result<VerifiedPackage, PackageError> {
    VerifiedPackage::from_bytes(Path::new("test.fidpkg"), bytes, policy)
}

#[test]
fn every_hostile_archive_gets_its_own_error() {
    let dir = scratch("package_hostile");
    let trusted = policy(&dir);
    // The raw builder makes the same bytes as the real writer.
    assert!(open(&raw_package(&valid_entries()), &trusted).is_ok());

    let data = b"library bytes".as_slice();
    let with = |extra: Raw| {
        let mut entries = valid_entries();
        entries.push(extra);
        raw_package(&entries)
    };
    let other_key = SecretKey::generate().unwrap();
    let unknown_signature = {
        let (m, _) = signed_manifest(data, |_| {});
        let sig = other_key.sign(&m.data).to_file_text();
        raw_package(&[
            m,
            entry(package::SIGNATURE, sig.as_bytes()),
            entry(ART, data),
        ])
    };
    let forged_signature = {
        // Right key id, signature over different bytes.
        let (m, _) = signed_manifest(data, |_| {});
        let sig = key().sign(b"something else").to_file_text();
        raw_package(&[
            m,
            entry(package::SIGNATURE, sig.as_bytes()),
            entry(ART, data),
        ])
    };
    let manifest_changed_after_signing = {
        let (m, s) = signed_manifest(data, |_| {});
        let text = String::from_utf8(m.data).unwrap().replace("1.2.3", "9.9.9");
        raw_package(&[
            entry(package::MANIFEST, text.as_bytes()),
            s,
            entry(ART, data),
        ])
    };
    let bad_toml = {
        let text = b"format_version = 1\n[package\nname = ";
        let sig = key().sign(text).to_file_text();
        raw_package(&[
            entry(package::MANIFEST, text),
            entry(package::SIGNATURE, sig.as_bytes()),
        ])
    };
    let future_format = {
        let text = b"format_version = 7\nsomething_new = true\n";
        let sig = key().sign(text).to_file_text();
        raw_package(&[
            entry(package::MANIFEST, text),
            entry(package::SIGNATURE, sig.as_bytes()),
        ])
    };
    let (m, s) = signed_manifest(data, |m| m.artifacts[0].size += 1);
    let size_mismatch = raw_package(&[m, s, entry(ART, data)]);
    let tampered_artifact = raw_package(&{
        let (m, s) = signed_manifest(data, |_| {});
        vec![m, s, entry(ART, b"LIBRARY bytes")]
    });
    // Through `Package::open`, which stages the cache copy while the
    // digest is computed: the copy is thrown away, none is left behind.
    let file = dir.join("tampered.fidpkg");
    std::fs::write(&file, &tampered_artifact).unwrap();
    match Package::open(&file, &trusted) {
        Err(PackageError::DigestMismatch { .. }) => {}
        other => panic!("tampered artifact: expected a digest mismatch, got {other:?}"),
    }
    let left: Vec<_> = walk(&dir.join("cache"))
        .into_iter()
        .filter(|p| p.is_file())
        .collect();
    assert!(left.is_empty(), "files left in the cache: {left:?}");
    std::fs::remove_dir_all(dir.join("cache")).unwrap();
    let missing_artifact = raw_package(&{
        let (m, s) = signed_manifest(data, |_| {});
        vec![m, s]
    });
    let non_canonical = raw_package(&{
        let mut entries = valid_entries();
        entries[2].mtime = 1_700_000_000;
        entries
    });
    let good = raw_package(&valid_entries());
    let truncated = good[..good.len() - 20].to_vec();
    let truncated_unnoticed_by_the_digest = {
        // Cut the deflate data and fix up the header digest: gzip itself
        // must notice.
        let mut cut = good[..good.len() - 20].to_vec();
        let check = fidius_tests::fidpkg_check(&cut[20..]);
        cut[16..20].copy_from_slice(&check);
        cut
    };
    // Bytes after the gzip stream, with the header's check value fixed up
    // so that the reader gets as far as the end of the stream.
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"extra");
    let check = fidius_tests::fidpkg_check(&trailing[20..]);
    trailing[16..20].copy_from_slice(&check);
    let bomb = raw_package(&[entry("artifacts/bomb", &vec![0u8; 64 << 20])]);
    let small_limits = trusted.clone().limits(Limits {
        max_total_bytes: 8 << 20,
        ..Limits::default()
    });
    let tiny_entries = trusted.clone().limits(Limits {
        max_entry_bytes: 4,
        ..Limits::default()
    });

    type Check = fn(&PackageError) -> bool;
    let cases: Vec<(&str, Vec<u8>, &TrustPolicy, Check)> = vec![
        (
            "absolute path",
            with(entry("/etc/passwd", b"x")),
            &trusted,
            |e| matches!(e, PackageError::HostileEntry { entry, reason: "absolute path", .. } if entry == "/etc/passwd"),
        ),
        (
            "parent directory",
            with(entry("artifacts/../../evil", b"x")),
            &trusted,
            |e| {
                matches!(
                    e,
                    PackageError::HostileEntry {
                        reason: "path with `..`",
                        ..
                    }
                )
            },
        ),
        (
            "symlink",
            with(special("artifacts/link", tar::EntryType::Symlink)),
            &trusted,
            |e| {
                matches!(
                    e,
                    PackageError::HostileEntry {
                        reason: "symbolic links are not allowed",
                        ..
                    }
                )
            },
        ),
        (
            "hard link",
            with(special("artifacts/hard", tar::EntryType::Link)),
            &trusted,
            |e| {
                matches!(
                    e,
                    PackageError::HostileEntry {
                        reason: "hard links are not allowed",
                        ..
                    }
                )
            },
        ),
        (
            "device",
            with(special("artifacts/dev", tar::EntryType::Char)),
            &trusted,
            |e| {
                matches!(
                    e,
                    PackageError::HostileEntry {
                        reason: "device files and FIFOs are not allowed",
                        ..
                    }
                )
            },
        ),
        (
            "directory",
            with(special("artifacts/", tar::EntryType::Directory)),
            &trusted,
            |e| {
                matches!(
                    e,
                    PackageError::HostileEntry {
                        reason: "directories are not allowed",
                        ..
                    }
                )
            },
        ),
        (
            "duplicate entry",
            with(entry(ART, data)),
            &trusted,
            |e| matches!(e, PackageError::DuplicateEntry { entry, .. } if entry == ART),
        ),
        (
            "extra signature",
            with(entry(package::SIGNATURE, b"x")),
            &trusted,
            |e| matches!(e, PackageError::DuplicateEntry { entry, .. } if entry == package::SIGNATURE),
        ),
        (
            "unlisted entry",
            with(entry("artifacts/extra.so", b"x")),
            &trusted,
            |e| matches!(e, PackageError::UnlistedEntry { entry, .. } if entry == "artifacts/extra.so"),
        ),
        (
            "missing artifact",
            missing_artifact,
            &trusted,
            |e| matches!(e, PackageError::MissingEntry { entry, .. } if entry == ART),
        ),
        ("size mismatch", size_mismatch, &trusted, |e| {
            matches!(
                e,
                PackageError::SizeMismatch {
                    expected: 14,
                    found: 13,
                    ..
                }
            )
        }),
        ("digest mismatch", tampered_artifact, &trusted, |e| {
            matches!(e, PackageError::DigestMismatch { .. })
        }),
        (
            "oversized entry",
            raw_package(&valid_entries()),
            &tiny_entries,
            |e| matches!(e, PackageError::LimitExceeded { limit: 4, .. }),
        ),
        (
            "decompression bomb",
            bomb,
            &small_limits,
            |e| matches!(e, PackageError::LimitExceeded { limit, .. } if *limit == 8 << 20),
        ),
        ("truncated file", truncated, &trusted, |e| {
            matches!(e, PackageError::Archive { detail, .. }
                if detail.contains("does not match the check value"))
        }),
        (
            "truncated gzip stream",
            truncated_unnoticed_by_the_digest,
            &trusted,
            |e| matches!(e, PackageError::Archive { detail, .. } if detail.starts_with("gzip")),
        ),
        ("data after gzip", trailing, &trusted, |e| {
            matches!(e, PackageError::Archive { detail, .. }
                if detail == "data after the end of the gzip stream")
        }),
        (
            "not gzip",
            b"PK\x03\x04 a zip file".to_vec(),
            &trusted,
            |e| matches!(e, PackageError::Archive { detail, .. } if detail == "not gzip-compressed"),
        ),
        (
            "non-canonical header",
            non_canonical,
            &trusted,
            |e| matches!(e, PackageError::Archive { detail, .. } if detail.contains("canonical")),
        ),
        (
            "missing manifest",
            raw_package(&[entry(ART, data)]),
            &trusted,
            |e| matches!(e, PackageError::MissingManifest { .. }),
        ),
        ("bad toml", bad_toml, &trusted, |e| {
            matches!(e, PackageError::BadManifest { .. })
        }),
        ("unknown format_version", future_format, &trusted, |e| {
            matches!(
                e,
                PackageError::UnsupportedFormat {
                    found: 7,
                    supported: 1,
                    ..
                }
            )
        }),
        (
            "missing signature",
            raw_package(&{
                let mut entries = valid_entries();
                entries.remove(1);
                entries
            }),
            &trusted,
            |e| matches!(e, PackageError::Unsigned { .. }),
        ),
        (
            "signature by an unknown key",
            unknown_signature,
            &trusted,
            |e| {
                matches!(e, PackageError::UnknownKey { key_id, trusted, .. }
                if *key_id != key().id() && *trusted == [key().id()])
            },
        ),
        (
            "forged signature",
            forged_signature,
            &trusted,
            |e| matches!(e, PackageError::BadSignature { key_id, .. } if key_id == key().id()),
        ),
        (
            "manifest changed after signing",
            manifest_changed_after_signing,
            &trusted,
            |e| matches!(e, PackageError::BadSignature { key_id, .. } if key_id == key().id()),
        ),
        (
            "malformed signature",
            raw_package(&{
                let mut entries = valid_entries();
                entries[1] = entry(package::SIGNATURE, b"signature = 12");
                entries
            }),
            &trusted,
            |e| matches!(e, PackageError::MalformedSignature { .. }),
        ),
    ];
    for (name, bytes, policy, check) in cases {
        match open(&bytes, policy) {
            Ok(_) => panic!("{name}: accepted"),
            Err(e) => assert!(check(&e), "{name}: unexpected error {e:?}"),
        }
    }
    // Nothing was written anywhere: reading never touches the disk.
    assert!(!dir.join("cache").exists());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn flipping_any_byte_makes_open_fail(at in 0usize..100_000, bit in 0u8..8) {
        let bytes = small_package();
        let at = at % bytes.len();
        let mut tampered = bytes.clone();
        tampered[at] ^= 1 << bit;
        let dir = std::env::temp_dir();
        let policy = TrustPolicy::new().trust(key().public_key()).cache_dir(dir);
        prop_assert!(open(&tampered, &policy).is_err(), "byte {} bit {} accepted", at, bit);
    }
}

#[test]
fn flipping_each_byte_of_a_package_makes_open_fail() {
    // Exhaustive over every byte position (one bit each), beside the
    // property test's random bits.
    let bytes = small_package();
    let policy = TrustPolicy::new().trust(key().public_key());
    for at in 0..bytes.len() {
        let mut tampered = bytes.clone();
        tampered[at] ^= 0x01;
        assert!(
            open(&tampered, &policy).is_err(),
            "flipping byte {at} was accepted"
        );
    }
}

#[test]
fn loose_signed_artifacts_load_from_the_cache() {
    let dir = scratch("package_loose");
    let lib = write(
        &dir,
        "libcalc.so",
        &std::fs::read(fixture("fixture_plugins")).unwrap(),
    );
    let policy = policy(&dir);
    // No signature yet.
    assert_eq!(
        package::open_signed_library(&lib, &policy)
            .unwrap_err()
            .kind(),
        ErrorKind::Unsigned
    );
    let bytes = std::fs::read(&lib).unwrap();
    std::fs::write(
        package::signature_path(&lib),
        key().sign(&bytes).to_file_text(),
    )
    .unwrap();
    let library = package::open_signed_library(&lib, &policy).unwrap();
    assert!(library.path().starts_with(dir.join("cache")));
    let calc: CalculatorClient = library.load("Basic").unwrap();
    assert_eq!(calc.add(2, 2).unwrap(), 4);
    // Tamper with the original after signing.
    let mut changed = bytes.clone();
    *changed.last_mut().unwrap() ^= 1;
    std::fs::write(&lib, changed).unwrap();
    assert_eq!(
        package::open_signed_library(&lib, &policy)
            .unwrap_err()
            .kind(),
        ErrorKind::BadSignature
    );
}

#[test]
fn key_files_round_trip_and_check_their_id() {
    let secret = SecretKey::generate().unwrap();
    let public = secret.public_key();
    let parsed = PublicKey::parse("pub", &public.to_file_text()).unwrap();
    assert_eq!(parsed, public);
    let again = SecretKey::parse("secret", &secret.to_file_text()).unwrap();
    assert_eq!(again.id(), secret.id());
    assert!(!format!("{secret:?}").contains(&secret.to_file_text()[60..80]));
    let wrong_id = public
        .to_file_text()
        .replace(public.id(), "0000000000000000");
    assert!(matches!(
        PublicKey::parse("pub", &wrong_id),
        Err(PackageError::MalformedKey { what, detail })
            if what == "pub"
                && detail == format!("`key_id` is 0000000000000000 but the key's id is {}", public.id())
    ));
    assert!(matches!(
        PublicKey::parse("secret as public", &secret.to_file_text()),
        Err(PackageError::MalformedKey { detail, .. })
            if detail == "missing `public_key` (is this a secret key file?)"
    ));
}

#[cfg(unix)]
#[test]
fn a_cache_others_can_write_to_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = scratch("package_open_cache");
    let path = write(&dir, "demo.fidpkg", &real_package(Some(&key())));
    let cache = dir.join("shared-cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let policy = TrustPolicy::new()
        .trust(key().public_key())
        .cache_dir(&cache);
    match Package::open(&path, &policy) {
        Err(PackageError::Io { path, source }) => {
            assert_eq!(path, cache);
            assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied);
            assert!(
                source.to_string().contains("writable by group or others"),
                "{source}"
            );
        }
        other => panic!("expected a refused cache, got {other:?}"),
    }
}

#[test]
fn manifests_that_name_artifacts_ambiguously_are_refused() {
    let two_for_one_target = manifest(&[
        (
            "x86_64-unknown-linux-gnu",
            "artifacts/x86_64-unknown-linux-gnu/a.so",
        ),
        (
            "x86_64-unknown-linux-gnu",
            "artifacts/x86_64-unknown-linux-gnu/b.so",
        ),
    ]);
    let misplaced = manifest(&[("x86_64-unknown-linux-gnu", "artifacts/elsewhere/a.so")]);
    for (m, expected) in [
        (two_for_one_target, "two native artifacts"),
        (
            misplaced,
            "must be `artifacts/x86_64-unknown-linux-gnu/FILE`",
        ),
    ] {
        let artifacts: BTreeMap<String, Vec<u8>> = m
            .artifacts
            .iter()
            .map(|a| (a.path.clone(), vec![1, 2, 3]))
            .collect();
        match package::write_package(&m, &artifacts, Some(&key())) {
            Err(PackageError::BadManifest { detail, .. }) => {
                assert!(detail.contains(expected), "{detail}")
            }
            other => panic!("expected a bad manifest, got {other:?}"),
        }
    }
}
