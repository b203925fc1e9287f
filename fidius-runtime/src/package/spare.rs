//! Inflating straight into a `Vec`'s spare capacity, in pieces that can be
//! lent out (to the hashing thread) as soon as each is written: no zeroing
//! pass over the buffer first and no copy after. The one place in package
//! reading with `unsafe`: what counts as initialized is only what the
//! inflater reported writing, back to back from the start of the spare
//! capacity.

use std::io::BufRead;
use std::mem::MaybeUninit;

/// Why inflating stopped early.
pub(crate) enum Stop {
    /// The decompressed data exceeds the limit.
    Limit,
    /// The deflate stream or the file could not be read.
    Gzip(std::io::Error),
}

/// The spare capacity of a `Vec` being filled (see [`fill`]).
pub(crate) struct Spare<'a> {
    /// What is not written yet; it starts right after the last byte
    /// written.
    rest: &'a mut [MaybeUninit<u8>],
    filled: usize,
}

/// Runs `with` on the spare capacity of `vec`, then extends `vec` by the
/// pieces it inflated. The pieces cannot outlive `with`.
pub(crate) fn fill<T>(vec: &mut Vec<u8>, with: impl for<'a> FnOnce(&mut Spare<'a>) -> T) -> T {
    let len = vec.len();
    let mut spare = Spare {
        rest: vec.spare_capacity_mut(),
        filled: 0,
    };
    let out = with(&mut spare);
    let filled = spare.filled;
    // SAFETY: `Spare` counts only bytes the inflater initialized, back to
    // back from the start of the spare capacity (see `Spare::inflate`), so
    // the first `len + filled` bytes are initialized and within capacity.
    unsafe { vec.set_len(len + filled) };
    out
}

impl<'a> Spare<'a> {
    /// Bytes written so far.
    pub(crate) fn filled(&self) -> usize {
        self.filled
    }

    /// Inflates at most `max` more bytes; returns them and whether the
    /// deflate stream ended (an empty piece: no space left).
    pub(crate) fn inflate(
        &mut self,
        inflater: &mut flate2::Decompress,
        source: &mut impl BufRead,
        max: usize,
    ) -> Result<(&'a [u8], bool), Stop> {
        let rest = std::mem::take(&mut self.rest);
        let want = max.min(rest.len());
        let (written, ended) = match inflate_into(inflater, source, &mut rest[..want]) {
            Ok(done) => done,
            Err(e) => {
                // Whatever it wrote before failing is not counted.
                self.rest = rest;
                return Err(e);
            }
        };
        let (piece, tail) = rest.split_at_mut(written);
        self.rest = tail;
        self.filled += written;
        // SAFETY: `inflate_into` returns how many bytes the inflater wrote
        // at the start of the slice it was given, which `piece` is.
        Ok((unsafe { piece.assume_init_ref() }, ended))
    }
}

/// Inflates from `source` into `out` until it is full or the deflate
/// stream ends; returns how many bytes were written at its start, and
/// whether the stream ended.
fn inflate_into(
    inflater: &mut flate2::Decompress,
    source: &mut impl BufRead,
    out: &mut [MaybeUninit<u8>],
) -> Result<(usize, bool), Stop> {
    let mut written = 0;
    loop {
        if written == out.len() {
            return Ok((written, false));
        }
        let input = source.fill_buf().map_err(Stop::Gzip)?;
        let at_end = input.is_empty();
        let (before_in, before_out) = (inflater.total_in(), inflater.total_out());
        let status = inflater
            .decompress_uninit(input, &mut out[written..], flate2::FlushDecompress::None)
            .map_err(|e| Stop::Gzip(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        let made = (inflater.total_out() - before_out) as usize;
        source.consume((inflater.total_in() - before_in) as usize);
        written += made;
        if status == flate2::Status::StreamEnd {
            return Ok((written, true));
        }
        if at_end && made == 0 {
            return Err(Stop::Gzip(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
}
