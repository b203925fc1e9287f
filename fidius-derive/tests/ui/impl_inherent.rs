#[derive(Default)]
pub struct Plain;

#[fidius::plugin_impl(Filter)]
impl Plain {
    fn apply(&self, x: u8) -> u8 {
        x
    }
}

fn main() {}
