#[fidius::plugin_interface(version = 1)]
pub trait Filter {
    fn apply(&self, x: u8) -> u8;
}

fn main() {}
