//! `grpc-timeout`: gRPC's deadline header, `1*8DIGIT` and a unit
//! (`H`ours, `M`inutes, `S`econds, `m`illiseconds, `u`icroseconds,
//! `n`anoseconds), from gRPC's `PROTOCOL-HTTP2.md`.
//!
//! The value is read from a request the caller built (tonic's
//! `Request::set_timeout` writes it), so it is untrusted text: a malformed
//! one is an error naming what is wrong, never a panic, and the channel
//! then ignores it and keeps its own timeout. The server layer reads it
//! from its callers the same way ([`crate::deadline`]).
#![cfg_attr(not(feature = "grpc"), allow(dead_code))]

use std::fmt;
use std::time::Duration;

use http::HeaderValue;

/// The header's name.
pub(crate) const GRPC_TIMEOUT: &str = "grpc-timeout";

/// The most digits a value may have.
const MAX_DIGITS: usize = 8;

/// Why a `grpc-timeout` value was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InvalidTimeout {
    /// No digits, or more than eight.
    Digits,
    /// A unit other than `H`, `M`, `S`, `m`, `u`, `n` (or none).
    Unit,
}

impl fmt::Display for InvalidTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidTimeout::Digits => "invalid grpc-timeout: expected 1 to 8 digits",
            InvalidTimeout::Unit => "invalid grpc-timeout: expected a unit of H, M, S, m, u or n",
        })
    }
}

impl std::error::Error for InvalidTimeout {}

/// Parses a `grpc-timeout` value.
pub(crate) fn parse(value: &HeaderValue) -> Result<Duration, InvalidTimeout> {
    let bytes = value.as_bytes();
    let Some((&unit, digits)) = bytes.split_last() else {
        return Err(InvalidTimeout::Digits);
    };
    if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return Err(InvalidTimeout::Digits);
    }
    // At most 8 digits: fits a u64 with room to spare.
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Ok(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return Err(InvalidTimeout::Unit),
    })
}

/// Formats `d` as a `grpc-timeout` value: the finest unit whose value
/// fits in eight digits, rounded down, so the server never sees more time
/// than the caller waits.
pub(crate) fn format(d: Duration) -> HeaderValue {
    const MAX: u128 = 99_999_999;
    let units: [(u128, u8); 6] = [
        (d.as_nanos(), b'n'),
        (d.as_micros(), b'u'),
        (d.as_millis(), b'm'),
        (u128::from(d.as_secs()), b'S'),
        (u128::from(d.as_secs() / 60), b'M'),
        (u128::from(d.as_secs() / 3600), b'H'),
    ];
    let (value, unit) = units
        .into_iter()
        .find(|(v, _)| *v <= MAX)
        .unwrap_or((MAX, b'H'));
    let mut text = value.to_string();
    text.push(char::from(unit));
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static("99999999H"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> Result<Duration, InvalidTimeout> {
        parse(&HeaderValue::from_str(s).unwrap())
    }

    #[test]
    fn parses_every_unit() {
        assert_eq!(parsed("250m"), Ok(Duration::from_millis(250)));
        assert_eq!(parsed("2S"), Ok(Duration::from_secs(2)));
        assert_eq!(parsed("1M"), Ok(Duration::from_secs(60)));
        assert_eq!(parsed("1H"), Ok(Duration::from_secs(3600)));
        assert_eq!(parsed("7u"), Ok(Duration::from_micros(7)));
        assert_eq!(parsed("9n"), Ok(Duration::from_nanos(9)));
        assert_eq!(
            parsed("99999999H"),
            Ok(Duration::from_secs(99_999_999 * 3600))
        );
    }

    #[test]
    fn garbage_is_a_typed_error() {
        for (bad, why) in [
            ("", InvalidTimeout::Digits),
            ("m", InvalidTimeout::Digits),
            ("123456789m", InvalidTimeout::Digits),
            ("-5m", InvalidTimeout::Digits),
            ("1.5S", InvalidTimeout::Digits),
            (" 5m", InvalidTimeout::Digits),
            ("5", InvalidTimeout::Digits),
            ("5s", InvalidTimeout::Unit),
            ("5x", InvalidTimeout::Unit),
        ] {
            assert_eq!(parsed(bad), Err(why), "{bad:?}");
        }
        assert!(parse(&HeaderValue::from_bytes(b"5\xffm").unwrap()).is_err());
    }

    #[test]
    fn formats_within_eight_digits() {
        assert_eq!(format(Duration::from_millis(250)), "250000u");
        assert_eq!(format(Duration::from_secs(30)), "30000000u");
        assert_eq!(format(Duration::from_secs(3600)), "3600000m");
        assert_eq!(format(Duration::ZERO), "0n");
        assert_eq!(format(Duration::MAX), "99999999H");
    }

    proptest::proptest! {
        #[test]
        fn format_round_trips_without_adding_time(nanos in 0u64..u64::MAX) {
            let d = Duration::from_nanos(nanos);
            let back = parse(&format(d)).unwrap();
            proptest::prop_assert!(back <= d, "{:?} > {:?}", back, d);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..16)) {
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                let _ = parse(&value);
            }
        }
    }
}
