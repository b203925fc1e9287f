#[fidius::plugin_interface(version = 1)]
pub trait Filter<T>: Send + Sync {
    fn apply(&self, x: u8) -> u8;
}

fn main() {}
