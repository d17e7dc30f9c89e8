//! Helpers shared by the `kraftd` and `kraftctl` binaries.

#![forbid(unsafe_code)]

pub mod kafka_admin;

/// An error and its causes on one line, for a CLI's stderr. Our error types
/// often quote their cause in their own message; a cause already contained
/// in the line so far is not repeated.
pub fn error_report(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {source}")]
    struct Outer {
        source: std::io::Error,
    }

    #[test]
    fn causes_are_not_repeated() {
        let io = std::io::Error::other("disk on fire");
        let error = anyhow::Error::new(Outer { source: io }).context("starting node 1");
        assert_eq!(error_report(&error), "starting node 1: outer: disk on fire");
    }
}
