//! Keys that would silently weaken security if this build ignored them:
//! TLS, SASL, per-listener security protocols and the authorizer. Until
//! Kraft implements them, a config that sets them is refused, so a node
//! never serves plaintext to clients that were promised TLS or SASL, nor
//! lets every client do everything under an authorizer it never loaded.
//!
//! In: the raw key/value map. Out: `Ok(())`, or a
//! [`ConfigError::Unsupported`] naming the first such key. Other unknown
//! keys stay warnings ([`super::KraftConfig::unknown_keys`]).

use std::collections::BTreeMap;

use super::ConfigError;

/// Security protocols Kraft does not serve yet (Kafka's names; a listener
/// named after one of them speaks it, in Kafka, with no protocol map).
const UNSUPPORTED_PROTOCOLS: &[&str] = &["SSL", "SASL_PLAINTEXT", "SASL_SSL"];

/// Key prefixes that configure TLS or SASL.
const UNSUPPORTED_PREFIXES: &[&str] = &["ssl.", "sasl.", "listener.name."];

/// Keys that are refused whatever their value.
const UNSUPPORTED_KEYS: &[&str] = &[
    "listener.security.protocol.map",
    "authorizer.class.name",
    "principal.builder.class",
    "super.users",
];

/// The first key in `props` that asks for security this build does not
/// have, as an error naming it.
pub(super) fn check_unsupported(props: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    for (key, value) in props {
        let refused = UNSUPPORTED_KEYS.contains(&key.as_str())
            || UNSUPPORTED_PREFIXES.iter().any(|p| key.starts_with(p));
        if refused {
            return Err(unsupported(key, value, "TLS, SASL and authorization"));
        }
        match key.as_str() {
            "listeners" | "advertised.listeners" => {
                if let Some(protocol) = value
                    .split(',')
                    .filter_map(|l| l.trim().split_once("://"))
                    .map(|(name, _)| name.trim())
                    .find(|name| {
                        UNSUPPORTED_PROTOCOLS.contains(&name.to_ascii_uppercase().as_str())
                    })
                {
                    return Err(unsupported(
                        key,
                        value,
                        &format!("the {protocol} security protocol"),
                    ));
                }
            }
            "security.inter.broker.protocol" if !value.trim().eq_ignore_ascii_case("PLAINTEXT") => {
                return Err(unsupported(
                    key,
                    value,
                    "security protocols other than PLAINTEXT",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn unsupported(key: &str, value: &str, what: &str) -> ConfigError {
    ConfigError::Unsupported {
        key: key.to_string(),
        value: value.to_string(),
        reason: format!(
            "{what} are not supported yet; remove the key (Kraft serves PLAINTEXT only)"
        ),
    }
}
