//! Which transactional batches and markers a cleaning pass may drop,
//! following Kafka's cleaner rules.
//!
//! In: the aborted transactions overlapping the cleaned range (from the
//! segments' `.txnindex`), then every batch of the range in offset order.
//! Out, per batch: data of an aborted transaction is dropped; an ABORT
//! marker may go once a pass saw no more data of its transaction (the data
//! went in an earlier pass), a COMMIT marker once a pass saw none of its
//! transaction's data; either only after its delete horizon has passed
//! (decided by the caller). A marker that stays keeps its `.txnindex` entry.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::batch::{BatchHeader, TxnMarker};
use crate::txn_index::AbortedTxn;

pub(crate) struct TxnTracker {
    /// Aborted transactions not yet reached, by first offset.
    pending: VecDeque<AbortedTxn>,
    /// Aborted transactions under way: whether this pass saw their data.
    aborted: HashMap<i64, (AbortedTxn, bool)>,
    /// Producers with a transaction under way that was not aborted.
    committed: HashSet<i64>,
}

impl TxnTracker {
    pub fn new(mut aborted: Vec<AbortedTxn>) -> TxnTracker {
        aborted.sort_by_key(|t| t.first_offset);
        TxnTracker {
            pending: aborted.into(),
            aborted: HashMap::new(),
            committed: HashSet::new(),
        }
    }

    fn reach(&mut self, offset: i64) {
        while self
            .pending
            .front()
            .is_some_and(|t| t.first_offset <= offset)
        {
            if let Some(t) = self.pending.pop_front() {
                self.aborted.insert(t.producer_id, (t, false));
            }
        }
    }

    /// A data batch: `true` if it belongs to an aborted transaction.
    pub fn on_data(&mut self, header: &BatchHeader) -> bool {
        self.reach(header.last_offset());
        if !header.is_transactional() {
            return false;
        }
        match self.aborted.get_mut(&header.producer_id) {
            Some((_, seen)) => {
                *seen = true;
                true
            }
            None => {
                self.committed.insert(header.producer_id);
                false
            }
        }
    }

    /// A control batch carrying `marker` (`None`: not a transaction
    /// marker): whether Kafka's rule lets it go (once its delete horizon
    /// has passed, which the caller checks).
    pub fn on_marker(&mut self, header: &BatchHeader, marker: Option<TxnMarker>) -> bool {
        self.reach(header.last_offset());
        let pid = header.producer_id;
        match marker {
            // Kept while a pass still finds (and drops) its data.
            Some(TxnMarker::Abort) => self.aborted.remove(&pid).is_none_or(|(_, seen)| !seen),
            // Kept while a pass still finds its data.
            Some(TxnMarker::Commit) => !self.committed.remove(&pid),
            None => false,
        }
    }
}
