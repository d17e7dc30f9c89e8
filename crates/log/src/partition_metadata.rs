//! The `partition.metadata` file, naming the topic id a partition directory
//! belongs to, and the safe removal of a partition directory.
//!
//! In: the broker writes the topic id when it creates a partition and
//! reads it when it finds directories at startup, so a topic deleted and
//! recreated under the same name is never confused with the old log.
//! Out: the id, or `None` for a directory without the file. The file uses
//! the checksummed container of [`crate::state_file`] (Kafka's own is text
//! without a checksum).

use std::fs;
use std::io;
use std::path::Path;

use uuid::Uuid;

use crate::error::{io_err, LogError};
use crate::state_file::{read_checksummed, write_checksummed};
use crate::util::sync_dir;

const FILE: &str = "partition.metadata";
const MAGIC: &[u8; 4] = b"KRPM";
const VERSION: u16 = 1;

/// Reads and writes `partition.metadata`.
pub struct PartitionMetadata;

impl PartitionMetadata {
    /// The topic id stored in `dir`, `None` if the file does not exist.
    pub fn read(dir: &Path) -> Result<Option<Uuid>, LogError> {
        let Some((version, payload)) = read_checksummed(dir, FILE, MAGIC)? else {
            return Ok(None);
        };
        let path = dir.join(FILE);
        if version != VERSION {
            return Err(LogError::corrupt(
                &path,
                4,
                format!("unknown format version {version}"),
            ));
        }
        let bytes: [u8; 16] = payload
            .as_slice()
            .try_into()
            .map_err(|_| LogError::corrupt(&path, 10, "a topic id is 16 bytes"))?;
        Ok(Some(Uuid::from_bytes(bytes)))
    }

    /// Stores `topic_id` in `dir` (created if missing), atomically.
    pub fn write(dir: &Path, topic_id: Uuid) -> Result<(), LogError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        write_checksummed(dir, FILE, MAGIC, VERSION, topic_id.as_bytes())
    }
}

/// Removes a partition directory: renames it to `<name>.<uuid>-delete`
/// first (one atomic step that takes it out of the broker's view, as Kafka
/// does), then removes the renamed tree. A missing directory is not an
/// error. If the removal fails, the `-delete` directory is left for the
/// broker's startup scan to remove.
pub fn delete_partition_dir(dir: &Path) -> Result<(), LogError> {
    let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
        return Err(io_err(dir)(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a partition directory",
        )));
    };
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let doomed = parent.join(format!("{name}.{}-delete", Uuid::new_v4().simple()));
    match fs::rename(dir, &doomed) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(dir)(e)),
    }
    sync_dir(parent).map_err(io_err(parent))?;
    fs::remove_dir_all(&doomed).map_err(io_err(&doomed))
}
