//! How a config value is typed, parsed and checked: Kafka's `ConfigDef`
//! types and validators, as far as Kraft's configs need them.
//!
//! In: a key, its [`ConfigKind`] and a value string (from a request, a
//! record or `server.properties`). Out: `Ok` or an [`InvalidConfig`] whose
//! message is Kafka's (`Invalid value X for configuration K: ...`); the
//! caller answers INVALID_CONFIG with it. Also the DescribeConfigs
//! `config_type` code of a kind ([`ConfigType`]) and the items of a list
//! value ([`list_items`]). Pure string checks.

/// How a config value is parsed and checked. Bounds are inclusive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConfigKind {
    Int {
        min: i32,
        max: i32,
    },
    Long {
        min: i64,
    },
    Double {
        min: f64,
        max: f64,
    },
    Boolean,
    /// One of these strings, exactly.
    OneOf(&'static [&'static str]),
    /// A non-empty comma-separated list of these strings.
    ListOf(&'static [&'static str]),
    /// Empty, `*`, or a comma-separated list of `partition:broker` pairs.
    ThrottledReplicas,
}

/// A config value's type as DescribeConfigs v3+ reports it
/// (`config_type`; Kafka's `ConfigEntry.ConfigType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    Unknown = 0,
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    Double = 6,
    List = 7,
}

impl ConfigType {
    /// The protocol's `config_type` code.
    pub fn code(self) -> i8 {
        self as i8
    }
}

/// A value that a key does not accept. The message is Kafka's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Invalid value {value} for configuration {key}: {reason}")]
pub struct InvalidConfig {
    pub key: String,
    pub value: String,
    pub reason: String,
}

impl ConfigKind {
    /// An `Int` with no upper bound.
    pub const fn int_at_least(min: i32) -> ConfigKind {
        ConfigKind::Int { min, max: i32::MAX }
    }

    /// The DescribeConfigs type of values of this kind.
    pub fn config_type(&self) -> ConfigType {
        match self {
            ConfigKind::Int { .. } => ConfigType::Int,
            ConfigKind::Long { .. } => ConfigType::Long,
            ConfigKind::Double { .. } => ConfigType::Double,
            ConfigKind::Boolean => ConfigType::Boolean,
            ConfigKind::OneOf(_) => ConfigType::String,
            ConfigKind::ListOf(_) | ConfigKind::ThrottledReplicas => ConfigType::List,
        }
    }

    /// Whether values are lists (so APPEND and SUBTRACT apply).
    pub fn is_list(&self) -> bool {
        self.config_type() == ConfigType::List
    }

    /// Checks `value` for key `key` the way Kafka's `LogConfig` does.
    pub fn check(&self, key: &str, value: &str) -> Result<(), InvalidConfig> {
        let bad = |why: String| {
            Err(InvalidConfig {
                key: key.to_string(),
                value: value.to_string(),
                reason: why,
            })
        };
        let v = value.trim();
        match *self {
            ConfigKind::Int { min, max } => match v.parse::<i32>() {
                Err(_) => return bad("Not a number of type INT".into()),
                Ok(n) if n < min || n > max => return bad(range(min, max, i32::MAX)),
                Ok(_) => {}
            },
            ConfigKind::Long { min } => match v.parse::<i64>() {
                Err(_) => return bad("Not a number of type LONG".into()),
                Ok(n) if n < min => return bad(format!("Value must be at least {min}")),
                Ok(_) => {}
            },
            ConfigKind::Double { min, max } => match v.parse::<f64>() {
                Ok(n) if n.is_finite() && (min..=max).contains(&n) => {}
                Ok(_) => return bad(format!("Value must be between {min} and {max}")),
                Err(_) => return bad("Not a number of type DOUBLE".into()),
            },
            ConfigKind::Boolean => {
                if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                    return bad("Expected value to be either true or false".into());
                }
            }
            ConfigKind::OneOf(allowed) => {
                if !allowed.contains(&v) {
                    return bad(format!("String must be one of: {}", allowed.join(", ")));
                }
            }
            ConfigKind::ListOf(allowed) => {
                let items: Vec<&str> = v.split(',').map(str::trim).collect();
                if items.iter().any(|i| !allowed.contains(i)) {
                    return bad(format!("Each item must be one of: {}", allowed.join(", ")));
                }
            }
            ConfigKind::ThrottledReplicas => {
                let pair = |p: &str| {
                    p.trim()
                        .split_once(':')
                        .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok())
                };
                if !v.is_empty() && v != "*" && !v.split(',').all(pair) {
                    return bad("Expected '*' or a list of partition:broker pairs".into());
                }
            }
        }
        Ok(())
    }
}

fn range<T: std::fmt::Display + PartialEq>(min: T, max: T, top: T) -> String {
    if max == top {
        format!("Value must be at least {min}")
    } else {
        format!("Value must be between {min} and {max}")
    }
}

/// The items of a list value (`a,b , c` -> `[a, b, c]`; `""` -> `[]`).
pub fn list_items(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_check_type_and_bounds() {
        let long = ConfigKind::Long { min: -1 };
        assert!(long.check("k", "86400000").is_ok());
        assert!(long.check("k", "-2").is_err());
        let int = ConfigKind::int_at_least(0);
        assert!(int.check("k", "99999999999").is_err());
        assert!(ConfigKind::Boolean.check("k", "TRUE").is_ok());
        let ratio = ConfigKind::Double { min: 0.0, max: 1.0 };
        assert!(ratio.check("k", "x").is_err());
        assert!(ratio.check("k", "NaN").is_err());
        let err = int.check("k", "x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid value x for configuration k: Not a number of type INT"
        );
        let err = ConfigKind::Int { min: 1, max: 17 }
            .check("k", "18")
            .unwrap_err();
        assert_eq!(err.reason, "Value must be between 1 and 17");
    }

    #[test]
    fn throttled_replicas() {
        let kind = ConfigKind::ThrottledReplicas;
        for ok in ["", "*", "0:1", "0:1, 1:2"] {
            assert!(kind.check("k", ok).is_ok(), "{ok:?}");
        }
        for bad in ["0-1", "x", "0:1,", "*,0:1"] {
            assert!(kind.check("k", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn types_and_lists() {
        assert_eq!(ConfigKind::ListOf(&["a"]).config_type().code(), 7);
        assert_eq!(ConfigKind::OneOf(&["a"]).config_type().code(), 2);
        assert_eq!(ConfigKind::Long { min: 0 }.config_type().code(), 5);
        assert!(ConfigKind::ThrottledReplicas.is_list());
        assert!(!ConfigKind::Boolean.is_list());
        assert_eq!(list_items("a, b,,c"), vec!["a", "b", "c"]);
        assert!(list_items("").is_empty());
    }
}
