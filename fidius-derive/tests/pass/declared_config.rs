// An interface that declares its configuration type, and a plugin
// configured with it (written as a path, not the name the interface used).

mod api {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    pub struct Settings {
        pub factor: u8,
    }

    #[fidius::plugin_interface(version = 1, config = Settings)]
    pub trait Filter: Send + Sync {
        fn apply(&self, x: u8) -> u8;
    }
}

mod plugin {
    use crate::api::Filter;

    pub struct Scale(u8);

    impl Scale {
        pub fn configure(settings: crate::api::Settings) -> Result<Self, fidius::PluginError> {
            Ok(Self(settings.factor))
        }
    }

    #[fidius::plugin_impl(Filter, config = crate::api::Settings)]
    impl Filter for Scale {
        fn apply(&self, x: u8) -> u8 {
            x.wrapping_mul(self.0)
        }
    }
}

fn main() {
    let wit = <dyn api::Filter>::__fidius_wit().unwrap();
    assert!(wit.contains("create: func(plugin: string, config: settings) -> result<_, create-error>;"), "{wit}");
}
