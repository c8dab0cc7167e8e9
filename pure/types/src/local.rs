//! [`LocalDate`] (`MMDD`, field 13) and [`LocalTime`] (`hhmmss`, field 12): the terminal's local
//! date and time of a transaction as it was sent, typed (the journal's `local_date` and
//! `local_time` columns).
//!
//! Both keep their wire text (ISO 8583:1987 fields 12 `n6 hhmmss` and 13 `n4 MMDD`) and
//! dereference to it, so `record.local_date == "0102"` and `&*record.local_time` read as the
//! text did; they are checked once, where they are made: a date is a month `01`-`12` and a day
//! `01`-`31`, a time is an hour `00`-`23`, a minute and a second `00`-`59`. The year is not part
//! of either (the wire carries none).

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

/// A local date `MMDD` (field 13): month `01`-`12`, day `01`-`31`. Shown and stored as the four
/// digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalDate([u8; 4]);

/// A local time `hhmmss` (field 12): hour `00`-`23`, minute and second `00`-`59`. Shown and
/// stored as the six digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalTime([u8; 6]);

/// Text that is not a local date `MMDD` or time `hhmmss`. Carries nothing of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LocalError {
    /// Not four digits making a month 01-12 and a day 01-31.
    #[error("local date must be MMDD (month 01-12, day 01-31)")]
    Date,
    /// Not six digits making an hour 00-23, a minute and a second 00-59.
    #[error("local time must be hhmmss (hour 00-23, minute and second 00-59)")]
    Time,
}

/// Two ASCII digits, `d0 d1`, as a number.
fn pair(d: &[u8]) -> Option<u8> {
    match d {
        [a @ b'0'..=b'9', b @ b'0'..=b'9'] => Some((a - b'0') * 10 + (b - b'0')),
        _ => None,
    }
}

/// `n` (at most 99) as two ASCII digits.
const fn two(n: u8) -> [u8; 2] {
    [b'0' + n / 10 % 10, b'0' + n % 10]
}

fn text(bytes: &[u8]) -> &str {
    // Only ASCII digits are ever stored (checked on construction).
    std::str::from_utf8(bytes).unwrap_or_default()
}

impl LocalDate {
    /// `0101`, 1 January (a fixed date for fixtures and benchmarks).
    pub const JANUARY_1: LocalDate = LocalDate(*b"0101");

    /// The date of `month` (1-12) and `day` (1-31); `None` outside those ranges.
    pub const fn new(month: u8, day: u8) -> Option<LocalDate> {
        if month < 1 || month > 12 || day < 1 || day > 31 {
            return None;
        }
        let (m, d) = (two(month), two(day));
        Some(LocalDate([m[0], m[1], d[0], d[1]]))
    }

    /// Parses exactly `MMDD` (`"0102"`; not `"13x1"`, `"102"` or `"1301"`).
    pub fn parse(s: &str) -> Result<LocalDate, LocalError> {
        let b = s.as_bytes();
        match (b.get(..2).and_then(pair), b.get(2..).and_then(pair)) {
            (Some(m), Some(d)) if b.len() == 4 => LocalDate::new(m, d).ok_or(LocalError::Date),
            _ => Err(LocalError::Date),
        }
    }

    /// The month, 1-12.
    pub fn month(self) -> u8 {
        pair(&self.0[..2]).unwrap_or_default()
    }

    /// The day of the month, 1-31.
    pub fn day(self) -> u8 {
        pair(&self.0[2..]).unwrap_or_default()
    }

    /// The wire text, `MMDD`.
    pub fn as_str(&self) -> &str {
        text(&self.0)
    }
}

impl LocalTime {
    /// `120000`, noon (a fixed time for fixtures and benchmarks).
    pub const NOON: LocalTime = LocalTime(*b"120000");

    /// The time `hour`:`minute`:`second`; `None` unless hour ≤ 23, minute and second ≤ 59.
    pub const fn new(hour: u8, minute: u8, second: u8) -> Option<LocalTime> {
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let (h, m, s) = (two(hour), two(minute), two(second));
        Some(LocalTime([h[0], h[1], m[0], m[1], s[0], s[1]]))
    }

    /// Parses exactly `hhmmss` (`"123456"`; not `"99"`, `"240000"` or `"12:34:56"`).
    pub fn parse(s: &str) -> Result<LocalTime, LocalError> {
        let b = s.as_bytes();
        if b.len() != 6 {
            return Err(LocalError::Time);
        }
        match (pair(&b[..2]), pair(&b[2..4]), pair(&b[4..])) {
            (Some(h), Some(m), Some(s)) => LocalTime::new(h, m, s).ok_or(LocalError::Time),
            _ => Err(LocalError::Time),
        }
    }

    /// The hour, 0-23.
    pub fn hour(self) -> u8 {
        pair(&self.0[..2]).unwrap_or_default()
    }

    /// The minute, 0-59.
    pub fn minute(self) -> u8 {
        pair(&self.0[2..4]).unwrap_or_default()
    }

    /// The second, 0-59.
    pub fn second(self) -> u8 {
        pair(&self.0[4..]).unwrap_or_default()
    }

    /// The wire text, `hhmmss`.
    pub fn as_str(&self) -> &str {
        text(&self.0)
    }
}

macro_rules! text_impls {
    ($t:ty, $name:literal) => {
        impl Deref for $t {
            type Target = str;

            fn deref(&self) -> &str {
                self.as_str()
            }
        }

        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($name, "({:?})"), self.as_str())
            }
        }

        impl FromStr for $t {
            type Err = LocalError;

            fn from_str(s: &str) -> Result<$t, LocalError> {
                <$t>::parse(s)
            }
        }

        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<$t> for &str {
            fn eq(&self, other: &$t) -> bool {
                *self == other.as_str()
            }
        }

        impl PartialEq<String> for $t {
            fn eq(&self, other: &String) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<$t> for String {
            fn eq(&self, other: &$t) -> bool {
                self == other.as_str()
            }
        }
    };
}

text_impls!(LocalDate, "LocalDate");
text_impls!(LocalTime, "LocalTime");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_mmdd_and_round_trip() {
        for s in ["0101", "0102", "1231", "0229", "0931"] {
            let d = LocalDate::parse(s).expect(s);
            assert_eq!(d.to_string(), s);
            assert_eq!(&*d, s);
            assert_eq!(d, s);
            let owned = String::from(s);
            assert_eq!(d, owned);
            assert_eq!(owned, d);
            assert_eq!(s, d);
        }
        let d = LocalDate::parse("1122").unwrap();
        assert_eq!((d.month(), d.day()), (11, 22));
        assert_eq!(
            LocalDate::new(1, 2),
            Some(LocalDate::parse("0102").unwrap())
        );
        assert_eq!(LocalDate::new(1, 1), Some(LocalDate::JANUARY_1));
        assert_eq!(LocalDate::new(13, 1), None);
        assert_eq!(LocalDate::new(1, 0), None);
        for s in [
            "",
            "13x1",
            "102",
            "01021",
            "0001",
            "1301",
            "0100",
            "0132",
            " 102",
            "+102",
            "０１０２",
        ] {
            assert_eq!(LocalDate::parse(s), Err(LocalError::Date), "{s:?}");
        }
    }

    #[test]
    fn times_are_hhmmss_and_round_trip() {
        for s in ["000000", "123456", "235959", "075959"] {
            let t = LocalTime::parse(s).expect(s);
            assert_eq!(t.to_string(), s);
            assert_eq!(t, s);
            assert_eq!(format!("{t:?}"), format!("LocalTime({s:?})"));
        }
        let t = LocalTime::parse("024106").unwrap();
        assert_eq!((t.hour(), t.minute(), t.second()), (2, 41, 6));
        assert_eq!(LocalTime::new(12, 0, 0), Some(LocalTime::NOON));
        assert_eq!(LocalTime::new(24, 0, 0), None);
        assert_eq!(LocalTime::new(23, 60, 0), None);
        assert_eq!(LocalTime::new(23, 59, 60), None);
        for s in [
            "", "99", "240000", "236000", "235960", "12:34:56", "1234567", "12345x", "-12345",
        ] {
            assert_eq!(LocalTime::parse(s), Err(LocalError::Time), "{s:?}");
        }
    }
}
