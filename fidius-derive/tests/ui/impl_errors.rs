#[fidius::plugin_interface(version = 1)]
pub trait Filter: Send + Sync {
    fn apply(&self, x: u8) -> u8;
}

#[fidius::plugin_interface(version = 1)]
pub trait Other: Send + Sync {
    fn apply(&self, x: u8) -> u8;
}

#[derive(Default)]
pub struct Wrapper<T>(T);

#[fidius::plugin_impl(Filter)]
impl<T: Send + Sync + Default + 'static> Filter for Wrapper<T> {
    fn apply(&self, x: u8) -> u8 {
        x
    }
}

#[derive(Default)]
pub struct Mixed;

#[fidius::plugin_impl(Other)]
impl Filter for Mixed {
    fn apply(&self, x: u8) -> u8 {
        x
    }
}

#[fidius::plugin_impl]
impl Other for Mixed {
    fn apply(&self, x: u8) -> u8 {
        x
    }
}

#[fidius::plugin_impl(Other, color = "red")]
impl Other for Wrapper<u8> {
    fn apply(&self, x: u8) -> u8 {
        x
    }
}

fn main() {}
