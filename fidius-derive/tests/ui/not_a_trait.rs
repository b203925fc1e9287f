#[fidius::plugin_interface(version = 1)]
pub struct Filter;

fn main() {}
