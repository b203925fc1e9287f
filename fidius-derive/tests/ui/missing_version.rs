#[fidius::plugin_interface]
pub trait Filter: Send + Sync {
    fn apply(&self, x: u8) -> u8;
}

fn main() {}
