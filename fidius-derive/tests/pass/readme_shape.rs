// The shape the README promises, written as a user would (interface crate,
// plugin crate and host call, here as modules of one file).

mod my_api {
    use serde::{Deserialize, Serialize};
    pub use fidius::plugin_impl;

    #[derive(Serialize, Deserialize)]
    pub struct ApplyInput {
        pub pixels: Vec<u8>,
    }

    #[derive(Serialize, Deserialize)]
    pub struct ApplyOutput {
        pub pixels: Vec<u8>,
    }

    #[fidius::plugin_interface(version = 1, buffer = PluginAllocated)]
    pub trait ImageFilter: Send + Sync {
        fn apply(&self, input: ApplyInput) -> ApplyOutput;
    }
}

mod my_plugin {
    use crate::my_api::{plugin_impl, ApplyInput, ApplyOutput, ImageFilter};

    #[derive(Default)]
    pub struct Invert;

    #[plugin_impl(ImageFilter)]
    impl ImageFilter for Invert {
        fn apply(&self, input: ApplyInput) -> ApplyOutput {
            ApplyOutput { pixels: input.pixels.iter().map(|p| 255 - p).collect() }
        }
    }

    fidius::fidius_plugin_registry!();
}

// The host calls `apply()` through the generated client.
fn host(filter: &my_api::ImageFilterClient) -> Result<Vec<u8>, fidius::CallError> {
    Ok(filter.apply(my_api::ApplyInput { pixels: vec![1, 2, 3] })?.pixels)
}

// Every supported argument and return form, including the optional
// `buffer` argument left out.
mod forms {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    pub struct Point {
        pub x: f64,
        pub y: f64,
    }

    #[fidius::plugin_interface(version = 7)]
    pub trait Everything: Send + Sync {
        fn scalars(&self, a: u8, b: i16, c: u32, d: i64, e: f32, f: f64, g: bool, h: char, i: usize) -> isize;
        fn borrowed(&self, s: &str, b: &[u8], p: &Point) -> u64;
        fn owned(&self, s: String, b: Vec<u8>, p: Point, o: Option<Vec<Point>>) -> (u8, String);
        fn nothing(&self);
        fn fallible(&self) -> Result<Point, fidius::PluginError>;
        fn fallible_unit(&self, _: u8) -> Result<(), String>;
        fn with_default(&self) -> u8 {
            7
        }
    }
}

fn main() {
    let _ = host;
}
