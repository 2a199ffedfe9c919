//! Fault injections on the command line: `--inject-stall
//! DURATION[,level=l1|l2][,at=TIME]` and the level of
//! `--inject-notify-invalid[=l1|l2|any]`.

use crate::duration::parse_duration;
use accel::{GuestLevel, StallInjection};

/// Why a fault specification was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidFaultSpec {
    /// A duration or time that does not parse.
    Duration(String),
    /// A level other than l1, l2 or any.
    Level(String),
    /// An option the stall does not have.
    Option(String),
    /// A stall of zero length.
    Empty,
}

impl std::fmt::Display for InvalidFaultSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvalidFaultSpec::Duration(t) => {
                write!(f, "'{t}': expected a duration such as 20ms, 500us or 1.5s")
            }
            InvalidFaultSpec::Level(l) => write!(
                f,
                "level '{l}': expected l1 (the VM's own code), l2 (a guest of a hypervisor in the VM) or any"
            ),
            InvalidFaultSpec::Option(o) => {
                write!(f, "'{o}': a stall takes DURATION[,level=l1|l2|any][,at=TIME]")
            }
            InvalidFaultSpec::Empty => {
                f.write_str("a stall of zero length does nothing; give a duration above 0")
            }
        }
    }
}

impl std::error::Error for InvalidFaultSpec {}

/// Parses a guest level: `l1`, `l2`, or `any` (`None`).
pub fn parse_level(text: &str) -> Result<Option<GuestLevel>, InvalidFaultSpec> {
    match text.trim().to_ascii_lowercase().as_str() {
        "l1" => Ok(Some(GuestLevel::L1)),
        "l2" => Ok(Some(GuestLevel::L2)),
        "any" | "" => Ok(None),
        other => Err(InvalidFaultSpec::Level(other.into())),
    }
}

/// Parses `DURATION[,level=l1|l2|any][,at=TIME]`: a stall of DURATION of
/// virtual time (counted in the CPU's crystal-clock cycles), at the first
/// instruction started at or after TIME of virtual time (default 0) while
/// the given level runs (default any).
pub fn parse_stall(text: &str) -> Result<StallInjection, InvalidFaultSpec> {
    let mut parts = text.split(',');
    let ns = |t: &str| {
        // A zero (`0`, `0ms`) is a time, though not a duration to wait.
        let number = t.trim().trim_end_matches(|c: char| c.is_ascii_alphabetic());
        if number.parse::<f64>() == Ok(0.0) {
            return Ok(0);
        }
        parse_duration(t)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .map_err(|_| InvalidFaultSpec::Duration(t.into()))
    };
    let duration_ns = ns(parts.next().unwrap_or(""))?;
    if duration_ns == 0 {
        return Err(InvalidFaultSpec::Empty);
    }
    let mut stall = StallInjection {
        duration_ns,
        level: None,
        at_ns: 0,
    };
    for part in parts {
        match part.split_once('=') {
            Some(("level", l)) => stall.level = parse_level(l)?,
            Some(("at", t)) => stall.at_ns = ns(t)?,
            _ => return Err(InvalidFaultSpec::Option(part.into())),
        }
    }
    Ok(stall)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_with_and_without_its_options() {
        assert_eq!(
            parse_stall("20ms").unwrap(),
            StallInjection {
                duration_ns: 20_000_000,
                level: None,
                at_ns: 0
            }
        );
        assert_eq!(
            parse_stall("500us,level=l2,at=1.5s").unwrap(),
            StallInjection {
                duration_ns: 500_000,
                level: Some(GuestLevel::L2),
                at_ns: 1_500_000_000
            }
        );
        assert_eq!(
            parse_stall("1ms,at=2ms,level=L1").unwrap().level,
            Some(GuestLevel::L1)
        );
    }

    #[test]
    fn bad_stalls_name_what_is_wrong() {
        assert_eq!(parse_stall("0ms"), Err(InvalidFaultSpec::Empty));
        assert!(matches!(
            parse_stall("fast"),
            Err(InvalidFaultSpec::Duration(_))
        ));
        assert!(matches!(
            parse_stall("1ms,level=l3"),
            Err(InvalidFaultSpec::Level(_))
        ));
        assert!(matches!(
            parse_stall("1ms,when=2"),
            Err(InvalidFaultSpec::Option(_))
        ));
        assert!(matches!(
            parse_stall("1ms,at=soon"),
            Err(InvalidFaultSpec::Duration(_))
        ));
    }

    #[test]
    fn levels() {
        assert_eq!(parse_level("any").unwrap(), None);
        assert_eq!(parse_level("l2").unwrap(), Some(GuestLevel::L2));
        assert!(parse_level("l0").is_err());
    }
}
