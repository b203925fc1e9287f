#[fidius::plugin_interface(version = 2)]
pub trait Filter: Send + Sync {
    fn apply(&self, x: u8) -> u8;
    #[optional]
    fn missing_since(&self) -> u8;
    #[optional(since = 0)]
    fn zero(&self) -> u8;
    #[optional(until = 2)]
    fn unknown_key(&self) -> u8;
}

#[fidius::host_interface(version = 1)]
pub trait Services: Send + Sync {
    #[optional(since = 1)]
    fn log(&self, message: &str);
}

fn main() {}
