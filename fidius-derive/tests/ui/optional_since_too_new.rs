#[fidius::plugin_interface(version = 2)]
pub trait Filter: Send + Sync {
    fn apply(&self, x: u8) -> u8;
    #[optional(since = 3)]
    fn from_the_future(&self) -> u8;
}

fn main() {}
