//! Durations as people write them in environment variables and files:
//! `250ms`, `2s`, `1m`, `1m30s`.
//!
//! This module is the one home of the duration format of every svc crate:
//! `svc-client` reads `AUTH_SVC_TIMEOUT=2s` with it, and the `serde`
//! support of `svc-breaker`, `svc-httpclient` and `svc-client` reads and
//! writes `reset_timeout = "30s"` with it. It lives here because this is the
//! lowest crate (the other two depend on it) and because it needs nothing
//! but `std`, so the breaker keeps its empty dependency list. Two parsers
//! would drift: one accepting `1.5s` or `30 s`, the other not.
//!
//! The grammar is documented on [`parse_duration`], for users.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// What every duration setting expects, for error messages.
const EXPECTED: &str = "a duration such as 250ms, 2s or 1m";

/// Parses a duration such as `250ms`, `2s`, `1m` or `1m30s`: the one
/// duration format of the svc crates (their environment variables and
/// configuration files).
///
/// The grammar is deliberately small and exact, like the duration syntax of
/// Go's `time.ParseDuration` without its fractions and signs:
///
/// ```text
/// duration = number unit { number unit }      e.g. 250ms, 2s, 1h30m, 2s500ms
/// number   = digit { digit }                  decimal, no sign, no fraction
/// unit     = "ns" | "us" | "µs" | "ms" | "s" | "m" | "h"
/// ```
///
/// - Whitespace around the whole value is ignored; inside it is an error.
/// - A unit is always required, even for zero (`0s`): `250` could mean
///   milliseconds or seconds, and guessing is how a 250 s timeout happens.
/// - In a compound value each unit appears once, from the largest to the
///   smallest (`1m30s`, not `30s1m` or `1s1s`).
/// - Units are lower case: `m` is minutes, and `M`, `S` or `MS` are errors.
/// - Fractions (`1.5s`), signs (`-1s`, `+1s`), days and longer units are
///   errors: write `1500ms`, `24h`.
/// - A value that does not fit a [`Duration`] (about 584 942 years) is an
///   error, never a wrap-around or a saturated value.
///
/// # Errors
///
/// A [`ParseDurationError`] saying what is wrong: an empty value, a missing
/// or unknown unit, a fraction, a sign, units out of order, or a value too
/// large for a [`Duration`].
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use svc_breaker::parse_duration;
///
/// assert_eq!(parse_duration("250ms")?, Duration::from_millis(250));
/// assert_eq!(parse_duration(" 2s ")?, Duration::from_secs(2));
/// assert_eq!(parse_duration("1m30s")?, Duration::from_secs(90));
/// assert!(parse_duration("250").unwrap_err().to_string().contains("unit"));
/// assert!(parse_duration("1.5s").is_err());
/// assert!(parse_duration("-1s").is_err());
/// # Ok::<(), svc_breaker::ParseDurationError>(())
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, ParseDurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ParseDurationError(Problem::Empty));
    }
    let mut rest = text;
    let mut total = Duration::ZERO;
    // Rank of the previous unit: each next one must be strictly smaller.
    let mut previous: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(ParseDurationError(match rest.chars().next() {
                Some('-') => Problem::Negative,
                Some('+') => Problem::Sign,
                Some('.') => Problem::Fraction,
                Some(c) if c.is_whitespace() => Problem::Space,
                _ => Problem::NotANumber,
            }));
        }
        let (number, after) = rest.split_at(digits);
        let unit_len = after
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || c.is_whitespace() || matches!(c, '.' | '-' | '+'))
            .map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(ParseDurationError(match after.chars().next() {
                Some('.') => Problem::Fraction,
                Some(c) if c.is_whitespace() => Problem::Space,
                _ => Problem::MissingUnit,
            }));
        }
        let Some(rank) = UNITS.iter().position(|(names, _)| names.contains(&unit)) else {
            return Err(ParseDurationError(Problem::UnknownUnit(truncate(unit, 16))));
        };
        if previous.is_some_and(|p| rank <= p) {
            return Err(ParseDurationError(Problem::Order));
        }
        previous = Some(rank);
        // All digits: parsing fails only on overflow.
        let n: u64 = number
            .parse()
            .map_err(|_| ParseDurationError(Problem::TooLarge))?;
        let part = UNITS[rank].1(n).ok_or(ParseDurationError(Problem::TooLarge))?;
        total = total
            .checked_add(part)
            .ok_or(ParseDurationError(Problem::TooLarge))?;
        rest = after;
    }
    Ok(total)
}

/// The units, largest first, with the conversion of a count of them.
type Unit = (&'static [&'static str], fn(u64) -> Option<Duration>);

const UNITS: [Unit; 6] = [
    (&["h"], |n| n.checked_mul(3600).map(Duration::from_secs)),
    (&["m"], |n| n.checked_mul(60).map(Duration::from_secs)),
    (&["s"], |n| Some(Duration::from_secs(n))),
    (&["ms"], |n| Some(Duration::from_millis(n))),
    // U+00B5 MICRO SIGN and U+03BC GREEK SMALL LETTER MU, as Go accepts.
    (&["us", "\u{b5}s", "\u{3bc}s"], |n| {
        Some(Duration::from_micros(n))
    }),
    (&["ns"], |n| Some(Duration::from_nanos(n))),
];

/// Formats `duration` in the format [`parse_duration`] reads, exactly: the
/// largest units first, zero parts left out (`1m30s`, `2s500ms`, `0s`).
/// `parse_duration(&format_duration(d)) == Ok(d)` for every `d`.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use svc_breaker::{format_duration, parse_duration};
///
/// assert_eq!(format_duration(Duration::from_millis(90_250)), "1m30s250ms");
/// assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
/// assert_eq!(format_duration(Duration::ZERO), "0s");
/// let d = Duration::new(5, 1);
/// assert_eq!(parse_duration(&format_duration(d))?, d);
/// # Ok::<(), svc_breaker::ParseDurationError>(())
/// ```
pub fn format_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_owned();
    }
    let secs = duration.as_secs();
    let nanos = duration.subsec_nanos();
    let parts = [
        (secs / 3600, "h"),
        (secs / 60 % 60, "m"),
        (secs % 60, "s"),
        (u64::from(nanos / 1_000_000), "ms"),
        (u64::from(nanos / 1_000 % 1_000), "us"),
        (u64::from(nanos % 1_000), "ns"),
    ];
    let mut out = String::new();
    for (n, unit) in parts {
        if n != 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
        }
    }
    out
}

/// Why [`parse_duration`] rejected a value. `Display` says what a duration
/// looks like and what was wrong, without repeating the value (the caller
/// knows where it came from and names it: a variable, a field).
///
/// # Example
///
/// ```
/// let err = svc_breaker::parse_duration("30").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "expected a duration such as 250ms, 2s or 1m \
///      (a unit is needed after the number: ns, us, ms, s, m or h)",
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseDurationError(Problem);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    Empty,
    NotANumber,
    MissingUnit,
    UnknownUnit(String),
    Fraction,
    Negative,
    Sign,
    Space,
    Order,
    TooLarge,
}

impl ParseDurationError {
    /// What a valid value looks like, for messages about a setting:
    /// `a duration such as 250ms, 2s or 1m`.
    pub const EXPECTED: &'static str = EXPECTED;

    /// True when the value was well formed but too large for a
    /// [`Duration`].
    pub fn is_overflow(&self) -> bool {
        self.0 == Problem::TooLarge
    }
}

impl fmt::Display for ParseDurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {EXPECTED} (")?;
        match &self.0 {
            Problem::Empty => f.write_str("the value is empty")?,
            Problem::NotANumber => f.write_str("it must start with a whole number")?,
            Problem::MissingUnit => {
                f.write_str("a unit is needed after the number: ns, us, ms, s, m or h")?;
            }
            Problem::UnknownUnit(unit) => {
                write!(f, "unknown unit {unit:?}; use ns, us, ms, s, m or h")?;
            }
            Problem::Fraction => {
                f.write_str("fractions are not supported; use a smaller unit, as in 1500ms")?;
            }
            Problem::Negative => f.write_str("it must not be negative")?,
            Problem::Sign => f.write_str("a sign is not allowed")?,
            Problem::Space => f.write_str("spaces are not allowed inside it")?,
            Problem::Order => f.write_str(
                "in a compound duration each unit comes once, largest first, as in 1m30s",
            )?,
            Problem::TooLarge => f.write_str("it is too large")?,
        }
        f.write_str(")")
    }
}

impl StdError for ParseDurationError {}

/// At most `max` characters of `s`, with `…` when cut.
fn truncate(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// `#[serde(with = "svc_breaker::serde_duration")]` for a [`Duration`] field
/// written as a string in the [format of this crate](crate::parse_duration)
/// (`"250ms"`, `"1m30s"`), with [`option`](serde_duration::option) for an
/// `Option<Duration>`. Every config type of the svc crates uses it, so a
/// service's own settings can read durations the same way.
///
/// # Example
///
/// ```
/// use std::time::Duration;
///
/// #[derive(Debug, serde::Deserialize, serde::Serialize)]
/// struct Settings {
///     #[serde(with = "svc_breaker::serde_duration")]
///     poll_every: Duration,
///     #[serde(default, with = "svc_breaker::serde_duration::option")]
///     give_up_after: Option<Duration>,
/// }
///
/// let s: Settings = serde_json::from_str(r#"{ "poll_every": "1m30s" }"#)?;
/// assert_eq!(s.poll_every, Duration::from_secs(90));
/// assert_eq!(s.give_up_after, None);
/// assert_eq!(serde_json::to_string(&s)?, r#"{"poll_every":"1m30s","give_up_after":null}"#);
/// let err = serde_json::from_str::<Settings>(r#"{ "poll_every": "90" }"#).unwrap_err();
/// assert!(err.to_string().contains("a unit is needed"), "{err}");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[cfg(feature = "serde")]
pub mod serde_duration {
    use std::fmt;
    use std::time::Duration;

    use ::serde::de::{self, Deserializer, Visitor};
    use ::serde::ser::Serializer;

    /// Writes `duration` as a string such as `"1m30s"`.
    ///
    /// # Errors
    ///
    /// Only the serializer's own.
    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_duration(*duration))
    }

    /// Reads a string such as `"250ms"`.
    ///
    /// # Errors
    ///
    /// A value that is not a string, or a string that
    /// [`parse_duration`](crate::parse_duration) rejects (the message quotes
    /// at most 64 characters of it and says what a duration looks like).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_str(DurationVisitor)
    }

    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration string such as \"250ms\", \"2s\" or \"1m\"")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
            super::parse_duration(text).map_err(|err| {
                E::custom(format_args!(
                    "invalid duration {:?}: {err}",
                    super::truncate(text, 64)
                ))
            })
        }
    }

    /// The same for an `Option<Duration>` (`None` is written as the
    /// format's null, a missing field needs `#[serde(default)]`).
    pub mod option {
        use std::time::Duration;

        use ::serde::{Deserialize, Deserializer, Serializer};

        /// Writes `Some(duration)` as [`serialize`](super::serialize) does, `None` as none.
        ///
        /// # Errors
        ///
        /// Only the serializer's own.
        pub fn serialize<S: Serializer>(
            duration: &Option<Duration>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match duration {
                Some(d) => super::serialize(d, serializer),
                None => serializer.serialize_none(),
            }
        }

        /// Reads a duration string or the format's null.
        ///
        /// # Errors
        ///
        /// As [`deserialize`](super::deserialize).
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Duration>, D::Error> {
            #[derive(Deserialize)]
            struct Wrapped(#[serde(with = "super")] Duration);
            Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|Wrapped(d)| d))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        for (text, expected) in [
            ("1ns", Duration::from_nanos(1)),
            ("7us", Duration::from_micros(7)),
            ("7µs", Duration::from_micros(7)),
            ("7μs", Duration::from_micros(7)),
            ("250ms", Duration::from_millis(250)),
            ("2s", Duration::from_secs(2)),
            ("1m", Duration::from_secs(60)),
            ("3h", Duration::from_secs(3 * 3600)),
            ("0s", Duration::ZERO),
            ("007s", Duration::from_secs(7)),
            ("1h2m3s4ms5us6ns", Duration::new(3723, 4_005_006)),
            ("2s500ms", Duration::from_millis(2500)),
            ("90s", Duration::from_secs(90)),
            ("\t 1m30s \n", Duration::from_secs(90)),
            ("18446744073709551615s", Duration::from_secs(u64::MAX)),
        ] {
            assert_eq!(parse_duration(text), Ok(expected), "{text:?}");
        }
    }

    #[test]
    fn rejects_with_the_reason() {
        for (text, problem) in [
            ("", Problem::Empty),
            ("   ", Problem::Empty),
            ("abc", Problem::NotANumber),
            ("s", Problem::NotANumber),
            ("250", Problem::MissingUnit),
            ("0", Problem::MissingUnit),
            ("1m30", Problem::MissingUnit),
            ("2 s", Problem::Space),
            ("1m 30s", Problem::Space),
            ("2sec", Problem::UnknownUnit("sec".into())),
            ("2S", Problem::UnknownUnit("S".into())),
            ("1d", Problem::UnknownUnit("d".into())),
            ("1.5s", Problem::Fraction),
            (".5s", Problem::Fraction),
            ("-1s", Problem::Negative),
            ("+1s", Problem::Sign),
            ("1s-1ms", Problem::Negative),
            ("30s1m", Problem::Order),
            ("1s1s", Problem::Order),
            ("18446744073709551616s", Problem::TooLarge),
            ("5124095576030432h", Problem::TooLarge),
            ("18446744073709551615s1000ms", Problem::TooLarge),
        ] {
            assert_eq!(
                parse_duration(text),
                Err(ParseDurationError(problem)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn long_unknown_units_are_cut_in_the_message() {
        let err = parse_duration(&format!("1{}", "x".repeat(1000))).unwrap_err();
        assert!(err.to_string().len() < 150, "{err}");
    }

    #[test]
    fn format_round_trips() {
        for d in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_millis(250),
            Duration::from_secs(59),
            Duration::from_secs(3600),
            Duration::new(3723, 4_005_006),
            Duration::MAX,
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{d:?}");
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    }
}
