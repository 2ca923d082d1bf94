//! `sysctl(KERN_PROCARGS2)`'s answer: how macOS shows another process's arguments and
//! environment (readable for the user's own processes). The buffer is
//!
//! ```text
//! argc (native int) | exec path NUL | NUL padding | argv[0] NUL … argv[argc-1] NUL
//! | env NUL … env NUL | NUL | apple strings …
//! ```
//!
//! Read here without system calls, so the Linux tests run it on recorded buffers.

/// The arguments and the environment of a process, each a NUL-separated block.
#[derive(Debug, PartialEq, Eq)]
pub struct ProcArgs<'a> {
    pub args: &'a [u8],
    pub env: &'a [u8],
}

/// Splits a `KERN_PROCARGS2` buffer; `None` when it is too short to hold `argc`. A
/// truncated buffer gives what it holds.
pub fn parse(buffer: &[u8]) -> Option<ProcArgs<'_>> {
    let argc = usize::try_from(i32::from_ne_bytes(buffer.get(..4)?.try_into().ok()?)).ok()?;
    let rest = &buffer[4..];
    let after_path = string_end(rest, 0);
    let args_start = rest
        .get(after_path..)
        .and_then(|tail| tail.iter().position(|&b| b != 0))
        .map_or(rest.len(), |skip| after_path + skip);
    let mut args_end = args_start;
    for _ in 0..argc {
        if args_end >= rest.len() {
            break; // truncated, or an argc that cannot be right
        }
        args_end = string_end(rest, args_end);
    }
    let mut env_end = args_end;
    while rest.get(env_end).is_some_and(|&b| b != 0) {
        env_end = string_end(rest, env_end);
    }
    Some(ProcArgs {
        args: &rest[args_start.min(rest.len())..args_end.min(rest.len())],
        env: &rest[args_end.min(rest.len())..env_end.min(rest.len())],
    })
}

/// Where the string starting at `at` ends, its NUL included (the buffer's end if none).
fn string_end(buffer: &[u8], at: usize) -> usize {
    buffer
        .get(at..)
        .and_then(|tail| tail.iter().position(|&b| b == 0))
        .map_or(buffer.len(), |len| at + len + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::table::{command_words, env_has};

    /// As a Mac returns it for `python3 -m http.server 5006` run by hlocal: the exec
    /// path padded with NULs to a word boundary, two environment entries, then the
    /// `apple` strings that are not part of the environment.
    fn recorded() -> Vec<u8> {
        let mut b = 4i32.to_ne_bytes().to_vec();
        b.extend_from_slice(b"/usr/bin/python3\0\0\0\0\0\0\0\0");
        b.extend_from_slice(b"python3\0-m\0http.server\x005006\0");
        b.extend_from_slice(b"PATH=/usr/bin:/bin\0HLOCAL_SESSION=4242-17\0\0");
        b.extend_from_slice(b"executable_path=/usr/bin/python3\0ptr_munge=\0\0\0");
        b
    }

    #[test]
    fn arguments_and_environment_are_split() {
        let buffer = recorded();
        let parsed = parse(&buffer).expect("parsed");
        assert_eq!(
            command_words(parsed.args).as_deref(),
            Some("python3 -m http.server 5006")
        );
        assert!(env_has(parsed.env, b"HLOCAL_SESSION=4242-17"));
        assert!(!env_has(parsed.env, b"ptr_munge="));
    }

    #[test]
    fn every_truncation_parses_without_panicking() {
        let buffer = recorded();
        for len in 0..buffer.len() {
            let _ = parse(&buffer[..len]);
        }
        assert_eq!(parse(&buffer[..3]), None);
        let huge_argc = [i32::MAX.to_ne_bytes().as_slice(), b"/bin/sh\0sh\0"].concat();
        let parsed = parse(&huge_argc).expect("parsed");
        assert_eq!(command_words(parsed.args).as_deref(), Some("sh"));
        assert!(parse(&(-1i32).to_ne_bytes()).is_none());
    }

    #[test]
    fn a_process_without_environment() {
        let mut b = 1i32.to_ne_bytes().to_vec();
        b.extend_from_slice(b"/bin/sleep\0\0sleep\0\0");
        let parsed = parse(&b).expect("parsed");
        assert_eq!(parsed.args, b"sleep\0");
        assert!(parsed.env.is_empty());
    }
}
