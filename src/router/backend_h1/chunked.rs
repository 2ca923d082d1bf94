//! The decoder of a chunked response body (RFC 9112 §7.1), fed whatever has been read:
//! chunk data comes out as it arrives, uncopied; extensions and trailers are read past
//! (a router does not pass trailers on), within hyper's limit on their size.

use std::io;

use bytes::{Buf, Bytes, BytesMut};

use super::BodyError;

/// Bytes of chunk extensions and trailers accepted in one body (hyper's limit too).
const MAX_CHUNK_EXTRAS: usize = 16 * 1024;

/// Where a chunked body's decoder is (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// In a chunk-size line's hex digits (this many so far; the value is `Chunked::size`).
    Size {
        digits: u8,
    },
    /// Spaces after the size.
    SizeSpace,
    /// In a chunk extension, up to the line's end.
    Extension,
    /// The size line's CR came: its LF must follow.
    SizeLf,
    /// This many bytes of chunk data are still to come.
    Data(u64),
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    InTrailer,
    TrailerLf,
    EndLf,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Chunked {
    state: ChunkState,
    /// The size of the chunk whose size line is being read.
    size: u64,
    /// Bytes of extensions and trailers so far.
    extras: usize,
}

impl Default for Chunked {
    fn default() -> Chunked {
        Chunked {
            state: ChunkState::Size { digits: 0 },
            size: 0,
            extras: 0,
        }
    }
}

pub(super) enum Step {
    Data(Bytes),
    /// The last chunk and the trailers are through; trailers are not passed on.
    End,
    More,
}

impl Chunked {
    pub(super) fn next(&mut self, buf: &mut BytesMut) -> Result<Step, BodyError> {
        loop {
            match self.state {
                ChunkState::Done => return Ok(Step::End),
                ChunkState::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Step::More);
                    }
                    let take = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
                    let rest = left - take as u64;
                    self.state = if rest == 0 {
                        ChunkState::DataCr
                    } else {
                        ChunkState::Data(rest)
                    };
                    return Ok(Step::Data(buf.split_to(take).freeze()));
                }
                _ => {
                    let Some(&byte) = buf.first() else {
                        return Ok(Step::More);
                    };
                    buf.advance(1);
                    self.state = self.after(byte)?;
                }
            }
        }
    }

    /// The state after `byte` outside chunk data.
    fn after(&mut self, byte: u8) -> Result<ChunkState, BodyError> {
        use ChunkState as S;
        let bad = |what: &str| -> BodyError {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad chunked body: {what}"),
            )
            .into()
        };
        Ok(match (self.state, byte) {
            (S::Size { digits }, b) if b.is_ascii_hexdigit() => {
                let digit = u64::from(char::from(b).to_digit(16).unwrap_or_default());
                if digits >= 16 {
                    return Err(bad("chunk size too large"));
                }
                self.size = self.size * 16 + digit;
                S::Size { digits: digits + 1 }
            }
            (S::Size { digits: 0, .. }, _) => return Err(bad("no chunk size")),
            (S::Size { .. } | S::SizeSpace, b' ' | b'\t') => S::SizeSpace,
            (S::Size { .. } | S::SizeSpace, b';') => S::Extension,
            (S::Size { .. } | S::SizeSpace | S::Extension, b'\r') => S::SizeLf,
            (S::Extension, b'\n') => return Err(bad("newline in a chunk extension")),
            (S::Extension, _) => {
                self.count_extra()?;
                S::Extension
            }
            (S::SizeLf, b'\n') => match std::mem::take(&mut self.size) {
                0 => S::TrailerStart,
                size => S::Data(size),
            },
            (S::DataCr, b'\r') => S::DataLf,
            (S::DataLf, b'\n') => S::Size { digits: 0 },
            (S::TrailerStart, b'\r') => S::EndLf,
            (S::InTrailer, b'\r') => S::TrailerLf,
            (S::TrailerStart | S::InTrailer, _) => {
                self.count_extra()?;
                S::InTrailer
            }
            (S::TrailerLf, b'\n') => S::TrailerStart,
            (S::EndLf, b'\n') => S::Done,
            _ => return Err(bad("unexpected byte")),
        })
    }

    fn count_extra(&mut self) -> Result<(), BodyError> {
        self.extras += 1;
        if self.extras > MAX_CHUNK_EXTRAS {
            let e = io::Error::new(
                io::ErrorKind::InvalidData,
                "chunk extensions or trailers too long",
            );
            return Err(e.into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` to a chunked decoder `step` bytes at a time: the data, or the error.
    fn dechunk(wire: &[u8], step: usize) -> Result<Vec<u8>, String> {
        let mut chunked = Chunked::default();
        let mut buf = BytesMut::new();
        let mut data = Vec::new();
        for piece in wire.chunks(step) {
            buf.extend_from_slice(piece);
            loop {
                match chunked.next(&mut buf).map_err(|e| e.to_string())? {
                    Step::Data(bytes) => data.extend_from_slice(&bytes),
                    Step::End => return Ok(data),
                    Step::More => break,
                }
            }
        }
        Err("unfinished".into())
    }

    #[test]
    fn chunked_bodies_decode_however_they_are_split() {
        let wire = b"5;ext=1\r\nhello\r\n6 \r\n world\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n";
        for step in [1, 2, 3, 7, wire.len()] {
            assert_eq!(
                dechunk(wire, step).as_deref(),
                Ok(&b"hello world0123456789"[..])
            );
        }
    }

    #[test]
    fn broken_chunked_bodies_are_errors() {
        for wire in [
            &b"zz\r\n"[..],
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"11111111111111111\r\n",
            b"1;a\nb\r\n",
        ] {
            assert!(
                dechunk(wire, 1).is_err_and(|e| e != "unfinished"),
                "{wire:?}"
            );
        }
        assert_eq!(dechunk(b"5\r\nhel", 2), Err("unfinished".into()));
    }
}
