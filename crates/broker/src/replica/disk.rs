//! Where partition logs live on disk: `<log dir>/<topic>-<partition>`, as in
//! Kafka, each holding a `partition.metadata` file with its topic id.
//!
//! In: the broker's `log.dirs`. Out: the partition directories found at
//! start-up ([`scan`]) and the directory a new partition should use
//! ([`choose_dir`]: the log dir holding the fewest partitions, as Kafka
//! places them). Directories that are not partition logs — the metadata
//! log `__cluster_metadata-0`, half-deleted `*-delete` directories, files —
//! are skipped; a half-deleted directory is removed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kraft_log::PartitionMetadata;
use uuid::Uuid;

/// A partition directory found at start-up.
#[derive(Debug)]
pub struct FoundPartition {
    pub dir: PathBuf,
    pub topic: String,
    pub index: i32,
    pub topic_id: Uuid,
}

/// The directory name of `topic`'s partition `index`.
pub fn partition_dir_name(topic: &str, index: i32) -> String {
    format!("{topic}-{index}")
}

/// Splits `<topic>-<partition>` at its last dash.
fn parse_dir_name(name: &str) -> Option<(&str, i32)> {
    let (topic, index) = name.rsplit_once('-')?;
    let index: i32 = index.parse().ok()?;
    (!topic.is_empty() && index >= 0).then_some((topic, index))
}

/// Every partition directory in `log_dirs`. A directory whose
/// `partition.metadata` is missing or unreadable is reported with a warning
/// and left alone: it is not ours to delete.
pub fn scan(log_dirs: &[PathBuf]) -> Vec<FoundPartition> {
    let mut found = Vec::new();
    for log_dir in log_dirs {
        let entries = match std::fs::read_dir(log_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                tracing::error!(dir = %log_dir.display(), error = %e, "cannot list a log dir");
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.ends_with("-delete") {
                if let Err(e) = std::fs::remove_dir_all(&path) {
                    tracing::warn!(dir = %path.display(), error = %e, "cannot remove a deleted partition");
                }
                continue;
            }
            if name.starts_with("__cluster_metadata") {
                continue;
            }
            let Some((topic, index)) = parse_dir_name(name) else {
                continue;
            };
            match PartitionMetadata::read(&path) {
                Ok(Some(topic_id)) => found.push(FoundPartition {
                    dir: path.clone(),
                    topic: topic.to_string(),
                    index,
                    topic_id,
                }),
                Ok(None) => tracing::warn!(
                    dir = %path.display(),
                    "skipping a partition directory without partition.metadata"
                ),
                Err(e) => tracing::error!(
                    dir = %path.display(),
                    error = %e,
                    "skipping a partition directory whose partition.metadata is unreadable"
                ),
            }
        }
    }
    found
}

/// The log dir a new partition goes to: the one with the fewest partitions
/// (`counts` by dir), the first listed on a tie.
pub fn choose_dir<'a>(log_dirs: &'a [PathBuf], counts: &HashMap<PathBuf, usize>) -> &'a Path {
    log_dirs
        .iter()
        .min_by_key(|dir| counts.get(*dir).copied().unwrap_or(0))
        .map(PathBuf::as_path)
        .unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_names() {
        assert_eq!(parse_dir_name("orders-3"), Some(("orders", 3)));
        assert_eq!(parse_dir_name("my-topic-12"), Some(("my-topic", 12)));
        assert_eq!(parse_dir_name("orders"), None);
        assert_eq!(parse_dir_name("-1"), None);
        assert_eq!(parse_dir_name("x--1"), Some(("x-", 1)));
        assert_eq!(parse_dir_name("orders-x"), None);
        assert_eq!(partition_dir_name("a.b", 0), "a.b-0");
    }

    #[test]
    fn placement_prefers_the_emptiest_dir() {
        let dirs = vec![PathBuf::from("/a"), PathBuf::from("/b")];
        let mut counts = HashMap::new();
        assert_eq!(choose_dir(&dirs, &counts), Path::new("/a"));
        counts.insert(PathBuf::from("/a"), 2);
        counts.insert(PathBuf::from("/b"), 1);
        assert_eq!(choose_dir(&dirs, &counts), Path::new("/b"));
    }
}
