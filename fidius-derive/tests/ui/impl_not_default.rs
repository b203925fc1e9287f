#[fidius::plugin_interface(version = 1)]
pub trait Filter: Send + Sync {
    fn apply(&self, x: u8) -> u8;
}

pub struct NoDefault(u8);

#[fidius::plugin_impl(Filter)]
impl Filter for NoDefault {
    fn apply(&self, x: u8) -> u8 {
        x + self.0
    }
}

fn main() {}
