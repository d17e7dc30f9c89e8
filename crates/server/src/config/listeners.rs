//! The address-shaped settings of a node: `process.roles`,
//! `controller.quorum.voters` and `listeners` / `advertised.listeners`.
//!
//! In: one raw value each (from the key/value map). Out: [`Roles`], the
//! voter map, [`Listener`]s, or a [`ConfigError`] naming the key and the
//! entry at fault.

use std::collections::BTreeMap;

use super::settings::invalid;
use super::ConfigError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    pub broker: bool,
    pub controller: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl Listener {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

pub(super) fn parse_roles(value: &str) -> Result<Roles, ConfigError> {
    let mut roles = Roles {
        broker: false,
        controller: false,
    };
    for role in value.split(',').map(str::trim) {
        match role {
            "broker" => roles.broker = true,
            "controller" => roles.controller = true,
            _ => {
                return Err(invalid(
                    "process.roles",
                    value,
                    "expected broker, controller or broker,controller",
                ))
            }
        }
    }
    Ok(roles)
}

/// `1@host:port,2@host:port`.
pub fn parse_voters(value: &str) -> Result<BTreeMap<i32, String>, ConfigError> {
    let bad = |reason: &str| invalid("controller.quorum.voters", value, reason);
    let mut voters = BTreeMap::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addr) = item
            .split_once('@')
            .ok_or_else(|| bad("expected id@host:port entries"))?;
        let id: i32 = id
            .trim()
            .parse()
            .map_err(|_| bad(&format!("'{id}' is not a node id")))?;
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| bad(&format!("'{addr}' has no port")))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(bad(&format!("'{addr}' is not host:port")));
        }
        if voters.insert(id, addr.to_string()).is_some() {
            return Err(bad(&format!("node {id} is listed twice")));
        }
    }
    if voters.is_empty() {
        return Err(bad("no voters"));
    }
    Ok(voters)
}

/// `controller.quorum.voters` text for a voter map: `1@host:port,2@host:port`.
pub fn format_voters(voters: &BTreeMap<i32, String>) -> String {
    voters
        .iter()
        .map(|(id, a)| format!("{id}@{a}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `PLAINTEXT://host:port,CONTROLLER://host:port`.
pub(super) fn parse_listeners(
    key: &'static str,
    value: &str,
) -> Result<Vec<Listener>, ConfigError> {
    let bad = |reason: String| invalid(key, value, &reason);
    let mut listeners: Vec<Listener> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, addr) = item
            .split_once("://")
            .ok_or_else(|| bad(format!("'{item}' is not NAME://host:port")))?;
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| bad(format!("'{item}' has no port")))?;
        let port: u16 = port
            .parse()
            .map_err(|_| bad(format!("'{port}' is not a port")))?;
        if listeners.iter().any(|l| l.name == name) {
            return Err(bad(format!("listener {name} is defined twice")));
        }
        listeners.push(Listener {
            name: name.to_string(),
            host: if host.is_empty() {
                "0.0.0.0".to_string()
            } else {
                host.to_string()
            },
            port,
        });
    }
    Ok(listeners)
}
