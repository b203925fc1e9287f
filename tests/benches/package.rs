//! Opening signed packages. Every figure has its baseline in the same run:
//!
//! * `package_10mib/sha256_plus_dlopen`: SHA-256 of the artifact's 10 MiB
//!   plus a plain `dlopen`/`dlclose` of the same library;
//! * `package_10mib/open_verify_load_cold`: `Package::open` (read,
//!   decompress, verify the signature and digests, write the cache copy,
//!   validate it) plus `load` of one plugin, with an empty cache;
//! * `package_10mib/open_verify_load_warm`: the same when the cache already
//!   holds the artifact.
//!
//! The artifact is the release `fixture_plugins` library padded to 10 MiB
//! with pseudo-random bytes (which `dlopen` ignores and gzip cannot
//! shrink). Results are in `docs/src/performance.md`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use fidius::package::{
    self, Artifact, ArtifactKind, Manifest, Package, PackageInfo, SecretKey, TrustPolicy,
};
use fixture_api::CalculatorClient;

/// A directory removed when dropped.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn padded_library() -> Vec<u8> {
    let mut bytes = std::fs::read(fidius_tests::release_fixture("fixture_plugins")).unwrap();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    while bytes.len() < 10 << 20 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes
}

fn bench_package(c: &mut Criterion) {
    let dir = fidius_tests::scratch("bench_package");
    let key = SecretKey::from_bytes(&[9; 32]);
    let library = padded_library();
    let path = format!("artifacts/{}/libfixture_plugins.so", package::HOST_TARGET);
    let manifest = Manifest {
        format_version: package::FORMAT_VERSION,
        package: PackageInfo {
            name: "bench".into(),
            version: "1.0.0".into(),
        },
        plugins: Vec::new(),
        artifacts: vec![Artifact {
            kind: ArtifactKind::Native,
            target: package::HOST_TARGET.into(),
            path: path.clone(),
            size: 0,
            sha256: String::new(),
            capabilities: Vec::new(),
        }],
    };
    let bytes = package::write_package(
        &manifest,
        &BTreeMap::from([(path, library.clone())]),
        Some(&key),
    )
    .unwrap();
    let pkg = dir.join("bench-1.0.0.fidpkg");
    std::fs::write(&pkg, bytes).unwrap();
    let lib_path = dir.join("libplain.so");
    std::fs::write(&lib_path, &library).unwrap();
    let warm = TrustPolicy::new()
        .trust(key.public_key())
        .cache_dir(dir.join("warm"));

    let mut group = c.benchmark_group("package_10mib");
    group.sample_size(20);
    group.bench_function("sha256_plus_dlopen", |b| {
        b.iter(|| {
            black_box(package::sha256_hex(black_box(&library)));
            // SAFETY: the fixture library is ours and has no unsound
            // initialisers.
            let lib = unsafe { libloading::Library::new(&lib_path) }.unwrap();
            drop(black_box(lib));
        })
    });
    let mut n = 0u64;
    group.bench_function("open_verify_load_cold", |b| {
        // Each iteration gets an empty cache directory, removed after the
        // measurement (outputs are dropped untimed), so the copies written
        // do not pile up as dirty pages that slow every later write.
        b.iter_batched(
            || {
                n += 1;
                RemoveOnDrop(dir.join(format!("cold-{n}")))
            },
            |cache| {
                let policy = TrustPolicy::new()
                    .trust(key.public_key())
                    .cache_dir(&cache.0);
                let package = Package::open(&pkg, &policy).unwrap();
                let client: CalculatorClient = package.load("Basic").unwrap();
                drop(black_box(client));
                (package, cache)
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("open_verify_load_warm", |b| {
        b.iter(|| {
            let package = Package::open(&pkg, &warm).unwrap();
            let client: CalculatorClient = package.load("Basic").unwrap();
            drop(black_box(client));
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench_package);
criterion_main!(benches);
