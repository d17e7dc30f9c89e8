//! `meta.properties`: the identity stamped on every data directory by
//! `kraftd format`, checked at every start.
//!
//! A node refuses to start on a directory that is unformatted, or formatted
//! for another cluster or node, with an error that says how to fix it.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::config::parse_properties;

pub const FILE_NAME: &str = "meta.properties";
const VERSION: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum MetaPropertiesError {
    #[error(
        "{dir} is not formatted (no {FILE_NAME}). Format it first: \
         kraftd format --config <server.properties> --cluster-id $(kraftd random-uuid) \
         (use the same cluster id on every node of the cluster)"
    )]
    Unformatted { dir: PathBuf },
    #[error(
        "{dir} belongs to cluster '{found}' but this node is starting in cluster '{expected}'. \
         Point log.dirs/metadata.log.dir at this cluster's directories, or reformat this one \
         (deleting its data) with kraftd format"
    )]
    ClusterMismatch {
        dir: PathBuf,
        found: String,
        expected: String,
    },
    #[error(
        "{dir} was formatted for node.id={found} but the config says node.id={expected}. \
         Fix node.id, or use this node's own directories"
    )]
    NodeMismatch {
        dir: PathBuf,
        found: i32,
        expected: i32,
    },
    #[error(
        "{path} is damaged: {reason}. Restore it, or reformat the directory with kraftd format"
    )]
    Damaged { path: PathBuf, reason: String },
    #[error("{dir} is already formatted for cluster '{cluster_id}'; pass --ignore-formatted to leave it as it is")]
    AlreadyFormatted { dir: PathBuf, cluster_id: String },
    #[error("'{0}' is not a cluster id: expected 22 characters of base64url encoding 16 bytes (see kraftd random-uuid)")]
    BadClusterId(String),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaProperties {
    pub cluster_id: String,
    pub node_id: i32,
}

/// A new random cluster id, in Kafka's format (base64url of 16 bytes).
/// A new cluster id: 16 random bytes in URL-safe base64. Like Kafka's
/// `Uuid.randomUuid`, never one starting with `-`, which a command line
/// would take for an option (`kraftd format --cluster-id -Ab...`).
pub fn random_cluster_id() -> String {
    loop {
        let id = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
        if !id.starts_with('-') {
            return id;
        }
    }
}

pub fn validate_cluster_id(id: &str) -> Result<(), MetaPropertiesError> {
    match URL_SAFE_NO_PAD.decode(id) {
        Ok(bytes) if bytes.len() == 16 => Ok(()),
        _ => Err(MetaPropertiesError::BadClusterId(id.to_string())),
    }
}

/// Reads `dir/meta.properties`; `Ok(None)` if there is none.
pub fn read(dir: &Path) -> Result<Option<MetaProperties>, MetaPropertiesError> {
    let path = dir.join(FILE_NAME);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(MetaPropertiesError::Io { path, source: e }),
    };
    let damaged = |reason: String| MetaPropertiesError::Damaged {
        path: path.clone(),
        reason,
    };
    let props = parse_properties(&text).map_err(|e| damaged(e.to_string()))?;
    match props.get("version").map(String::as_str) {
        Some(VERSION) => {}
        other => return Err(damaged(format!("unsupported version {other:?}"))),
    }
    let cluster_id = props
        .get("cluster.id")
        .cloned()
        .ok_or_else(|| damaged("no cluster.id".into()))?;
    let node_id = props
        .get("node.id")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| damaged("no valid node.id".into()))?;
    Ok(Some(MetaProperties {
        cluster_id,
        node_id,
    }))
}

/// Writes `meta.properties` into `dir` (created if missing), atomically.
pub fn write(dir: &Path, meta: &MetaProperties) -> Result<(), MetaPropertiesError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MetaPropertiesError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let mut text = String::from("#\n# Written by kraftd format. Do not edit.\n");
    let _ = writeln!(text, "version={VERSION}");
    let _ = writeln!(text, "cluster.id={}", meta.cluster_id);
    let _ = writeln!(text, "node.id={}", meta.node_id);
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let path = dir.join(FILE_NAME);
    let mut file = fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(text.as_bytes()).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, &path).map_err(io(&path))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}

/// `kraftd format`: stamps every directory. A directory that is already
/// formatted is an error unless `ignore_formatted`, in which case it is left
/// as it is.
pub fn format(
    dirs: &[PathBuf],
    meta: &MetaProperties,
    ignore_formatted: bool,
) -> Result<Vec<PathBuf>, MetaPropertiesError> {
    validate_cluster_id(&meta.cluster_id)?;
    let mut written = Vec::new();
    for dir in dirs {
        if let Some(existing) = read(dir)? {
            if ignore_formatted {
                continue;
            }
            return Err(MetaPropertiesError::AlreadyFormatted {
                dir: dir.clone(),
                cluster_id: existing.cluster_id,
            });
        }
        write(dir, meta)?;
        written.push(dir.clone());
    }
    Ok(written)
}

/// Checks every directory before a start: all formatted, for this node, and
/// for one cluster. Returns the cluster id.
pub fn check(dirs: &[PathBuf], node_id: i32) -> Result<String, MetaPropertiesError> {
    let mut cluster: Option<String> = None;
    for dir in dirs {
        let meta =
            read(dir)?.ok_or_else(|| MetaPropertiesError::Unformatted { dir: dir.clone() })?;
        if meta.node_id != node_id {
            return Err(MetaPropertiesError::NodeMismatch {
                dir: dir.clone(),
                found: meta.node_id,
                expected: node_id,
            });
        }
        match &cluster {
            Some(expected) if *expected != meta.cluster_id => {
                return Err(MetaPropertiesError::ClusterMismatch {
                    dir: dir.clone(),
                    found: meta.cluster_id,
                    expected: expected.clone(),
                })
            }
            _ => cluster = Some(meta.cluster_id),
        }
    }
    cluster.ok_or_else(|| MetaPropertiesError::Unformatted {
        dir: dirs.first().cloned().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_never_start_with_a_dash() {
        // One id in 64 would, before the check; 2000 draws miss that with
        // probability (63/64)^2000, about 2e-14.
        for _ in 0..2000 {
            let id = random_cluster_id();
            assert!(!id.starts_with('-'), "{id}");
            validate_cluster_id(&id).expect("valid");
        }
    }

    #[test]
    fn format_then_check_and_refusals() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        let b = tmp.path().join("b");
        let dirs = vec![a.clone(), b.clone()];
        let err = check(&dirs, 1).unwrap_err();
        assert!(matches!(err, MetaPropertiesError::Unformatted { .. }));
        assert!(err.to_string().contains("kraftd format"), "{err}");

        let id = random_cluster_id();
        format(
            &dirs,
            &MetaProperties {
                cluster_id: id.clone(),
                node_id: 1,
            },
            false,
        )
        .unwrap();
        assert_eq!(check(&dirs, 1).unwrap(), id);
        assert!(matches!(
            check(&dirs, 2),
            Err(MetaPropertiesError::NodeMismatch {
                found: 1,
                expected: 2,
                ..
            })
        ));

        // Formatting again is refused unless asked to leave it.
        let other = random_cluster_id();
        let again = MetaProperties {
            cluster_id: other.clone(),
            node_id: 1,
        };
        assert!(matches!(
            format(&dirs, &again, false),
            Err(MetaPropertiesError::AlreadyFormatted { .. })
        ));
        assert!(format(&dirs, &again, true).unwrap().is_empty());

        // Two directories of different clusters.
        write(&b, &again).unwrap();
        let err = check(&dirs, 1).unwrap_err();
        assert!(
            matches!(err, MetaPropertiesError::ClusterMismatch { .. }),
            "{err}"
        );
    }

    #[test]
    fn cluster_ids_are_validated() {
        assert!(validate_cluster_id(&random_cluster_id()).is_ok());
        assert!(validate_cluster_id("not-a-cluster-id").is_err());
        assert!(validate_cluster_id("").is_err());
    }
}
