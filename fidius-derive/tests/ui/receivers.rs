#[fidius::plugin_interface(version = 1)]
pub trait Filter: Send + Sync {
    fn by_mut(&mut self, x: u8) -> u8;
    fn by_value(self, x: u8) -> u8;
    fn boxed(self: Box<Self>) -> u8;
    fn no_receiver(x: u8) -> u8;
}

fn main() {}
