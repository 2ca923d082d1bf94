//! Durations as users write them: a number of seconds (`5`, `0.2`) or a number
//! with a unit (`200ms`, `5s`, `1m`, `2h`), for the CLI flags and the hlocal.toml keys.
//!
//! Parsing is exact decimal arithmetic, so `0.2` is exactly 200 ms. This module only
//! turns text (or a TOML number) into a `Duration`; which durations make sense for which
//! setting (a zero boot timeout, say) is `config`'s business.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

use crate::input::textfile::excerpt;

/// Longer than any grace period, boot or debounce a developer means; larger values are
/// typos, and tokio timers far in the future are better avoided.
const MAX: Duration = Duration::from_secs(24 * 60 * 60);

const NANOS_PER_SEC: u128 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("invalid duration {0:?} (use seconds like 5 or 0.2, or a unit: 200ms, 5s, 1m)")]
    Invalid(String),
    #[error("duration {0:?} is too long (at most 24h)")]
    TooLong(String),
    #[error("duration {0:?} must be more than 0")]
    Zero(String),
}

/// Parses `5`, `0.2`, `200ms`, `5s`, `1.5s`, `1m` or `2h`; surrounding whitespace is ignored.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    let invalid = || DurationError::Invalid(excerpt(text));
    let unit_start = trimmed
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(unit_start);
    let unit_nanos = match unit {
        "" | "s" => NANOS_PER_SEC,
        "ms" => 1_000_000,
        "m" => 60 * NANOS_PER_SEC,
        "h" => 3600 * NANOS_PER_SEC,
        _ => return Err(invalid()),
    };
    let nanos = decimal_to_nanos(number.trim_end(), unit_nanos).ok_or_else(invalid)?;
    u64::try_from(nanos)
        .ok()
        .map(Duration::from_nanos)
        .filter(|duration| *duration <= MAX)
        .ok_or_else(|| DurationError::TooLong(excerpt(text)))
}

/// As [`parse`], for a timeout that 0 would make expire at once (every request an H12,
/// every web process failed before it could bind).
pub fn parse_positive(text: &str) -> Result<Duration, DurationError> {
    match parse(text)? {
        Duration::ZERO => Err(DurationError::Zero(excerpt(text))),
        duration => Ok(duration),
    }
}

/// `digits[.digits]` times the unit, or `None` when `number` is not that shape. Values too
/// large to matter saturate, so the caller reports them as too long.
fn decimal_to_nanos(number: &str, unit_nanos: u128) -> Option<u128> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !is_digits(int) || !is_digits(frac) {
        return None;
    }
    let int = int.trim_start_matches('0');
    // Beyond 20 integer digits the value is far over MAX whatever the unit; beyond 18
    // fraction digits nothing is left at nanosecond precision.
    if int.len() > 20 {
        return Some(u128::MAX);
    }
    let frac = &frac[..frac.len().min(18)];
    let int_value: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac_value: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    let frac_nanos = frac_value * unit_nanos / 10u128.pow(frac.len() as u32);
    Some(int_value * unit_nanos + frac_nanos)
}

/// For `#[serde(deserialize_with = "duration::deserialize")]`: accepts `timeout = 5`,
/// `timeout = 0.5` and `timeout = "200ms"`.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_any(DurationVisitor { parse })
}

/// As [`deserialize`], for an optional key (use with `#[serde(default)]`).
pub fn deserialize_option<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    deserialize(deserializer).map(Some)
}

/// As [`deserialize_option`], refusing 0 as [`parse_positive`] does.
pub fn deserialize_positive_option<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    deserializer
        .deserialize_any(DurationVisitor {
            parse: parse_positive,
        })
        .map(Some)
}

/// The JSON Schema of what [`deserialize`] accepts (hlocal.toml's schema).
pub fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    duration_schema("minimum")
}

/// The JSON Schema of what [`deserialize_positive_option`] accepts.
pub fn positive_json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    duration_schema("exclusiveMinimum")
}

/// `above_zero` is `minimum` (0 allowed) or `exclusiveMinimum` (0 refused).
fn duration_schema(above_zero: &str) -> schemars::Schema {
    schemars::json_schema!({
        "description": "Seconds (5, 0.2) or a string with a unit: \"200ms\", \"5s\", \"1m\", \"2h\" (at most 24h).",
        "anyOf": [
            { "type": "number", (above_zero): 0, "maximum": MAX.as_secs() },
            { "type": "string", "pattern": DURATION_PATTERN },
        ],
    })
}

/// What [`parse`] reads: a decimal number, an optional unit.
const DURATION_PATTERN: &str = r"^\s*([0-9]+(\.[0-9]*)?|\.[0-9]+)\s*(ms|s|m|h)?\s*$";

struct DurationVisitor {
    parse: fn(&str) -> Result<Duration, DurationError>,
}

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration: seconds like 5 or 0.2, or a string like \"200ms\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        (self.parse)(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        self.visit_str(&v.to_string())
    }

    // f64's Display never uses exponent notation, so `0.5` and `1e-3` arrive as plain
    // decimals, and NaN, infinities and negatives are rejected by `parse` like text.
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        self.visit_str(&v.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    macro_rules! ok {
        ($($name:ident: $text:expr => $expected:expr,)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(parse($text), Ok($expected));
            }
        )*};
    }

    macro_rules! invalid {
        ($($name:ident: $text:expr,)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(parse($text), Err(DurationError::Invalid($text.to_string())));
            }
        )*};
    }

    ok! {
        bare_integer_is_seconds: "5" => ms(5000),
        bare_decimal_is_seconds: "0.2" => ms(200),
        leading_dot_decimal: ".5" => ms(500),
        trailing_dot_decimal: "5." => ms(5000),
        milliseconds: "200ms" => ms(200),
        seconds: "5s" => ms(5000),
        fractional_seconds: "1.5s" => ms(1500),
        minutes: "1m" => ms(60_000),
        hours: "2h" => Duration::from_secs(7200),
        zero: "0" => Duration::ZERO,
        surrounding_whitespace: " 5s\n" => ms(5000),
        space_before_unit: "5 s" => ms(5000),
        nanosecond_precision: "0.000000001" => Duration::from_nanos(1),
        excess_precision_truncates: "0.0000000019" => Duration::from_nanos(1),
        leading_zeros: "000000000000000000000000005" => ms(5000),
        exactly_the_maximum: "24h" => MAX,
    }

    invalid! {
        empty: "",
        only_whitespace: "  ",
        unknown_unit: "5x",
        uppercase_unit: "5S",
        unit_without_number: "ms",
        lone_dot: ".",
        negative: "-5",
        explicit_plus: "+5",
        nan: "NaN",
        infinity: "inf",
        exponent: "1e3",
        two_dots: "1.2.3",
        two_units: "1m30s",
        unit_first: "s5",
        non_ascii_digit: "٥",
    }

    #[test]
    fn message_shows_the_input_and_the_accepted_forms() {
        assert_eq!(
            parse("5x").unwrap_err().to_string(),
            r#"invalid duration "5x" (use seconds like 5 or 0.2, or a unit: 200ms, 5s, 1m)"#
        );
    }

    #[test]
    fn absurdly_large_values_are_too_long() {
        for text in ["25h", "86401", "99999999999h", "1441m"] {
            assert_eq!(
                parse(text),
                Err(DurationError::TooLong(text.into())),
                "{text}"
            );
        }
        assert_eq!(
            parse("25h").unwrap_err().to_string(),
            r#"duration "25h" is too long (at most 24h)"#
        );
    }

    #[test]
    fn positive_refuses_only_zero() {
        assert_eq!(parse_positive("1ms"), Ok(ms(1)));
        assert_eq!(
            parse_positive("0.0s").unwrap_err().to_string(),
            r#"duration "0.0s" must be more than 0"#
        );
        assert!(matches!(
            parse_positive("x"),
            Err(DurationError::Invalid(_))
        ));
    }

    #[test]
    fn long_input_is_shortened_in_messages() {
        let e = parse(&"9".repeat(400)).unwrap_err();
        assert!(e.to_string().len() < 120, "{e}");
    }

    #[derive(Debug, serde::Deserialize)]
    struct Keys {
        #[serde(deserialize_with = "deserialize")]
        timeout: Duration,
        #[serde(default, deserialize_with = "deserialize_option")]
        grace: Option<Duration>,
        #[serde(default, deserialize_with = "deserialize_positive_option")]
        boot: Option<Duration>,
    }

    #[test]
    fn toml_positive_duration_refuses_zero_in_every_form() {
        assert_eq!(
            from_toml("timeout = 1\nboot = 2").unwrap().boot,
            Some(ms(2000))
        );
        for zero in ["0", "0.0", "\"0ms\""] {
            let message = from_toml(&format!("timeout = 0\nboot = {zero}")).unwrap_err();
            assert!(message.ends_with("must be more than 0"), "{message}");
        }
    }

    fn from_toml(text: &str) -> Result<Keys, String> {
        toml::from_str(text).map_err(|e| e.message().to_string())
    }

    #[test]
    fn toml_accepts_integers_floats_and_strings() {
        assert_eq!(from_toml("timeout = 5").unwrap().timeout, ms(5000));
        assert_eq!(from_toml("timeout = 0.5").unwrap().timeout, ms(500));
        assert_eq!(from_toml("timeout = 0.001").unwrap().timeout, ms(1));
        assert_eq!(from_toml(r#"timeout = "200ms""#).unwrap().timeout, ms(200));
    }

    #[test]
    fn toml_optional_duration_is_none_when_absent() {
        assert_eq!(from_toml("timeout = 1").unwrap().grace, None);
        assert_eq!(
            from_toml("timeout = 1\ngrace = 2").unwrap().grace,
            Some(ms(2000))
        );
    }

    #[test]
    fn toml_rejects_negative_nan_and_wrong_types() {
        assert!(
            from_toml("timeout = -5")
                .unwrap_err()
                .contains(r#"invalid duration "-5""#)
        );
        assert!(
            from_toml("timeout = -0.5")
                .unwrap_err()
                .contains(r#"invalid duration "-0.5""#)
        );
        assert!(
            from_toml("timeout = nan")
                .unwrap_err()
                .contains(r#"invalid duration "NaN""#)
        );
        assert!(
            from_toml("timeout = inf")
                .unwrap_err()
                .contains(r#"invalid duration "inf""#)
        );
        assert!(
            from_toml("timeout = 1e300")
                .unwrap_err()
                .contains("too long")
        );
        assert!(
            from_toml("timeout = true")
                .unwrap_err()
                .contains("expected a duration")
        );
    }
}

/// Property tests (the repo's fuzzing): no input panics; a duration written back as
/// seconds or milliseconds parses to itself.
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_text_is_a_duration_or_an_error(text in "\\PC{0,40}|[0-9. ]{0,30}(ms|s|m|h)?") {
            let _ = parse(&text);
        }

        #[test]
        fn seconds_with_nanos_read_back(nanos in 0..=MAX.as_nanos() as u64) {
            let duration = Duration::from_nanos(nanos);
            let text = format!("{}.{:09}s", duration.as_secs(), duration.subsec_nanos());
            prop_assert_eq!(parse(&text), Ok(duration));
        }

        #[test]
        fn millis_read_back(millis in 0..=MAX.as_millis() as u64) {
            prop_assert_eq!(parse(&format!("{millis}ms")), Ok(Duration::from_millis(millis)));
        }

        #[test]
        fn beyond_a_day_is_too_long_not_wrapped(secs in MAX.as_secs() + 1..u64::MAX) {
            let is_too_long = matches!(parse(&secs.to_string()), Err(DurationError::TooLong(_)));
            prop_assert!(is_too_long);
        }
    }
}
