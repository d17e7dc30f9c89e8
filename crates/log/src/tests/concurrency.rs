//! Concurrent appends and reads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use kafka_protocol::records::Compression;

use super::{batch_with, decode, open, read_all, small_config};
use crate::batch;
use crate::ReadBound;

#[test]
fn concurrent_appends_stay_ordered_and_readers_see_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path(), small_config(8 * 1024)));
    let done = Arc::new(AtomicBool::new(false));
    const WRITERS: usize = 4;
    const BATCHES: usize = 150;

    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (log, done) = (log.clone(), done.clone());
            thread::spawn(move || {
                let mut reads = 0;
                while !done.load(Ordering::Acquire) {
                    let mut offset = 0;
                    loop {
                        let result = log.read(offset, 4096, ReadBound::LogEnd, true).unwrap();
                        if result.records.is_empty() {
                            break;
                        }
                        let mut batches = batch::batches(&result.records);
                        for item in &mut batches {
                            let (header, range) = item.unwrap();
                            batch::validate_stored(&result.records[range]).unwrap();
                            assert!(header.base_offset <= offset.max(header.base_offset));
                            assert!(header.next_offset() <= result.log_end_offset);
                            offset = header.next_offset();
                        }
                        assert!(batches.partial_tail().is_none());
                    }
                    reads += 1;
                }
                reads
            })
        })
        .collect();

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let log = log.clone();
            thread::spawn(move || {
                let mut last = -1;
                for i in 0..BATCHES {
                    let codec = if i % 2 == 0 {
                        Compression::None
                    } else {
                        Compression::Lz4
                    };
                    let bytes =
                        batch_with(&[i as i64, i as i64 + 1], &format!("w{w}-{i}"), 50, codec);
                    let info = log.append_as_leader(bytes, 0, 0).unwrap();
                    assert!(info.first_offset > last, "a writer's appends are ordered");
                    assert_eq!(info.last_offset, info.first_offset + 1);
                    last = info.last_offset;
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::Release);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }

    assert_eq!(log.log_end_offset(), (WRITERS * BATCHES * 2) as i64);
    let batches = read_all(&log, 0, ReadBound::LogEnd);
    assert_eq!(batches.len(), WRITERS * BATCHES);
    let mut next = [0usize; WRITERS];
    for (_, bytes) in &batches {
        let records = decode(bytes);
        let value = records[0].value.clone().unwrap();
        let tag = std::str::from_utf8(&value).unwrap().trim_end_matches('.');
        let (writer, rest) = tag.trim_start_matches('w').split_once('-').unwrap();
        let writer: usize = writer.parse().unwrap();
        let index: usize = rest.split('-').next().unwrap().parse().unwrap();
        assert_eq!(
            index, next[writer],
            "writer {writer}'s batches are in its order"
        );
        next[writer] += 1;
    }
    assert_eq!(next, [BATCHES; WRITERS]);
}
