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

/// Appends `bytes` exactly as postcard encodes a `Vec<u8>` or `&[u8]` (a
/// varint length, then the bytes), without going through serde one byte
/// at a time.
pub fn encode_bytes_into(bytes: &[u8], out: &mut Vec<u8>) {
    let mut n = bytes.len() as u64;
    out.reserve(bytes.len() + 10);
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(bytes);
}

/// Takes one postcard-encoded byte buffer (`Vec<u8>`) off the front of
/// `input`, with one copy.
///
/// # Errors
/// [`WireError`] when the length is malformed or longer than the input.
pub fn take_bytes<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], WireError> {
    let mut len: u64 = 0;
    let mut i = 0;
    loop {
        let b = *input.get(i).ok_or_else(|| WireError {
            message: "truncated length".into(),
        })?;
        len |= u64::from(b & 0x7f) << (7 * i);
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        if i == 10 {
            return Err(WireError {
                message: "length varint too long".into(),
            });
        }
    }
    let rest = &input[i..];
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= rest.len())
        .ok_or_else(|| WireError {
            message: format!("length {len} beyond the {} bytes left", rest.len()),
        })?;
    let (bytes, tail) = rest.split_at(len);
    *input = tail;
    Ok(bytes)
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
    fn the_byte_fast_paths_match_postcard() {
        for len in [0usize, 1, 127, 128, 300, 70_000] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut fast = Vec::new();
            encode_bytes_into(&data, &mut fast);
            assert_eq!(fast, encode(&data).unwrap(), "{len}");
            fast.push(9);
            let mut input = fast.as_slice();
            assert_eq!(take_bytes(&mut input).unwrap(), data.as_slice());
            assert_eq!(input, [9]);
        }
        let message = |mut input: &[u8]| {
            take_bytes(&mut input)
                .map(<[u8]>::to_vec)
                .map_err(|e| e.message().to_owned())
        };
        assert_eq!(
            message(&[0x05, 1, 2]),
            Err("length 5 beyond the 2 bytes left".into())
        );
        assert_eq!(message(&[0x80]), Err("truncated length".into()));
        assert_eq!(message(&[0xff; 11]), Err("length varint too long".into()));
    }

    #[test]
    fn trailing_and_truncated_bytes_are_errors() {
        let mut bytes = encode(&7u32).unwrap();
        bytes.push(0);
        assert_eq!(
            decode::<u32>(&bytes).unwrap_err().message(),
            "1 trailing bytes after the value"
        );
        let truncated = decode::<Sample>(&[0xac]).unwrap_err();
        assert_eq!(
            truncated.message(),
            "Hit the end of buffer, expected more data"
        );
    }
}
