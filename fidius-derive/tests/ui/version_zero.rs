#[fidius::plugin_interface(version = 0)]
pub trait Filter: Send + Sync {
    fn apply(&self, x: u8) -> u8;
}

fn main() {}
