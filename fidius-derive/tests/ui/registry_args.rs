fidius::fidius_plugin_registry!(plugins = 3);

fn main() {}
