//! The `server.properties` syntax (Java properties): lines, comments,
//! continuations, and `--override key=value` pairs.
//!
//! In: the file's text, then the overrides. Out: the raw key/value map
//! (overrides win), or a [`ConfigError`] naming the bad line. Nothing here
//! knows what a key means; [`super::KraftConfig::from_properties`] does.

use std::collections::BTreeMap;

use super::ConfigError;

/// Parses Java-properties text: `key=value` or `key: value` lines, `#` and
/// `!` comments, and `\` line continuations.
pub fn parse_properties(text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    let mut start_line = 0;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if logical.is_empty() {
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            start_line = n + 1;
        }
        if let Some(body) = line.strip_suffix('\\') {
            logical.push_str(body);
            continue;
        }
        logical.push_str(line);
        let entry = std::mem::take(&mut logical);
        let Some(split) = entry.find(['=', ':']) else {
            return Err(ConfigError::Syntax {
                line: start_line,
                text: entry,
            });
        };
        let key = entry[..split].trim().to_string();
        let value = entry[split + 1..].trim().to_string();
        out.insert(key, value);
    }
    Ok(out)
}

/// Applies `key=value` overrides on top of `props`.
pub fn apply_overrides(
    props: &mut BTreeMap<String, String>,
    overrides: &[String],
) -> Result<(), ConfigError> {
    for item in overrides {
        let Some((key, value)) = item.split_once('=') else {
            return Err(ConfigError::Override(item.clone()));
        };
        props.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_syntax_comments_colons_and_continuations() {
        let p = parse_properties("# c\n! c\n a = 1 \nb: 2\nc=x,\\\n  y\n").unwrap();
        assert_eq!(p["a"], "1");
        assert_eq!(p["b"], "2");
        assert_eq!(p["c"], "x,y");
        assert!(matches!(
            parse_properties("novalue\n"),
            Err(ConfigError::Syntax { line: 1, .. })
        ));
    }

    #[test]
    fn overrides_win_and_need_key_value() {
        let mut p = parse_properties("a=1\n").unwrap();
        apply_overrides(&mut p, &["a = 2".into(), "b=3".into()]).unwrap();
        assert_eq!((p["a"].as_str(), p["b"].as_str()), ("2", "3"));
        assert_eq!(
            apply_overrides(&mut p, &["novalue".into()]),
            Err(ConfigError::Override("novalue".into()))
        );
    }
}
