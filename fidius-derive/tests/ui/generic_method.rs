#[fidius::plugin_interface(version = 1)]
pub trait Filter: Send + Sync {
    fn apply<T: serde::Serialize>(&self, x: T) -> u8;
}

fn main() {}
