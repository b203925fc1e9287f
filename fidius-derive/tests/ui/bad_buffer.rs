#[fidius::plugin_interface(version = 1, buffer = HostArena)]
pub trait Filter: Send + Sync {
    fn apply(&self, x: u8) -> u8;
}

fn main() {}
