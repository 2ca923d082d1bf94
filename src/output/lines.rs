//! Line framing of a child's pipe: whole lines out, nothing lost, memory bounded.
//!
//! A read hands over every complete line it finished in one zero-copy chunk. A partial
//! line waits for its end, but never beyond [`MAX_LINE`] bytes: past that it is cut into
//! a line of its own, at a UTF-8 character boundary so the pieces concatenate
//! to the original. At end of file a last line without a newline is still delivered.
//! The printer splits complete lines longer than `MAX_LINE` with [`split_long`], and
//! resolves carriage returns and escape sequences with [`clean_line`].

use bytes::{BufMut, Bytes, BytesMut};

/// The longest line printed as one; longer lines become several.
pub const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, Default)]
pub struct LineFramer {
    pending: BytesMut,
    /// A pty's output: its line discipline ends lines with `\r\n`.
    terminal: bool,
}

impl LineFramer {
    /// A framer for a pseudo-terminal's output, whose `\r\n` line ends become `\n`
    /// here, once, so that its lines take the printer's no-copy path like a pipe's.
    pub fn terminal() -> LineFramer {
        LineFramer {
            terminal: true,
            ..LineFramer::default()
        }
    }

    /// The unfinished line read so far (a prompt, while a program waits for input).
    pub fn partial(&self) -> &[u8] {
        &self.pending
    }

    /// The buffer to read into, with room for at least one more full read.
    pub fn buffer(&mut self) -> &mut BytesMut {
        if self.pending.capacity() - self.pending.len() < MAX_LINE / 4 {
            self.pending.reserve(MAX_LINE);
        }
        &mut self.pending
    }

    /// Complete lines (each ending in `\n`) read so far, or a forced cut of an over-long
    /// partial line.
    pub fn take_lines(&mut self) -> Option<Bytes> {
        if let Some(last) = memchr::memrchr(b'\n', &self.pending) {
            let mut lines = self.pending.split_to(last + 1);
            if self.terminal {
                fold_crlf(&mut lines);
            }
            return Some(lines.freeze());
        }
        if self.pending.len() >= MAX_LINE {
            let cut = utf8_cut(&self.pending, MAX_LINE);
            return Some(terminated(self.pending.split_to(cut)));
        }
        None
    }

    /// What is left at end of file, as a final line.
    pub fn finish(&mut self) -> Option<Bytes> {
        if self.pending.is_empty() {
            return None;
        }
        Some(terminated(self.pending.split()))
    }
}

/// `\r\n` → `\n` in place: the text moves left past each removed `\r`, one
/// `copy_within` per line.
fn fold_crlf(chunk: &mut BytesMut) {
    let mut kept = 0;
    let mut start = 0;
    while let Some(at) = memchr::memchr(b'\n', &chunk[start..]) {
        let newline = start + at;
        let end = if newline > start && chunk[newline - 1] == b'\r' {
            newline - 1
        } else {
            newline
        };
        chunk.copy_within(start..end, kept);
        kept += end - start;
        chunk[kept] = b'\n';
        kept += 1;
        start = newline + 1;
    }
    chunk.copy_within(start.., kept);
    kept += chunk.len() - start;
    chunk.truncate(kept);
}

fn terminated(mut piece: BytesMut) -> Bytes {
    piece.put_u8(b'\n');
    piece.freeze()
}

/// The largest cut point `<= max` that does not split a UTF-8 character (when the text
/// is UTF-8 there; invalid bytes are cut anywhere).
pub fn utf8_cut(bytes: &[u8], max: usize) -> usize {
    if bytes.len() <= max {
        return bytes.len();
    }
    let is_continuation = |b: u8| b & 0b1100_0000 == 0b1000_0000;
    (max.saturating_sub(3)..=max)
        .rev()
        .find(|&i| !is_continuation(bytes[i]))
        .filter(|&i| i > 0)
        .unwrap_or(max)
}

/// A line (without its newline) in pieces of at most `MAX_LINE` bytes.
pub fn split_long(mut line: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let cut = utf8_cut(line, MAX_LINE);
        let (piece, rest) = line.split_at(cut);
        line = rest;
        done = line.is_empty();
        Some(piece)
    })
}

/// The lines of a chunk whose final newline is removed: `a\nb` is `a`, `b`. memchr
/// finds the newlines, several times faster than a byte-by-byte split.
pub fn split_lines(chunk: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', chunk).chain(std::iter::once(chunk.len()));
    ends.map(move |end| {
        let line = &chunk[start..end];
        start = end + 1;
        line
    })
}

/// Whether a line needs [`clean_line`]: the fast path for ordinary text is one memchr.
pub fn needs_cleaning(bytes: &[u8]) -> bool {
    memchr::memchr2(b'\r', ESC, bytes).is_some()
}

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;

/// Appends `line` (without its newline) to `out` as a terminal would leave it on screen,
/// so no process can overwrite a prefix: only the text after the last `\r`
/// (trailing ones, as in CRLF, end the line and do not blank it), and no escape sequence
/// but colors (SGR, `ESC[…m`), which are kept only when `keep_colors`.
pub fn clean_line(line: &[u8], keep_colors: bool, out: &mut Vec<u8>) {
    let line = trim_carriage_returns(line);
    let mut rest = match memchr::memrchr(b'\r', line) {
        Some(last) => &line[last + 1..],
        None => line,
    };
    while let Some(esc) = memchr::memchr(ESC, rest) {
        out.extend_from_slice(&rest[..esc]);
        let (len, is_color) = escape_len(&rest[esc..]);
        if is_color && keep_colors {
            out.extend_from_slice(&rest[esc..esc + len]);
        }
        rest = &rest[esc + len..];
    }
    out.extend_from_slice(rest);
}

fn trim_carriage_returns(mut line: &[u8]) -> &[u8] {
    while let Some(rest) = line.strip_suffix(b"\r") {
        line = rest;
    }
    line
}

/// The length of the escape sequence `seq` starts with (at its `ESC`), to the end of
/// the line when it is unterminated, and whether it is a color (SGR).
fn escape_len(seq: &[u8]) -> (usize, bool) {
    match seq.get(1) {
        Some(b'[') => csi_len(seq),
        // OSC (titles, hyperlinks), DCS, SOS, PM, APC: strings ended by BEL or ST.
        Some(b']' | b'P' | b'X' | b'^' | b'_') => (string_len(seq), false),
        // nF sequences (`ESC ( B`): intermediates, then one final byte.
        Some(_) => {
            let end = 1 + seq[1..]
                .iter()
                .take_while(|b| (0x20..=0x2f).contains(*b))
                .count();
            match seq.get(end) {
                Some(last) if (0x30..=0x7e).contains(last) => (end + 1, false),
                // No final byte: drop what was read, keep the rest (a UTF-8 character).
                _ => (end, false),
            }
        }
        None => (1, false),
    }
}

/// `ESC [`, parameters (0x30–0x3F), intermediates (0x20–0x2F), one final byte.
fn csi_len(seq: &[u8]) -> (usize, bool) {
    let params = seq[2..]
        .iter()
        .take_while(|b| (0x30..=0x3f).contains(*b))
        .count();
    let intermediates = seq[2 + params..]
        .iter()
        .take_while(|b| (0x20..=0x2f).contains(*b))
        .count();
    let end = 2 + params + intermediates;
    match seq.get(end) {
        Some(&last) if (0x40..=0x7e).contains(&last) => {
            (end + 1, last == b'm' && intermediates == 0)
        }
        // Not a valid final byte: drop what was read, keep the byte as text.
        Some(_) => (end, false),
        None => (seq.len(), false),
    }
}

fn string_len(seq: &[u8]) -> usize {
    let body = &seq[2..];
    for (i, &b) in body.iter().enumerate() {
        if b == BEL {
            return 2 + i + 1;
        }
        if b == ESC && body.get(i + 1) == Some(&b'\\') {
            return 2 + i + 2;
        }
    }
    seq.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(framer: &mut LineFramer, data: &[u8]) -> Vec<Bytes> {
        framer.buffer().extend_from_slice(data);
        std::iter::from_fn(|| framer.take_lines()).collect()
    }

    #[test]
    fn complete_lines_come_out_in_one_chunk_and_partials_wait() {
        let mut f = LineFramer::default();
        assert_eq!(feed(&mut f, b"a\nb\nc"), [Bytes::from("a\nb\n")]);
        assert_eq!(feed(&mut f, b"d\n"), [Bytes::from("cd\n")]);
        assert_eq!(f.finish(), None);
    }

    #[test]
    fn a_terminals_crlf_line_ends_become_newlines_and_lone_carriage_returns_stay() {
        let mut f = LineFramer::terminal();
        assert_eq!(
            feed(&mut f, b"a\r\n\r\nbar 1\rbar 2\r\nc\nprompt> "),
            [Bytes::from("a\n\nbar 1\rbar 2\nc\n")]
        );
        assert_eq!(f.partial(), b"prompt> ");
        assert_eq!(feed(&mut f, b"\r\n"), [Bytes::from("prompt> \n")]);
        let mut pipe = LineFramer::default();
        assert_eq!(feed(&mut pipe, b"a\r\n"), [Bytes::from("a\r\n")]);
    }

    #[test]
    fn final_line_without_newline_is_delivered() {
        let mut f = LineFramer::default();
        assert!(feed(&mut f, b"last words").is_empty());
        assert_eq!(f.finish(), Some(Bytes::from("last words\n")));
    }

    #[test]
    fn overlong_partial_line_is_cut_at_the_limit() {
        let mut f = LineFramer::default();
        let chunks = feed(&mut f, &vec![b'x'; MAX_LINE + 10]);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].len(), MAX_LINE + 1);
        assert_eq!(f.finish().map(|b| b.len()), Some(11));
    }

    #[test]
    fn cuts_never_split_a_utf8_character() {
        let mut text = vec![b'x'; MAX_LINE - 1];
        text.extend_from_slice("é".as_bytes());
        assert_eq!(utf8_cut(&text, MAX_LINE), MAX_LINE - 1);
        assert_eq!(utf8_cut(b"short", MAX_LINE), 5);
    }

    #[test]
    fn invalid_utf8_is_cut_at_the_limit() {
        let bytes = vec![0x80u8; MAX_LINE + 5];
        assert_eq!(utf8_cut(&bytes, MAX_LINE), MAX_LINE);
    }

    #[test]
    fn split_long_pieces_concatenate_to_the_line() {
        let line: Vec<u8> = "ab€".repeat(50_000).into_bytes();
        let pieces: Vec<&[u8]> = split_long(&line).collect();
        assert!(pieces.len() > 2);
        assert!(pieces.iter().all(|p| p.len() <= MAX_LINE));
        assert!(pieces.iter().all(|p| std::str::from_utf8(p).is_ok()));
        assert_eq!(pieces.concat(), line);
        assert_eq!(split_long(b"").count(), 1);
    }
    #[test]
    fn split_lines_is_split_on_newlines() {
        for chunk in [&b"a\nb"[..], b"", b"\n", b"a\n\nb", b"one"] {
            let expected: Vec<&[u8]> = chunk.split(|&b| b == b'\n').collect();
            assert_eq!(split_lines(chunk).collect::<Vec<_>>(), expected);
        }
    }

    fn clean(line: &str, keep_colors: bool) -> String {
        let mut out = Vec::new();
        clean_line(line.as_bytes(), keep_colors, &mut out);
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn carriage_returns_leave_what_a_terminal_shows() {
        assert_eq!(clean("10%\r50%\r100%", false), "100%");
        assert_eq!(clean("done\r", false), "done");
        assert_eq!(clean("\r\r", false), "");
    }

    #[test]
    fn escape_sequences_other_than_colors_are_removed() {
        assert_eq!(clean("a\x1b[2Kb\x1b[1;1Hc\x1b[2Jd", true), "abcd");
        assert_eq!(clean("\x1b]0;title\x07x", true), "x");
        assert_eq!(clean("\x1b]0;title\x1b\\x", true), "x");
        assert_eq!(clean("a\x1b(Bb\x1b7c", true), "abc");
        assert_eq!(clean("lone\x1b", true), "lone");
        assert_eq!(clean("\x1bé", true), "é");
        assert_eq!(clean("cut\x1b[12", true), "cut");
        assert_eq!(clean("open\x1b]0;never ended", true), "open");
    }

    #[test]
    fn colors_are_kept_only_when_asked() {
        let red = "\x1b[31mred\x1b[0m";
        assert_eq!(clean(red, true), red);
        assert_eq!(clean(red, false), "red");
        assert!(needs_cleaning(red.as_bytes()));
        assert!(!needs_cleaning(b"plain text"));
    }
}
