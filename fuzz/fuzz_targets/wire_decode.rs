//! The wire decoder (`fidius_guest::wire::decode`) on arbitrary bytes, for
//! the argument and result shapes `#[plugin_interface]` generates: the
//! arguments of a method cross as one tuple, results and errors as their
//! own values. Whatever decodes must encode, and decode again to the same
//! bytes.
#![no_main]

use std::collections::BTreeMap;

use fidius_guest::wire;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Item {
    name: String,
    tags: Vec<String>,
    weight: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize)]
enum Verdict {
    Empty,
    Light(u32),
    Heavy(String),
    Shaped {
        width: f64,
        height: f32,
        corners: u8,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Config {
    greeting: String,
    factor: u32,
    limits: BTreeMap<String, u64>,
    items: Vec<Item>,
    verdict: Verdict,
    pair: (i8, i16),
    wide: (i128, u128),
}

/// `decode`, then `encode` and `decode` again: the same bytes.
fn roundtrip<T: Serialize + DeserializeOwned>(data: &[u8]) {
    if let Ok(value) = wire::decode::<T>(data) {
        let bytes = wire::encode(&value).expect("a decoded value encodes");
        let again = wire::decode::<T>(&bytes).expect("an encoded value decodes");
        assert_eq!(wire::encode(&again).expect("encodes"), bytes);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&shape, data)) = data.split_first() else {
        return;
    };
    match shape % 12 {
        0 => roundtrip::<(u8, u16, u32, u64, i8, i16, i32, i64)>(data),
        1 => roundtrip::<(f32, f64, bool, char)>(data),
        2 => roundtrip::<(String, Vec<u8>)>(data),
        3 => roundtrip::<(Option<String>, Result<u64, String>)>(data),
        4 => roundtrip::<(Item,)>(data),
        5 => roundtrip::<(Vec<Item>, String)>(data),
        6 => roundtrip::<Verdict>(data),
        7 => roundtrip::<Config>(data),
        8 => roundtrip::<Result<Option<Item>, Verdict>>(data),
        9 => roundtrip::<fidius_guest::PluginError>(data),
        10 => roundtrip::<(Vec<(String, String)>, BTreeMap<u32, Vec<u8>>)>(data),
        _ => roundtrip::<()>(data),
    }
});
