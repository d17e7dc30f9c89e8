//! Waiting on conditions instead of sleeping: [`wait_for`] polls a check
//! until it holds, and fails the test after [`DEADLINE`].

use std::future::Future;
use std::time::Duration;

use anyhow::{anyhow, Result};

/// How long `wait_for` and friends wait before failing a test. Generous:
/// tests must pass on a loaded 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Polls `check` until it returns `Some`, or fails after [`DEADLINE`].
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(anyhow!("timed out after {DEADLINE:?} waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
