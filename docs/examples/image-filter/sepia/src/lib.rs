//! An `ImageFilter` plugin that the example runs as a WebAssembly
//! component: the same `#[plugin_impl]` source builds native and for
//! `wasm32-wasip2` (`cargo fidius build --target wasm32-wasip2`).

// ANCHOR: plugin
use image_filter_api::{ApplyInput, ApplyOutput, ImageFilter, plugin_impl};

/// Tints the image brown, mixing in `strength` of the effect.
#[derive(Default)]
pub struct Sepia;

#[plugin_impl(ImageFilter)]
impl ImageFilter for Sepia {
    fn apply(&self, input: ApplyInput) -> ApplyOutput {
        let mut pixels = input.pixels;
        let mut changed = 0;
        let s = input.strength.clamp(0.0, 1.0);
        for px in pixels.chunks_exact_mut(4) {
            let [r, g, b] = [px[0], px[1], px[2]].map(f32::from);
            let tinted = [
                0.393 * r + 0.769 * g + 0.189 * b,
                0.349 * r + 0.686 * g + 0.168 * b,
                0.272 * r + 0.534 * g + 0.131 * b,
            ];
            let before = [px[0], px[1], px[2]];
            for (c, t) in px[..3].iter_mut().zip(tinted) {
                *c = (f32::from(*c) + (t.min(255.0) - f32::from(*c)) * s).round() as u8;
            }
            changed += u64::from(before != [px[0], px[1], px[2]]);
        }
        ApplyOutput { pixels, changed }
    }
}

fidius::fidius_plugin_registry!();
// ANCHOR_END: plugin
