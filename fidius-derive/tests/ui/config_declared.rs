use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Settings {
    pub factor: u32,
}

/// Every plugin of this interface is configured with `Settings`.
#[fidius::plugin_interface(version = 1, config = Settings)]
pub trait Filter: Send + Sync {
    fn apply(&self, x: u8) -> u8;
}

pub struct Other;

impl Other {
    pub fn configure(_: u32) -> Result<Self, fidius::PluginError> {
        Ok(Self)
    }
}

// Another configuration type than the interface's.
#[fidius::plugin_impl(Filter, config = u32)]
impl Filter for Other {
    fn apply(&self, x: u8) -> u8 {
        x
    }
}

#[derive(Default)]
pub struct Unconfigured;

// No configuration at all.
#[fidius::plugin_impl(Filter)]
impl Filter for Unconfigured {
    fn apply(&self, x: u8) -> u8 {
        x
    }
}

fn main() {}
