//! Quoting shared by the formats: each engine reads values with its own rules, and a
//! config var must arrive byte for byte (`$`, `%`, quotes, `#`, newlines, unicode).
//! Every function here says whose rules it follows; none ever puts a value into an
//! error message (it may be a secret).

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, InputError};

/// A YAML double-quoted scalar (YAML 1.1 and 1.2, so PyYAML and Go's yaml agree):
/// `\` and `"` escaped, and every character a YAML reader refuses or takes as a line
/// break (controls, DEL, C1 controls with NEL, U+2028/2029, U+FFFE/FFFF) as an escape.
pub fn yaml(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if yaml_needs_escape(c) => push_unicode_escape(&mut out, c),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn yaml_needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{fffe}' | '\u{ffff}')
}

fn push_unicode_escape(out: &mut String, c: char) {
    let code = u32::from(c);
    // Writing to a String cannot fail.
    let _ = if code <= 0xff {
        write!(out, "\\x{code:02x}")
    } else {
        write!(out, "\\u{code:04x}")
    };
}

/// A value in a double-quoted string where `\` escapes exactly the characters in
/// `escaped` (and itself and `"`), every other character taken as it is.
pub fn double_quoted(value: &str, escaped: &[char]) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' || escaped.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A name a POSIX shell and systemd accept: letters, digits and `_`, not starting with a
/// digit (hlocal's own env files also allow `.`).
pub fn is_shell_name(name: &str) -> bool {
    !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The error for a config var an engine has no way to receive, naming the variable and
/// why, never its value.
pub fn inexpressible(format: &'static str, name: &str, why: &str) -> Error {
    InputError::NotExportable {
        what: name.to_string(),
        format,
        why: format!("{why} (see docs/export.md, \"What is not expressible\")"),
    }
    .into()
}

/// A path for systemd and supervisord, which both expand `%` sequences in it.
pub fn percent_path(path: &Path) -> String {
    path.display().to_string().replace('%', "%%")
}

/// A duration as systemd and Compose read one: whole seconds as `5s`, else milliseconds.
pub fn duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Whole seconds, rounded up, for engines that take an integer (Kubernetes, supervisord):
/// a grace period is never shortened.
pub fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_escapes_what_readers_refuse_and_keeps_unicode() {
        assert_eq!(yaml(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(yaml("l1\nl2\t\r"), r#""l1\nl2\t\r""#);
        assert_eq!(yaml("\u{7}\u{85}\u{2028}"), r#""\x07\x85\u2028""#);
        assert_eq!(yaml("é ☃ $x #y"), "\"é ☃ $x #y\"");
    }

    #[test]
    fn double_quoted_escapes_only_what_it_is_told() {
        assert_eq!(double_quoted(r#"a"b\$c`"#, &['$']), r#""a\"b\\\$c`""#);
    }

    #[test]
    fn shell_names() {
        assert!(is_shell_name("DATABASE_URL"));
        assert!(!is_shell_name("1X"));
        assert!(!is_shell_name("a.b"));
    }

    #[test]
    fn durations() {
        assert_eq!(duration(Duration::from_secs(5)), "5s");
        assert_eq!(duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(3)), 3);
    }
}
