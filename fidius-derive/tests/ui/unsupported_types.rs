#[fidius::plugin_interface(version = 1)]
pub trait Filter: Send + Sync {
    fn pointer(&self, x: *const u8) -> u8;
    fn mutable(&self, x: &mut Vec<u8>) -> u8;
    fn opaque(&self, x: impl Iterator<Item = u8>) -> u8;
    fn object(&self, x: Box<dyn Send>) -> u8;
    fn borrowed_result(&self) -> &str;
    fn myself(&self) -> Self;
}

fn main() {}
