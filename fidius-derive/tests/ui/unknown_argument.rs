#[fidius::plugin_interface(version = 1, flavour = "spicy")]
pub trait Filter: Send + Sync {
    fn apply(&self, x: u8) -> u8;
}

fn main() {}
