//! Records the target triple, which picks a package's native artifact.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=FIDIUS_HOST_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
