//! The Kafka listener over real TCP, for what needs no broker registration
//! or topic creation in the controller: ApiVersions, Metadata and
//! DescribeCluster of an empty cluster, configs of brokers, and the
//! broker-side validation stages of CreateTopics.

mod common;

use bytes::BytesMut;
use common::{Harness, BROKER_ID, CLUSTER_ID};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn topic(name: &str) -> TopicName {
    TopicName(s(name))
}

#[tokio::test]
async fn api_versions_come_from_the_handler_registry() {
    let h = Harness::start().await;
    let mut client = h.client().await;
    for version in [0, 1, 2, 3] {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(s("kraft-tests"))
            .with_client_software_version(s("1.0"));
        let response = client.send(version, &request).await.expect("ApiVersions");
        assert_eq!(response.error_code, 0, "v{version}");
        let served: Vec<(i16, i16, i16)> = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        let expected: Vec<(i16, i16, i16)> = {
            let mut e: Vec<_> = kraft_broker::handlers::SUPPORTED_APIS
                .iter()
                .map(|a| (a.api_key as i16, a.min_version, a.max_version))
                .collect();
            e.sort();
            e
        };
        assert_eq!(served, expected);
        assert!(served.contains(&(ApiKey::Metadata as i16, 0, 13)));
        assert!(served.contains(&(ApiKey::ApiVersions as i16, 0, 3)));
    }
    let bad_name = ApiVersionsRequest::default()
        .with_client_software_name(s("-bad name"))
        .with_client_software_version(s("1.0"));
    let response = client.send(3, &bad_name).await.expect("ApiVersions");
    assert_eq!(response.error_code, ResponseError::InvalidRequest.code());
    h.stop().await;
}

#[tokio::test]
async fn a_too_new_api_versions_gets_v0_unsupported_version_and_our_list() {
    let h = Harness::start().await;
    let mut client = h.client().await;
    // A v9 header (flexible, header v2) with a v3-shaped body, as a newer
    // client would send.
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(9)
        .with_correlation_id(77)
        .with_client_id(Some(s("future-client")));
    let mut frame = BytesMut::new();
    header.encode(&mut frame, 2).expect("header");
    ApiVersionsRequest::default()
        .with_client_software_name(s("future"))
        .with_client_software_version(s("9"))
        .encode(&mut frame, 3)
        .expect("body");
    client.write_frame(&frame).await.expect("write");
    let mut answer = client
        .read_frame()
        .await
        .expect("read")
        .expect("a response");
    let header = ResponseHeader::decode(&mut answer, 0).expect("v0 response header");
    assert_eq!(header.correlation_id, 77);
    let response = ApiVersionsResponse::decode(&mut answer, 0).expect("v0 body");
    assert_eq!(
        response.error_code,
        ResponseError::UnsupportedVersion.code()
    );
    assert!(response
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::ApiVersions as i16 && k.max_version == 3));
    // The connection stays usable.
    let again = client
        .send(0, &ApiVersionsRequest::default())
        .await
        .expect("ApiVersions v0 after the fallback");
    assert_eq!(again.error_code, 0);
    h.stop().await;
}

#[tokio::test]
async fn metadata_of_an_empty_cluster_at_every_version() {
    let h = Harness::start().await;
    let mut client = h.client().await;
    for version in 0..=13 {
        // Before v4 the field does not exist (auto-creation is implied).
        let auto_create = version < 4;
        let all = MetadataRequest::default()
            .with_topics(if version == 0 { Some(vec![]) } else { None })
            .with_allow_auto_topic_creation(auto_create);
        let response = client.send(version, &all).await.expect("Metadata");
        assert!(response.topics.is_empty(), "v{version}");
        assert!(response.brokers.is_empty(), "no broker is registered");
        if version >= 2 {
            assert_eq!(response.cluster_id.as_deref(), Some(CLUSTER_ID));
        }
        if version >= 1 {
            assert_eq!(response.controller_id, BrokerId(-1));
        }
        let named = MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic("missing"))),
                MetadataRequestTopic::default().with_name(Some(topic("bad/name"))),
            ]))
            .with_allow_auto_topic_creation(auto_create);
        let response = client.send(version, &named).await.expect("Metadata");
        let codes: Vec<(String, i16)> = response
            .topics
            .iter()
            .map(|t| {
                (
                    t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default(),
                    t.error_code,
                )
            })
            .collect();
        assert_eq!(
            codes,
            vec![
                (
                    "missing".to_string(),
                    ResponseError::UnknownTopicOrPartition.code()
                ),
                (
                    "bad/name".to_string(),
                    ResponseError::InvalidTopicException.code()
                ),
            ],
            "v{version}"
        );
    }
    // By id (v12): unknown id.
    let by_id = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_topic_id(uuid::Uuid::new_v4())
    ]));
    let response = client.send(12, &by_id).await.expect("Metadata");
    assert_eq!(
        response.topics[0].error_code,
        ResponseError::UnknownTopicId.code()
    );
    h.stop().await;
}

#[tokio::test]
async fn describe_cluster_without_brokers() {
    let h = Harness::start().await;
    let mut client = h.client().await;
    for version in 0..=2 {
        let response = client
            .send(version, &DescribeClusterRequest::default())
            .await
            .expect("DescribeCluster");
        assert_eq!(response.error_code, 0);
        assert_eq!(response.cluster_id.as_str(), CLUSTER_ID);
        assert_eq!(response.controller_id, BrokerId(-1));
        assert!(response.brokers.is_empty());
    }
    let controllers = DescribeClusterRequest::default().with_endpoint_type(2);
    let response = client.send(1, &controllers).await.expect("DescribeCluster");
    assert_eq!(
        response.error_code,
        ResponseError::UnsupportedEndpointType.code()
    );
    h.stop().await;
}

fn describe(kind: i8, name: &str, keys: Option<Vec<&str>>) -> DescribeConfigsResource {
    DescribeConfigsResource::default()
        .with_resource_type(kind)
        .with_resource_name(s(name))
        .with_configuration_keys(keys.map(|k| k.into_iter().map(s).collect()))
}

#[tokio::test]
async fn broker_configs_describe_and_alter() {
    let h = Harness::start().await;
    let mut client = h.client().await;
    let own = BROKER_ID.to_string();
    let request = DescribeConfigsRequest::default().with_resources(vec![
        describe(4, &own, Some(vec!["num.partitions", "node.id"])),
        describe(4, "", None),
        describe(4, "99", None),
        describe(2, "no-such-topic", None),
        describe(8, "x", None),
    ]);
    let response = client.send(4, &request).await.expect("DescribeConfigs");
    let codes: Vec<i16> = response.results.iter().map(|r| r.error_code).collect();
    assert_eq!(
        codes,
        vec![
            0,
            0,
            ResponseError::InvalidRequest.code(),
            ResponseError::UnknownTopicOrPartition.code(),
            ResponseError::InvalidRequest.code(),
        ]
    );
    let configs: Vec<(String, String, i8)> = response.results[0]
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_deref().unwrap_or_default().to_string(),
                c.config_source,
            )
        })
        .collect();
    assert_eq!(
        configs,
        vec![
            ("node.id".to_string(), own.clone(), 4),
            ("num.partitions".to_string(), "1".to_string(), 4),
        ]
    );

    // Alter the cluster-wide default, plus requests that fail per resource.
    let set = |key: &str, op: i8, value: Option<&str>| {
        AlterableConfig::default()
            .with_name(s(key))
            .with_config_operation(op)
            .with_value(value.map(s))
    };
    let resource = |kind: i8, name: &str, configs| {
        AlterConfigsResource::default()
            .with_resource_type(kind)
            .with_resource_name(s(name))
            .with_configs(configs)
    };
    let alter = IncrementalAlterConfigsRequest::default().with_resources(vec![
        resource(4, "", vec![set("num.partitions", 0, Some("3"))]),
        resource(4, "abc", vec![set("num.partitions", 0, Some("3"))]),
        resource(4, &own, vec![set("num.partitions", 2, Some("3"))]),
        resource(4, &own, vec![set("num.partitions", 9, Some("3"))]),
        resource(
            2,
            "no-such-topic",
            vec![set("retention.ms", 0, Some("1000"))],
        ),
        resource(
            2,
            "t",
            vec![
                set("retention.ms", 0, Some("1")),
                set("retention.ms", 1, None),
            ],
        ),
    ]);
    let response = client
        .send(1, &alter)
        .await
        .expect("IncrementalAlterConfigs");
    let codes: Vec<i16> = response.responses.iter().map(|r| r.error_code).collect();
    assert_eq!(
        codes,
        vec![
            0,
            ResponseError::InvalidRequest.code(),
            // The same resource twice: both rejected.
            ResponseError::InvalidRequest.code(),
            ResponseError::InvalidRequest.code(),
            ResponseError::UnknownTopicOrPartition.code(),
            ResponseError::InvalidRequest.code(),
        ]
    );
    let response = client
        .send(
            4,
            &DescribeConfigsRequest::default()
                .with_resources(vec![describe(4, &own, Some(vec!["num.partitions"]))])
                .with_include_synonyms(true),
        )
        .await
        .expect("DescribeConfigs");
    let entry = &response.results[0].configs[0];
    assert_eq!(
        entry.value.as_deref(),
        Some("3"),
        "the dynamic default applies"
    );
    assert_eq!(entry.config_source, 3);
    assert_eq!(entry.synonyms.len(), 2);

    let delete = IncrementalAlterConfigsRequest::default().with_resources(vec![resource(
        4,
        "",
        vec![set("num.partitions", 1, None)],
    )]);
    let response = client
        .send(0, &delete)
        .await
        .expect("IncrementalAlterConfigs");
    assert_eq!(response.responses[0].error_code, 0);
    let response = client
        .send(
            4,
            &DescribeConfigsRequest::default().with_resources(vec![describe(
                4,
                &own,
                Some(vec!["num.partitions"]),
            )]),
        )
        .await
        .expect("DescribeConfigs");
    assert_eq!(response.results[0].configs[0].value.as_deref(), Some("1"));
    h.stop().await;
}

#[tokio::test]
async fn create_topics_rejects_duplicates_and_bad_names_per_topic() {
    let h = Harness::start().await;
    let mut client = h.client().await;
    let creatable = |name: &str| {
        CreatableTopic::default()
            .with_name(topic(name))
            .with_num_partitions(1)
            .with_replication_factor(1)
    };
    let request = CreateTopicsRequest::default()
        .with_topics(vec![
            creatable("dup"),
            creatable("bad name"),
            creatable("dup"),
            creatable(".."),
        ])
        .with_timeout_ms(5000);
    for version in 2..=7 {
        let response = client.send(version, &request).await.expect("CreateTopics");
        let codes: Vec<(String, i16)> = response
            .topics
            .iter()
            .map(|t| (t.name.0.to_string(), t.error_code))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("dup".to_string(), ResponseError::InvalidRequest.code()),
                (
                    "bad name".to_string(),
                    ResponseError::InvalidTopicException.code()
                ),
                (
                    "..".to_string(),
                    ResponseError::InvalidTopicException.code()
                ),
            ],
            "v{version}"
        );
    }
    h.stop().await;
}
