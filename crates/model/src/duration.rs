//! The one syntax of every duration flag: seconds alone (`30`, `0.5`) or numbers with
//! units as `humantime` reads them (`500ms`, `90s`, `30m`, `12h`, `7d`, `1h30m`).

use std::time::Duration;

/// The accepted forms, for error messages and help texts.
pub const SYNTAX: &str =
    "seconds (30, 0.5) or a number with a unit (500ms, 90s, 30m, 12h, 7d, 1h30m)";

/// Bounds of one flag's duration, both included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurationRange {
    pub min: Duration,
    pub max: Duration,
}

impl DurationRange {
    pub const fn new(min: Duration, max: Duration) -> Self {
        DurationRange { min, max }
    }

    /// From `min` up, with no bound above.
    pub const fn at_least(min: Duration) -> Self {
        DurationRange::new(min, Duration::MAX)
    }

    /// [`parse`], then the bounds.
    pub fn parse(&self, text: &str) -> Result<Duration, String> {
        let d = parse(text)?;
        if d < self.min || d > self.max {
            let min = humantime::format_duration(self.min);
            let text = text.trim();
            return Err(if self.max == Duration::MAX {
                format!("'{text}' is out of range: give at least {min}")
            } else {
                let max = humantime::format_duration(self.max);
                format!("'{text}' is out of range: give {min} to {max}")
            });
        }
        Ok(d)
    }
}

/// Parses seconds alone (a decimal number, as older flags took) or a humantime duration.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let invalid = || format!("'{text}' is not a duration: give {SYNTAX}");
    // Only numerals count as bare seconds: f64 would also take "inf" and "nan".
    let numeric = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && text.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '+');
    if numeric {
        let secs: f64 = text.parse().map_err(|_| invalid())?;
        return Duration::try_from_secs_f64(secs).map_err(|_| invalid());
    }
    humantime::parse_duration(text).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bare_seconds() {
        let table: &[(&str, Duration)] = &[
            ("30", Duration::from_secs(30)),
            ("0.5", Duration::from_millis(500)),
            ("2.5", Duration::from_millis(2500)),
            (" 10 ", Duration::from_secs(10)),
            ("0", Duration::ZERO),
            ("500ms", Duration::from_millis(500)),
            ("90s", Duration::from_secs(90)),
            ("30m", Duration::from_secs(1800)),
            ("12h", Duration::from_secs(43_200)),
            ("7d", Duration::from_secs(604_800)),
            ("1h30m", Duration::from_secs(5400)),
            ("1h 30m", Duration::from_secs(5400)),
        ];
        for (text, expected) in table {
            assert_eq!(parse(text), Ok(*expected), "{text}");
        }
    }

    #[test]
    fn bad_input_names_the_accepted_forms() {
        for bad in ["abc", "", "-1", "inf", "nan", "5x", "h", "1e400", "10 s s"] {
            let err = parse(bad).unwrap_err();
            assert!(
                err.contains("not a duration") && err.contains(SYNTAX),
                "{bad}: {err}"
            );
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }

    #[test]
    fn ranges_refuse_values_outside() {
        let range = DurationRange::new(Duration::from_millis(100), Duration::from_secs(3600));
        assert_eq!(range.parse("0.1"), Ok(Duration::from_millis(100)));
        assert_eq!(range.parse("1h"), Ok(Duration::from_secs(3600)));
        let err = range.parse("2h").unwrap_err();
        assert!(
            err.contains("out of range") && err.contains("100ms") && err.contains("1h"),
            "{err}"
        );
        assert!(range.parse("0.05").is_err());
        assert!(range.parse("soon").unwrap_err().contains("not a duration"));
    }

    #[test]
    fn open_ranges_name_only_their_minimum() {
        let range = DurationRange::at_least(Duration::from_millis(1));
        assert_eq!(range.parse("400d"), Ok(Duration::from_secs(400 * 86_400)));
        let err = range.parse("0s").unwrap_err();
        assert_eq!(err, "'0s' is out of range: give at least 1ms");
    }
}
