//! `Package::open` on arbitrary bytes and on mutations of real signed
//! packages (the seed corpus): the archive reader, the signature and digest
//! checks, the manifest, the extraction into the cache and the choice of
//! artifact. The policy trusts the key the seeds were signed with
//! (`$FIDIUS_FUZZ_KEY`, a public key file), and has a WASM runtime, so an
//! intact package loads its component. `inspect` (which reports a bad
//! signature instead of failing) runs too, so the structural checks are
//! reached past a broken signature.
#![no_main]

#[path = "scratch.rs"]
mod scratch;

use std::sync::{Arc, OnceLock};

use fidius_runtime::package::{Package, PublicKey, TrustPolicy, VerifiedPackage};
use fidius_runtime::wasm::{Capabilities, WasmRuntime, WasmSettings};
use libfuzzer_sys::fuzz_target;

fn policy() -> &'static TrustPolicy {
    static POLICY: OnceLock<TrustPolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let key = std::env::var("FIDIUS_FUZZ_KEY")
            .expect("$FIDIUS_FUZZ_KEY: the public key the seed packages were signed with (`cargo xtask fuzz` sets it)");
        let text = std::fs::read_to_string(&key).unwrap_or_else(|e| panic!("`{key}`: {e}"));
        let key = PublicKey::parse(&key, &text).unwrap_or_else(|e| panic!("{e}"));
        let runtime = WasmRuntime::new(WasmSettings::default().cache_dir(None)).expect("a runtime");
        let cache = scratch::file("cache-marker", b"").with_file_name("cache");
        TrustPolicy::new()
            .trust(key)
            .cache_dir(cache)
            .wasm(Arc::new(runtime), Capabilities::none())
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch::file("plugin.fidpkg", data);
    match Package::open(&path, policy()) {
        Ok(package) => drop(format!("{:?}", package.manifest())),
        Err(e) => drop(e.to_string()),
    }
    match VerifiedPackage::inspect(&path, policy()) {
        Ok((package, status)) => drop(format!("{:?} {status:?}", package.manifest())),
        Err(e) => drop(e.to_string()),
    }
});
