pub struct NotSerde {
    pub x: u8,
}

#[fidius::plugin_interface(version = 1)]
pub trait Filter: Send + Sync {
    fn apply(&self, input: NotSerde) -> u8;
}

fn main() {}
