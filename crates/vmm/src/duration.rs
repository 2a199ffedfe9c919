//! Host-time durations on the command line: `2s`, `500ms`, `1.5s`, `2m`,
//! or a bare number of seconds.

use std::time::Duration;

/// Parses a duration such as `2s`, `500ms`, `250us`, `1.5s`, `2m` or `3`
/// (seconds). The error names the accepted forms.
pub fn parse_duration(text: &str) -> Result<Duration, InvalidDuration> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "" | "s" | "sec" => 1.0,
        "ms" => 1e-3,
        "us" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad(text)),
    };
    let value: f64 = number.parse().map_err(|_| bad(text))?;
    let secs = value * scale;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(bad(text));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn bad(text: &str) -> InvalidDuration {
    InvalidDuration {
        text: text.to_string(),
    }
}

/// Text that is not a duration [`parse_duration`] accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidDuration {
    /// The text as given.
    pub text: String,
}

impl std::fmt::Display for InvalidDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid duration '{}': use a positive number with s, ms, us, m or h (e.g. 2s, 500ms)",
            self.text
        )
    }
}

impl std::error::Error for InvalidDuration {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        for bad in ["", "s", "0", "-1s", "2 parsecs", "1e400", "nan"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
