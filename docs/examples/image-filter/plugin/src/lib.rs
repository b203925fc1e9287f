//! A plugin library with two `ImageFilter` plugins.

// ANCHOR: plugin
use image_filter_api::{ApplyInput, ApplyOutput, ImageFilter, plugin_impl};

/// Inverts the colour channels, leaving alpha alone.
#[derive(Default)]
pub struct Invert;

#[plugin_impl(ImageFilter)]
impl ImageFilter for Invert {
    fn apply(&self, input: ApplyInput) -> ApplyOutput {
        let mut pixels = input.pixels;
        let mut changed = 0;
        for px in pixels.chunks_exact_mut(4) {
            let before = [px[0], px[1], px[2]];
            for c in &mut px[..3] {
                let inverted = 255 - *c;
                *c = (*c as f32 + (inverted as f32 - *c as f32) * input.strength).round() as u8;
            }
            changed += u64::from(before != [px[0], px[1], px[2]]);
        }
        ApplyOutput { pixels, changed }
    }
}
// ANCHOR_END: plugin

/// Turns every pixel black or white around a threshold set by `strength`.
#[derive(Default)]
pub struct Threshold;

#[plugin_impl(ImageFilter)]
impl ImageFilter for Threshold {
    fn apply(&self, input: ApplyInput) -> ApplyOutput {
        let cut = (input.strength.clamp(0.0, 1.0) * 255.0) as u16;
        let mut pixels = input.pixels;
        let mut changed = 0;
        for px in pixels.chunks_exact_mut(4) {
            let luma = (u16::from(px[0]) + u16::from(px[1]) + u16::from(px[2])) / 3;
            let v = if luma >= cut { 255 } else { 0 };
            changed += u64::from(px[..3] != [v, v, v]);
            px[..3].fill(v);
        }
        ApplyOutput { pixels, changed }
    }
}

// ANCHOR: registry
fidius::fidius_plugin_registry!();
// ANCHOR_END: registry
