//! A file per fuzz process for the targets whose code under test reads a
//! path: the input is written there before each run.

use std::path::PathBuf;
use std::sync::OnceLock;

/// `name` in this process's scratch directory, holding `data`.
pub fn file(name: &str, data: &[u8]) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        // `cargo xtask fuzz` points it under the target dir and empties it.
        let base = std::env::var_os("FIDIUS_FUZZ_SCRATCH")
            .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
        let dir = base.join(format!("fidius-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        dir
    });
    let path = dir.join(name);
    std::fs::write(&path, data).expect("the input written");
    path
}
