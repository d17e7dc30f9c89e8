//! [`DiskFault`]: fault injection for one partition log's fsyncs, so tests
//! can reproduce a failing disk without one.
//!
//! In: a test arms it ([`DiskFault::fail_syncs`]) on the log it wants to
//! break; from then on every fsync of that log fails with an I/O error
//! before touching a file. Out: the error, and a count of the fsyncs that
//! failed ([`DiskFault::failed_syncs`]), which shows whether anyone tried
//! again. Each log owns its own: there is no global switch, so tests
//! running in parallel do not disturb each other. Unarmed (always, outside
//! tests) it costs one atomic load per flush.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::LogError;

/// Makes a log's fsyncs fail, as a dying disk would.
#[derive(Debug, Default)]
pub struct DiskFault {
    failing: AtomicBool,
    failed: AtomicU64,
}

impl DiskFault {
    /// Every fsync of this log fails from now on.
    pub fn fail_syncs(&self) {
        self.failing.store(true, Ordering::Release);
    }

    /// How many fsyncs failed because of this fault.
    pub fn failed_syncs(&self) -> u64 {
        self.failed.load(Ordering::Acquire)
    }

    /// The injected failure, if armed; called before each flush's fsyncs.
    pub(crate) fn check(&self, dir: &Path) -> Result<(), LogError> {
        if !self.failing.load(Ordering::Acquire) {
            return Ok(());
        }
        self.failed.fetch_add(1, Ordering::AcqRel);
        Err(LogError::Io {
            file: dir.to_path_buf(),
            source: io::Error::other("injected fsync failure"),
        })
    }
}
