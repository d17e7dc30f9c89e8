//! A crash part way through deleting segments: installing a leader's
//! snapshot (which deletes the whole log) and replacing a conflicting
//! suffix (which deletes the segments after the cut). For every number of
//! deletions done before the crash, the directory must reopen.

use raft::Storage;

use super::snapshots::leader_snapshot;
use super::*;
use crate::storage::segment_log::crash;

/// Log 1..=30 of term 1 over several small segments, commit 10.
fn log_of_30_entries(dir: &Path) -> RaftStorage {
    let mut s = open_small(dir, 150);
    s.append(&entries(1..=30, 1)).unwrap();
    s.sync().unwrap();
    s.set_hard_state(&hard_state(1, 1, 10)).unwrap();
    s
}

#[test]
fn a_crash_inside_a_leader_snapshot_install_reopens_on_the_snapshot() {
    // At 15 the snapshot's term conflicts with the log; at 50 it is past its end.
    for (index, term) in [(15, 2), (50, 2)] {
        let segments = {
            let dir = tempfile::tempdir().unwrap();
            drop(log_of_30_entries(dir.path()));
            segment_files(dir.path()).len()
        };
        assert!(segments >= 4, "{segments} segments");
        for deleted in 0..=segments {
            let at = format!("snapshot at {index}, crash after {deleted} deletions");
            let dir = tempfile::tempdir().unwrap();
            let mut s = log_of_30_entries(dir.path());
            crash::after_deletions(Some(deleted));
            let installed = s.apply_snapshot(&leader_snapshot(index, term, b"leader state"));
            crash::after_deletions(None);
            assert_eq!(installed.is_ok(), deleted == segments, "{at}");
            drop(s);

            let mut s = RaftStorage::open(dir.path(), &[1, 2, 3], StorageOptions::default())
                .unwrap_or_else(|e| panic!("{at}: {e}"));
            assert_eq!(
                (s.snapshot_index(), s.snapshot_term()),
                (index, term),
                "{at}"
            );
            assert_eq!(
                (s.first_index().unwrap(), s.last_index().unwrap()),
                (index + 1, index),
                "{at}: no stale entry"
            );
            assert_eq!(s.hard_state(), hard_state(term, 0, index), "{at}");
            assert!(segment_files(dir.path()).is_empty(), "{at}");
            s.append(&entries(index + 1..=index + 2, term)).unwrap();
            s.sync().unwrap();
            drop(s);
            assert_eq!(
                log_of(&open(dir.path())),
                pairs(index + 1..=index + 2, term),
                "{at}"
            );
        }
    }
}

#[test]
fn a_crash_while_cutting_a_conflicting_suffix_leaves_a_prefix_of_the_old_log() {
    let segments_after_cut = {
        let dir = tempfile::tempdir().unwrap();
        drop(log_of_30_entries(dir.path()));
        let files = segment_files(dir.path());
        let base =
            |p: &PathBuf| -> u64 { p.file_stem().unwrap().to_str().unwrap().parse().unwrap() };
        files.iter().filter(|p| base(p) > 8).count()
    };
    assert!(segments_after_cut >= 3, "{segments_after_cut} segments");
    for deleted in 0..segments_after_cut {
        let at = format!("crash after {deleted} deletions");
        let dir = tempfile::tempdir().unwrap();
        let mut s = log_of_30_entries(dir.path());
        crash::after_deletions(Some(deleted));
        assert!(s.append(&entries(8..=12, 2)).is_err(), "{at}");
        crash::after_deletions(None);
        drop(s);

        let mut s = RaftStorage::open(
            dir.path(),
            &[1, 2, 3],
            StorageOptions { segment_bytes: 150 },
        )
        .unwrap_or_else(|e| panic!("{at}: {e}"));
        let log = log_of(&s);
        assert!(log.len() >= 7, "{at}: {log:?}");
        assert_eq!(log, pairs(1..=log.len() as u64, 1), "{at}");
        s.append(&entries(8..=12, 2)).unwrap();
        s.sync().unwrap();
        drop(s);
        let mut expected = pairs(1..=7, 1);
        expected.extend(pairs(8..=12, 2));
        assert_eq!(log_of(&open_small(dir.path(), 150)), expected, "{at}");
    }
}
