#[fidius::plugin_interface(version = 1)]
pub trait Filter: Send + Sync {
    fn apply(&self, x: u8) -> u8;
}

pub struct Scale;

#[fidius::plugin_impl(Filter, config = u32)]
impl Filter for Scale {
    fn apply(&self, x: u8) -> u8 {
        x
    }
}

fn main() {}
