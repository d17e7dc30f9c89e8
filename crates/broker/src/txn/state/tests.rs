use super::*;

fn meta(state: TxnState, epoch: i16) -> TxnMetadata {
    let mut m = TxnMetadata::from_value(&first_value(1000, 60_000, 0));
    m.producer_epoch = epoch;
    m.state = state;
    m
}

fn p(topic: &str, partition: i32) -> (String, i32) {
    (topic.to_string(), partition)
}

#[test]
fn init_bumps_the_epoch_and_refuses_stale_producers() {
    let m = meta(TxnState::CompleteCommit, 3);
    let Ok(InitStep::Write(v)) = m.prepare_init(30_000, None, 5, None) else {
        panic!("init from CompleteCommit writes");
    };
    assert_eq!(
        (v.producer_id, v.producer_epoch, v.state),
        (1000, 4, TxnState::Empty)
    );
    assert_eq!(v.timeout_ms, 30_000);
    // KIP-360: the producer's current id and epoch, or it is fenced.
    assert!(matches!(
        m.prepare_init(30_000, Some((1000, 3)), 5, None),
        Ok(InitStep::Write(_))
    ));
    assert_eq!(
        m.prepare_init(30_000, Some((1000, 2)), 5, None),
        Err(ResponseError::ProducerFenced)
    );
    // A retry of an init already answered gets the same answer.
    let mut after = m.clone();
    after.complete(v);
    assert_eq!(
        after.prepare_init(30_000, Some((1000, 3)), 6, None),
        Ok(InitStep::Answer {
            producer_id: 1000,
            epoch: 4
        })
    );
}

#[test]
fn init_with_an_ongoing_transaction_aborts_it_with_a_bumped_epoch() {
    let mut m = meta(TxnState::Ongoing, 2);
    m.partitions.insert(p("t", 0));
    let Ok(InitStep::AbortFirst(v)) = m.prepare_init(60_000, None, 9, None) else {
        panic!("fencing aborts first");
    };
    assert_eq!((v.producer_epoch, v.state), (3, TxnState::PrepareAbort));
    assert_eq!(v.partitions, vec![("t".to_string(), vec![0])]);
    for state in [TxnState::PrepareCommit, TxnState::PrepareAbort] {
        assert_eq!(
            meta(state, 2).prepare_init(60_000, None, 9, None),
            Err(ResponseError::ConcurrentTransactions)
        );
    }
}

#[test]
fn an_exhausted_epoch_takes_a_new_producer_id() {
    let m = meta(TxnState::Empty, i16::MAX - 1);
    assert!(m.epoch_exhausted());
    let Ok(InitStep::Write(v)) = m.prepare_init(1, None, 0, Some(2000)) else {
        panic!("a new id");
    };
    assert_eq!((v.producer_id, v.producer_epoch), (2000, 0));
}

#[test]
fn add_partitions_checks_the_producer_and_opens_the_transaction() {
    let m = meta(TxnState::Empty, 1);
    assert_eq!(
        m.prepare_add(999, 1, &[p("t", 0)], 5),
        Err(ResponseError::InvalidProducerIdMapping)
    );
    assert_eq!(
        m.prepare_add(1000, 0, &[p("t", 0)], 5),
        Err(ResponseError::ProducerFenced)
    );
    let v = m.prepare_add(1000, 1, &[p("t", 0)], 5).unwrap().unwrap();
    assert_eq!((v.state, v.start_ms), (TxnState::Ongoing, 5));
    let mut ongoing = m.clone();
    ongoing.complete(v);
    assert_eq!(ongoing.prepare_add(1000, 1, &[p("t", 0)], 6), Ok(None));
    let v = ongoing
        .prepare_add(1000, 1, &[p("u", 2)], 7)
        .unwrap()
        .unwrap();
    assert_eq!(
        v.partitions,
        vec![("t".to_string(), vec![0]), ("u".to_string(), vec![2])]
    );
    assert_eq!(v.start_ms, 5);
    let mut pending = ongoing.clone();
    pending.pending = Some(v);
    assert_eq!(
        pending.prepare_add(1000, 1, &[p("v", 0)], 8),
        Err(ResponseError::ConcurrentTransactions)
    );
    assert_eq!(
        meta(TxnState::PrepareCommit, 1).prepare_add(1000, 1, &[p("t", 0)], 5),
        Err(ResponseError::ConcurrentTransactions)
    );
}

#[test]
fn end_txn_follows_kafkas_transitions() {
    let mut m = meta(TxnState::Ongoing, 1);
    m.partitions.insert(p("t", 0));
    let v = m.prepare_end(1000, 1, true, 9).unwrap().unwrap();
    assert_eq!(v.state, TxnState::PrepareCommit);
    assert_eq!(
        m.prepare_end(1000, 0, true, 9),
        Err(ResponseError::ProducerFenced)
    );
    assert_eq!(
        meta(TxnState::Empty, 1).prepare_end(1000, 1, true, 9),
        Err(ResponseError::InvalidTxnState)
    );
    assert_eq!(
        meta(TxnState::CompleteCommit, 1).prepare_end(1000, 1, true, 9),
        Ok(None)
    );
    assert_eq!(
        meta(TxnState::CompleteCommit, 1).prepare_end(1000, 1, false, 9),
        Err(ResponseError::InvalidTxnState)
    );
    assert_eq!(
        meta(TxnState::PrepareAbort, 1).prepare_end(1000, 1, false, 9),
        Err(ResponseError::ConcurrentTransactions)
    );
    let mut prepared = m.clone();
    prepared.complete(v);
    let done = prepared.prepare_complete(10).unwrap();
    assert_eq!(done.state, TxnState::CompleteCommit);
    assert!(done.partitions.is_empty());
}

#[test]
fn only_expired_ongoing_transactions_time_out() {
    let mut m = meta(TxnState::Ongoing, 1);
    m.start_ms = 100;
    m.timeout_ms = 50;
    assert_eq!(m.prepare_timeout_abort(149), None);
    let v = m.prepare_timeout_abort(150).unwrap();
    assert_eq!((v.state, v.producer_epoch), (TxnState::PrepareAbort, 2));
    assert_eq!(
        meta(TxnState::Empty, 1).prepare_timeout_abort(i64::MAX),
        None
    );
}
