//! MetadataLoader: keeps a broker's copy of the cluster metadata by tailing
//! the committed `__cluster_metadata` log from the controllers.
//!
//! In: `FetchMetadata` pages (long polls) from the active controller, starting at
//! the offset after the broker's image; when that offset is below the
//! controller's log start, the controller's snapshot first (`FetchSnapshot`,
//! in chunks). At start-up, the broker's own latest local snapshot.
//! Out: each batch of records is replayed into one [`MetadataDelta`], applied
//! to a new immutable image, and handed with the delta to every
//! [`MetadataPublisher`] (the MetadataCache is one). A snapshot replaces the
//! image whole; its delta is the difference from the image it replaces
//! ([`MetadataDelta::between`]), so what the snapshot no longer holds (a
//! deleted topic, a replica moved away, an unregistered broker, a config)
//! reaches publishers as removed, as in Kafka's `MetadataLoader`. Every
//! `metadata.log.max.record.bytes.between.snapshots` bytes it writes a local
//! snapshot, so a restart does not replay the log from zero.
//!
//! [`MetadataLag`] says how far behind the quorum the broker is.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kraft_metadata::{snapshot, MetadataDelta, MetadataImage};
use kraft_proto::controller::controller_request::Body;
use kraft_proto::controller::controller_response::Body as Resp;
use kraft_proto::controller::{FetchMetadataRequest, FetchMetadataResponse, FetchSnapshotRequest};
use kraft_proto::metadata::{RecordBatch, SnapshotHeader};
use kraft_rpc::{ClientError, QuorumClient};
use prost::Message as _;
use tokio::sync::watch;

/// Something that acts on each new metadata image: the MetadataCache, the
/// replica manager and the group coordinator.
pub trait MetadataPublisher: Send {
    /// `delta` holds what changed since the previous image.
    fn publish(&mut self, delta: &MetadataDelta, image: &Arc<MetadataImage>);
}

/// Publishes each image on a `watch` channel: the MetadataCache's source.
pub struct WatchPublisher(pub watch::Sender<Arc<MetadataImage>>);

impl MetadataPublisher for WatchPublisher {
    fn publish(&mut self, _delta: &MetadataDelta, image: &Arc<MetadataImage>) {
        self.0.send_replace(image.clone());
    }
}

/// How far this broker's metadata is behind the quorum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetadataLag {
    /// The controllers' high watermark minus this broker's offset.
    pub offsets: u64,
    /// How long since this broker last had everything committed; 0 when it
    /// has.
    pub millis: u64,
}

#[derive(Clone, Debug)]
pub struct LoaderConfig {
    pub node_id: i32,
    pub cluster_id: String,
    /// CONTROLLER addresses of the voters.
    pub controllers: Vec<String>,
    /// Where local snapshots go (`<metadata.log.dir>/__cluster_metadata-0`).
    pub snapshot_dir: PathBuf,
    pub snapshot_max_bytes: u64,
    pub snapshot_max_interval: Duration,
}

const FETCH_MAX_BYTES: u32 = 4 * 1024 * 1024;
const FETCH_MAX_WAIT_MS: u32 = 500;
const SNAPSHOT_CHUNK: u32 = 4 * 1024 * 1024;
const RETRY: Duration = Duration::from_millis(50);
/// A long poll plus room for a leader change.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    #[error("local metadata snapshot in {dir}: {reason}")]
    LocalSnapshot { dir: PathBuf, reason: String },
}

pub struct MetadataLoader {
    config: LoaderConfig,
    image: Arc<MetadataImage>,
    /// Term of the entry at `image.offset()`, for local snapshot names.
    term: u64,
    publishers: Vec<Box<dyn MetadataPublisher>>,
    lag: watch::Sender<MetadataLag>,
    caught_up_at: Instant,
    bytes_since_snapshot: u64,
    last_snapshot: Instant,
}

impl MetadataLoader {
    /// Loads the newest local snapshot, if any, and publishes it.
    pub fn new(
        config: LoaderConfig,
        mut publishers: Vec<Box<dyn MetadataPublisher>>,
    ) -> Result<(MetadataLoader, watch::Receiver<MetadataLag>), LoaderError> {
        let local =
            kraft_checkpoint::read_latest_checkpoint(&config.snapshot_dir).map_err(|e| {
                LoaderError::LocalSnapshot {
                    dir: config.snapshot_dir.clone(),
                    reason: e.to_string(),
                }
            })?;
        let (image, term) = match local {
            Some((offset, term, bytes)) => {
                let (_, image) =
                    snapshot::decode(&bytes).map_err(|e| LoaderError::LocalSnapshot {
                        dir: config.snapshot_dir.clone(),
                        reason: format!("snapshot at offset {offset}: {e}"),
                    })?;
                tracing::info!(offset, "loaded the local metadata snapshot");
                (Arc::new(image), term)
            }
            None => (Arc::new(MetadataImage::empty()), 0),
        };
        if image.offset() > 0 {
            let delta = MetadataDelta::between(&MetadataImage::empty(), &image);
            for publisher in &mut publishers {
                publisher.publish(&delta, &image);
            }
        }
        let (lag, lag_rx) = watch::channel(MetadataLag::default());
        let loader = MetadataLoader {
            config,
            image,
            term,
            publishers,
            lag,
            caught_up_at: Instant::now(),
            bytes_since_snapshot: 0,
            last_snapshot: Instant::now(),
        };
        Ok((loader, lag_rx))
    }

    /// Tails the log until the task is dropped.
    pub async fn run(mut self) {
        let mut client =
            QuorumClient::new(self.config.controllers.clone(), &self.config.cluster_id);
        loop {
            if let Err(e) = self.fetch_once(&mut client).await {
                tracing::debug!(error = %e, "metadata fetch failed; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    }

    /// One long poll at the active controller: a page of batches, or a
    /// snapshot to load first.
    async fn fetch_once(&mut self, client: &mut QuorumClient) -> Result<(), ClientError> {
        let request = FetchMetadataRequest {
            node_id: self.config.node_id,
            offset: self.image.offset() + 1,
            max_bytes: FETCH_MAX_BYTES,
            max_wait_ms: FETCH_MAX_WAIT_MS,
        };
        let response = client
            .call_leader(Body::FetchMetadata(request), CALL_TIMEOUT)
            .await?;
        let Some(Resp::FetchMetadata(page)) = response.body else {
            return Ok(());
        };
        if page.snapshot_required {
            if let Some(bytes) = download_snapshot(client, page.snapshot_offset).await? {
                self.load_snapshot(page.snapshot_offset, &bytes);
            }
        } else {
            self.apply_page(&page);
        }
        self.update_lag(page.high_watermark);
        Ok(())
    }

    fn load_snapshot(&mut self, offset: u64, bytes: &Bytes) {
        match snapshot::decode(bytes) {
            Ok((header, image)) => {
                tracing::info!(offset, "loaded the controllers' metadata snapshot");
                self.term = header.term;
                // Controllers compact their log up to each snapshot, so a
                // broker that was behind lands here: publish what differs
                // from the image it had, removals included.
                let delta = MetadataDelta::between(&self.image, &image);
                self.publish(delta, Arc::new(image));
                // The snapshot is ours now too.
                self.write_local_snapshot();
            }
            Err(e) => {
                tracing::error!(offset, error = %e, "the controllers' snapshot does not decode")
            }
        }
    }

    fn apply_page(&mut self, page: &FetchMetadataResponse) {
        if page.batches.is_empty() {
            return;
        }
        let mut delta = MetadataDelta::new((*self.image).clone());
        for batch in &page.batches {
            if batch.offset <= delta.offset() {
                continue;
            }
            if !batch.records.is_empty() {
                let replayed = RecordBatch::decode(batch.records.as_ref())
                    .map_err(|e| e.to_string())
                    .and_then(|b| {
                        delta
                            .replay_batch(batch.offset, &b)
                            .map_err(|e| e.to_string())
                    });
                if let Err(e) = replayed {
                    // As the controllers do: report the fault and keep going.
                    tracing::error!(offset = batch.offset, error = %e, "metadata batch failed to replay");
                }
                self.bytes_since_snapshot += batch.records.len() as u64;
            }
            delta.set_offset(batch.offset);
            self.term = batch.term;
        }
        let image = Arc::new(delta.clone().apply());
        self.publish(delta, image);
        if self.bytes_since_snapshot >= self.config.snapshot_max_bytes
            || (self.bytes_since_snapshot > 0
                && self.last_snapshot.elapsed() >= self.config.snapshot_max_interval)
        {
            self.write_local_snapshot();
        }
    }

    fn publish(&mut self, delta: MetadataDelta, image: Arc<MetadataImage>) {
        for publisher in &mut self.publishers {
            publisher.publish(&delta, &image);
        }
        self.image = image;
    }

    fn update_lag(&mut self, high_watermark: u64) {
        let offsets = high_watermark.saturating_sub(self.image.offset());
        if offsets == 0 {
            self.caught_up_at = Instant::now();
        }
        let millis = self.caught_up_at.elapsed().as_millis() as u64;
        self.lag.send_replace(MetadataLag { offsets, millis });
    }

    /// Writes the current image as a local snapshot on a blocking thread.
    fn write_local_snapshot(&mut self) {
        self.bytes_since_snapshot = 0;
        self.last_snapshot = Instant::now();
        let image = self.image.clone();
        let term = self.term;
        let dir = self.config.snapshot_dir.clone();
        tokio::task::spawn_blocking(move || {
            let offset = image.offset();
            let header = SnapshotHeader {
                offset,
                term,
                timestamp_ms: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0),
                voters: Vec::new(),
                learners: Vec::new(),
            };
            let bytes = snapshot::encode(&header, &image);
            let written = std::fs::create_dir_all(&dir)
                .map_err(|e| e.to_string())
                .and_then(|_| {
                    kraft_checkpoint::write_checkpoint(&dir, offset, term, &bytes)
                        .map_err(|e| e.to_string())
                })
                .and_then(|_| {
                    kraft_checkpoint::retire_old(&dir, (offset, term)).map_err(|e| e.to_string())
                });
            match written {
                Ok(_) => tracing::debug!(offset, "wrote a local metadata snapshot"),
                Err(e) => {
                    tracing::warn!(offset, error = %e, "could not write a local metadata snapshot")
                }
            }
        });
    }
}

#[cfg(test)]
mod tests;

/// Downloads snapshot `offset` from the active controller; None if it has
/// been replaced by a newer one meanwhile (the next fetch names the new one).
async fn download_snapshot(
    client: &mut QuorumClient,
    offset: u64,
) -> Result<Option<Bytes>, ClientError> {
    let mut bytes = Vec::new();
    loop {
        let request = FetchSnapshotRequest {
            snapshot_offset: offset,
            position: bytes.len() as u64,
            max_bytes: SNAPSHOT_CHUNK,
        };
        match client
            .call_leader(Body::FetchSnapshot(request), CALL_TIMEOUT)
            .await
        {
            Ok(response) => {
                let Some(Resp::FetchSnapshot(chunk)) = response.body else {
                    return Ok(None);
                };
                if chunk.chunk.is_empty() && (bytes.len() as u64) < chunk.total_size {
                    return Ok(None);
                }
                bytes.extend_from_slice(&chunk.chunk);
                if bytes.len() as u64 >= chunk.total_size {
                    return Ok(Some(Bytes::from(bytes)));
                }
            }
            Err(ClientError::Server(e)) if e.is(ResponseError::SnapshotNotFound) => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        }
    }
}
