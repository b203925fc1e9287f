#[fidius::plugin_interface(version = 1)]
pub trait Filter: Send + Sync {
    type Output;
    const LIMIT: u32;
    fn apply(&self, x: u8) -> u8;
}

fn main() {}
