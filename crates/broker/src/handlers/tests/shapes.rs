//! Every handler's declared request shape against kafka-protocol's own
//! encoding: populated requests at every served version must pass the
//! pre-check, and absurd lengths must not.

use bytes::BytesMut;
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

use crate::handlers::support::shape::check;
use crate::handlers::*;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Encodes `request` at every version `H` serves and checks the shape
/// accepts exactly those bytes (and rejects them cut short).
fn accepts<H: Handler>(request: impl Fn(i16) -> H::Request)
where
    H::Request: Encodable,
{
    for version in H::MIN_VERSION..=H::MAX_VERSION {
        let mut body = BytesMut::new();
        request(version)
            .encode(&mut body, version)
            .expect("encodable");
        assert_eq!(
            check(&H::REQUEST_SHAPE, version, &body),
            Ok(()),
            "{:?} v{version}",
            H::API_KEY
        );
        if body.len() > 1 {
            assert!(
                check(&H::REQUEST_SHAPE, version, &body[..body.len() - 1]).is_err(),
                "{:?} v{version} truncated",
                H::API_KEY
            );
        }
    }
}

#[test]
fn declared_shapes_match_the_wire() {
    accepts::<api_versions::ApiVersionsHandler>(|_| {
        ApiVersionsRequest::default()
            .with_client_software_name(s("x"))
            .with_client_software_version(s("1"))
    });
    accepts::<metadata::MetadataHandler>(|v| {
        MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(TopicName(s("a")))),
                MetadataRequestTopic::default().with_name(Some(TopicName(s("bb")))),
            ]))
            .with_allow_auto_topic_creation(v < 4)
    });
    accepts::<create_topics::CreateTopicsHandler>(|_| {
        let assignment = CreatableReplicaAssignment::default()
            .with_partition_index(0)
            .with_broker_ids(vec![BrokerId(1), BrokerId(2)]);
        let config = CreatableTopicConfig::default()
            .with_name(s("retention.ms"))
            .with_value(None);
        CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(s("t")))
            .with_assignments(vec![assignment])
            .with_configs(vec![config])])
    });
    accepts::<delete_topics::DeleteTopicsHandler>(|v| {
        if v >= 6 {
            DeleteTopicsRequest::default().with_topics(vec![
                DeleteTopicState::default().with_name(Some(TopicName(s("t")))),
                DeleteTopicState::default()
                    .with_name(None)
                    .with_topic_id(uuid::Uuid::new_v4()),
            ])
        } else {
            DeleteTopicsRequest::default()
                .with_topic_names(vec![TopicName(s("t")), TopicName(s("u"))])
        }
    });
    accepts::<create_partitions::CreatePartitionsHandler>(|_| {
        let assignment = CreatePartitionsAssignment::default().with_broker_ids(vec![BrokerId(3)]);
        CreatePartitionsRequest::default().with_topics(vec![
            CreatePartitionsTopic::default()
                .with_name(TopicName(s("t")))
                .with_assignments(Some(vec![assignment])),
            CreatePartitionsTopic::default()
                .with_name(TopicName(s("u")))
                .with_assignments(None),
        ])
    });
    accepts::<describe_cluster::DescribeClusterHandler>(|_| DescribeClusterRequest::default());
    accepts::<describe_configs::DescribeConfigsHandler>(|_| {
        DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_name(s("t"))
                .with_configuration_keys(Some(vec![s("a"), s("b")])),
            DescribeConfigsResource::default().with_configuration_keys(None),
        ])
    });
    accepts::<incremental_alter_configs::IncrementalAlterConfigsHandler>(|_| {
        let config = AlterableConfig::default()
            .with_name(s("k"))
            .with_value(Some(s("v")));
        IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_name(s("t"))
                .with_configs(vec![config]),
        ])
    });
}

#[test]
fn absurd_lengths_are_rejected_without_allocating() {
    let shape = <metadata::MetadataHandler as Handler>::REQUEST_SHAPE;
    assert!(check(&shape, 1, &i32::MAX.to_be_bytes()).is_err());
    // Compact (v9+): a varint count of u32::MAX.
    assert!(check(&shape, 12, &[0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    assert!(check(&shape, 12, &[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
    assert!(check(&shape, 1, &(-2i32).to_be_bytes()).is_err());
}

#[test]
fn group_api_shapes_match_the_wire() {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    };
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    let g = || GroupId(s("group"));
    accepts::<find_coordinator::FindCoordinatorHandler>(|v| {
        if v >= 4 {
            FindCoordinatorRequest::default().with_coordinator_keys(vec![s("a"), s("bb")])
        } else {
            FindCoordinatorRequest::default().with_key(s("a"))
        }
    });
    accepts::<join_group::JoinGroupHandler>(|v| {
        JoinGroupRequest::default()
            .with_group_id(g())
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(if v >= 1 { 30_000 } else { -1 })
            .with_member_id(s("m"))
            .with_group_instance_id((v >= 5).then(|| s("i")))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(bytes::Bytes::from_static(b"meta"))])
            .with_reason((v >= 8).then(|| s("why")))
    });
    accepts::<sync_group::SyncGroupHandler>(|v| {
        SyncGroupRequest::default()
            .with_group_id(g())
            .with_generation_id(1)
            .with_member_id(s("m"))
            .with_group_instance_id((v >= 3).then(|| s("i")))
            .with_protocol_type((v >= 5).then(|| s("consumer")))
            .with_protocol_name((v >= 5).then(|| s("range")))
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(s("m"))
                .with_assignment(bytes::Bytes::from_static(b"a"))])
    });
    accepts::<heartbeat::HeartbeatHandler>(|v| {
        HeartbeatRequest::default()
            .with_group_id(g())
            .with_generation_id(1)
            .with_member_id(s("m"))
            .with_group_instance_id((v >= 3).then(|| s("i")))
    });
    accepts::<leave_group::LeaveGroupHandler>(|v| {
        if v >= 3 {
            LeaveGroupRequest::default()
                .with_group_id(g())
                .with_members(vec![MemberIdentity::default()
                    .with_member_id(s("m"))
                    .with_group_instance_id(Some(s("i")))
                    .with_reason((v >= 5).then(|| s("bye")))])
        } else {
            LeaveGroupRequest::default()
                .with_group_id(g())
                .with_member_id(s("m"))
        }
    });
    accepts::<offset_commit::OffsetCommitHandler>(|v| {
        let partition = OffsetCommitRequestPartition::default()
            .with_partition_index(0)
            .with_committed_offset(42)
            .with_committed_leader_epoch(if v >= 6 { 3 } else { -1 })
            .with_committed_metadata(Some(s("md")));
        OffsetCommitRequest::default()
            .with_group_id(g())
            .with_generation_id_or_member_epoch(1)
            .with_member_id(s("m"))
            .with_group_instance_id((v >= 7).then(|| s("i")))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![partition])])
    });
    accepts::<offset_fetch::OffsetFetchHandler>(|v| {
        if v >= 8 {
            OffsetFetchRequest::default()
                .with_groups(vec![OffsetFetchRequestGroup::default()
                    .with_group_id(g())
                    .with_member_id((v >= 9).then(|| s("m")))
                    .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                        .with_name(TopicName(s("t")))
                        .with_partition_indexes(vec![0, 1])]))])
                .with_require_stable(true)
        } else {
            OffsetFetchRequest::default()
                .with_group_id(g())
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(TopicName(s("t")))
                    .with_partition_indexes(vec![0, 1])]))
                .with_require_stable(v >= 7)
        }
    });
    accepts::<list_groups::ListGroupsHandler>(|v| {
        ListGroupsRequest::default()
            .with_states_filter(if v >= 4 { vec![s("Stable")] } else { vec![] })
            .with_types_filter(if v >= 5 { vec![s("classic")] } else { vec![] })
    });
    accepts::<describe_groups::DescribeGroupsHandler>(|_| {
        DescribeGroupsRequest::default().with_groups(vec![g(), GroupId(s("other"))])
    });
    accepts::<delete_groups::DeleteGroupsHandler>(|_| {
        DeleteGroupsRequest::default().with_groups_names(vec![g()])
    });
    accepts::<offset_delete::OffsetDeleteHandler>(|_| {
        use kafka_protocol::messages::offset_delete_request::{
            OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
        };
        OffsetDeleteRequest::default()
            .with_group_id(g())
            .with_topics(vec![OffsetDeleteRequestTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(0),
                    OffsetDeleteRequestPartition::default().with_partition_index(3),
                ])])
    });
    accepts::<write_txn_markers::WriteTxnMarkersHandler>(|_| {
        use kafka_protocol::messages::write_txn_markers_request::{
            WritableTxnMarker, WritableTxnMarkerTopic,
        };
        let marker = |commit| {
            WritableTxnMarker::default()
                .with_producer_id(ProducerId(7))
                .with_producer_epoch(2)
                .with_transaction_result(commit)
                .with_coordinator_epoch(3)
                .with_topics(vec![WritableTxnMarkerTopic::default()
                    .with_name(TopicName(s("t")))
                    .with_partition_indexes(vec![0, 1])])
        };
        WriteTxnMarkersRequest::default().with_markers(vec![marker(true), marker(false)])
    });
}

/// A Fetch carrying every tagged field the decoder knows: the cluster id
/// and the replica state (top level), a partition's replica directory id
/// and high watermark.
fn tagged_fetch(v: i16) -> FetchRequest {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
    let mut partition = FetchPartition::default().with_partition(0);
    if v >= 17 {
        partition.replica_directory_id = uuid::Uuid::from_bytes([0xab; 16]);
    }
    if v >= 18 {
        partition.high_watermark = 7;
    }
    let mut topic = FetchTopic::default().with_partitions(vec![partition]);
    if v >= 13 {
        topic.topic_id = uuid::Uuid::from_bytes([1; 16]);
    } else {
        topic.topic = TopicName(s("t"));
    }
    let mut request = FetchRequest::default().with_topics(vec![topic]);
    if v >= 12 {
        request.cluster_id = Some(s("cluster"));
    }
    if v >= 15 {
        request.replica_state = ReplicaState::default()
            .with_replica_id(BrokerId(2))
            .with_replica_epoch(5);
    }
    request
}

#[test]
fn fetch_tagged_fields_are_walked_as_the_decoder_reads_them() {
    accepts::<fetch::FetchHandler>(tagged_fetch);

    // kafka-protocol reads a tagged field it knows by its type, whatever
    // size the field declares. A partition's replica directory id (16
    // bytes) declaring 21 leaves 5 bytes that the decoder reads as what
    // follows: the topic's tagged fields (0), then the forgotten topics'
    // length, 2^32-2 elements, which it would preallocate.
    let mut body = BytesMut::new();
    tagged_fetch(17).encode(&mut body, 17).unwrap();
    let mut forged = body.to_vec();
    let uuid = [0xab; 16];
    let at = forged
        .windows(16)
        .position(|w| w == uuid)
        .expect("the directory id is on the wire");
    assert_eq!(
        &forged[at - 3..at],
        &[1, 0, 16],
        "one tagged field, tag 0, 16 bytes"
    );
    forged[at - 1] = 21;
    forged.splice(at + 16..at + 16, [0x00, 0xff, 0xff, 0xff, 0x0f]);
    assert!(
        check(&fetch::FetchHandler::REQUEST_SHAPE, 17, &forged).is_err(),
        "a known tagged field whose size is not its content's passed the pre-check"
    );
}
