//! The wire format for serialized arguments, results and plugin errors.
//!
//! Version [`WIRE_VERSION`](crate::abi::WIRE_VERSION) 1 is
//! [postcard](https://docs.rs/postcard) 1.x: compact (varint integers,
//! length-prefixed sequences, no field names), deterministic and identical
//! in debug and release builds. Each serialized argument or result is one
//! postcard value in its own buffer. Scalars, `&str`, `&[u8]`, `String` and
//! `Vec<u8>` never go through this module: they cross the boundary as raw
//! values or `(pointer, length)` pairs. The byte-for-byte specification is in
//! `docs/src/abi.md`, "Wire format".

use serde::{Serialize, de::DeserializeOwned};

/// A value could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct WireError {
    message: String,
}

impl WireError {
    /// The underlying message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<postcard::Error> for WireError {
    fn from(e: postcard::Error) -> Self {
        Self {
            message: e.to_string(),
        }
    }
}

/// Encodes `value` into a fresh buffer.
///
/// # Errors
/// [`WireError`] when `value`'s `Serialize` impl fails (e.g. a map with a
/// non-string key is fine, but a type that errors on purpose is not).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, WireError> {
    Ok(postcard::to_allocvec(value)?)
}

/// Decodes a `T` that must use every byte of `bytes`.
///
/// # Errors
/// [`WireError`] when the bytes are not a valid `T` or have bytes left over.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    let (value, rest) = postcard::take_from_bytes(bytes)?;
    if !rest.is_empty() {
        return Err(WireError {
            message: format!("{} trailing bytes after the value", rest.len()),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        id: u32,
        name: String,
        tags: Vec<i64>,
        maybe: Option<bool>,
    }

    #[test]
    fn golden_bytes() {
        // Pinned: changing these bytes is a wire-format break.
        let value = Sample {
            id: 300,
            name: "hi".into(),
            tags: vec![-1, 2],
            maybe: Some(true),
        };
        let bytes = encode(&value).unwrap();
        assert_eq!(
            bytes,
            [0xac, 0x02, 0x02, b'h', b'i', 0x02, 0x01, 0x04, 0x01, 0x01]
        );
        assert_eq!(decode::<Sample>(&bytes).unwrap(), value);
    }

    #[test]
    fn trailing_and_truncated_bytes_are_errors() {
        let mut bytes = encode(&7u32).unwrap();
        bytes.push(0);
        assert!(decode::<u32>(&bytes).is_err());
        assert!(decode::<Sample>(&[0xac]).is_err());
    }
}
