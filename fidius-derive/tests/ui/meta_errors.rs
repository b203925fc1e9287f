#[fidius::plugin_interface(version = 1)]
#[interface_meta(owner = "a", owner = "b")]
pub trait Filter: Send + Sync {
    #[method_meta(cost = 3)]
    fn apply(&self, x: u8) -> u8;
    #[method_meta(a::b = "x")]
    fn other(&self) -> u8;
}

fn main() {}
