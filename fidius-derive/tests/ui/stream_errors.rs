use fidius::Stream;

#[fidius::plugin_interface(version = 1)]
pub trait Filter: Send + Sync {
    fn borrowed(&self, items: &Stream<u64>) -> u64;
    fn nested(&self, items: Vec<Stream<u64>>) -> u64;
    fn nested_return(&self) -> Option<Stream<u64>>;
}

struct NotSerde;

#[fidius::plugin_interface(version = 1)]
pub trait Items: Send + Sync {
    fn items(&self) -> Stream<NotSerde>;
}

fn main() {}
