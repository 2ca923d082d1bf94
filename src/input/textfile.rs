//! The user's text files (Procfile, env files, hlocal.toml) as every input loader reads
//! them, and user input quoted in one-line messages. The parsers depend on it; it
//! depends only on `error`, which depends on nothing.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use crate::error::Error;

/// The largest Procfile, env file or hlocal.toml read: far above any real one, and
/// small enough that a wrong path (a log, a disk image) is refused at once.
pub const MAX_INPUT_BYTES: u64 = 10 * 1024 * 1024;

/// Reads a UTF-8 text file; bytes that are not UTF-8 are an error at their line. Only a
/// regular file of at most [`MAX_INPUT_BYTES`] is read, or `/dev/null`: the type is
/// checked before opening, as opening a FIFO blocks until a writer comes, and
/// `/dev/zero` never ends.
pub fn read_text(path: &Path, about: &'static str) -> Result<String, Error> {
    let bytes = read_capped(path).map_err(|source| Error::io(about, path, source))?;
    String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        Error::located(path, line, "not valid UTF-8")
    })
}

fn read_capped(path: &Path) -> io::Result<Vec<u8>> {
    // The one device that is an empty text: `-e /dev/null` is foreman users' way of
    // saying "no env file".
    if path == Path::new("/dev/null") {
        return Ok(Vec::new());
    }
    if !fs::metadata(path)?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    // One byte over the cap tells a file at the cap from a larger one (which may have
    // grown since the stat).
    fs::File::open(path)?
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(io::Error::other(format!(
            "larger than {} MiB",
            MAX_INPUT_BYTES / (1024 * 1024)
        )));
    }
    Ok(bytes)
}

/// A line of user input shortened for a one-line message.
pub fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 60;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_cuts_on_char_boundaries() {
        assert_eq!(excerpt(&"é".repeat(61)), format!("{}…", "é".repeat(60)));
        assert_eq!(excerpt(&"é".repeat(60)), "é".repeat(60));
    }
}
