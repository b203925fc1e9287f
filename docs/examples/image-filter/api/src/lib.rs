//! The interface crate: the contract between hosts and image-filter
//! plugins. Both sides depend on it; it stays lean (no loader code).

// ANCHOR: interface
use serde::{Deserialize, Serialize};

// Re-exported so plugin crates can write `use image_filter_api::plugin_impl;`.
pub use fidius::plugin_impl;

/// An RGBA image and how strongly to apply the filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyInput {
    pub width: u32,
    pub height: u32,
    /// `width * height * 4` bytes, RGBA.
    pub pixels: Vec<u8>,
    /// 0.0 ..= 1.0
    pub strength: f32,
}

/// The filtered image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyOutput {
    pub pixels: Vec<u8>,
    /// How many pixels changed.
    pub changed: u64,
}

#[fidius::plugin_interface(version = 1, buffer = PluginAllocated)]
pub trait ImageFilter: Send + Sync {
    /// Filters one image.
    fn apply(&self, input: ApplyInput) -> ApplyOutput;
}
// ANCHOR_END: interface
