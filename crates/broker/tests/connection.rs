//! The connection layer over real TCP: frames that cannot be served close
//! only their own connection (never the server), responses to pipelined
//! requests come back in order, and shutdown closes idle connections.

mod common;

use bytes::{BufMut, BytesMut};
use common::Harness;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Whether the server closed `stream` (read returns EOF or a reset).
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(common::DEADLINE, stream.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn bad_frames_close_only_their_connection() {
    let h = Harness::start().await;
    let metadata_header = |version: i16| {
        let mut b = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(ApiKey::Metadata as i16)
            .with_request_api_version(version)
            .with_correlation_id(1)
            .encode(&mut b, 1)
            .expect("header");
        b
    };
    let mut garbage_body = metadata_header(1);
    garbage_body.put_i32(1000); // 1000 topics announced, none follow.
    let mut huge_count = metadata_header(1);
    huge_count.put_i32(i32::MAX); // An absurd array length.
    let mut unknown_key = BytesMut::new();
    unknown_key.put_i16(-5);
    unknown_key.put_i16(0);
    unknown_key.put_i32(1);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated body", framed(&garbage_body)),
        ("absurd array length", framed(&huge_count)),
        ("negative size", (-1i32).to_be_bytes().to_vec()),
        (
            "oversized frame",
            (200 * 1024 * 1024i32).to_be_bytes().to_vec(),
        ),
        ("short header", framed(&[0, 3])),
        ("unknown API key", framed(&unknown_key)),
        ("unsupported version", framed(&metadata_header(99))),
        (
            "API this broker does not serve",
            framed(&{
                let mut b = BytesMut::new();
                b.put_i16(ApiKey::Produce as i16);
                b.put_i16(9);
                b.put_i32(1);
                b
            }),
        ),
    ];
    for (what, bytes) in cases {
        let mut stream = TcpStream::connect(h.kafka_addr).await.expect("connect");
        stream.write_all(&bytes).await.expect("write");
        assert!(
            closed_by_server(&mut stream).await,
            "{what}: connection should close"
        );
    }
    // EOF in the middle of a frame.
    let mut stream = TcpStream::connect(h.kafka_addr).await.expect("connect");
    stream
        .write_all(&100i32.to_be_bytes())
        .await
        .expect("write");
    drop(stream);
    // The server still serves new connections.
    let mut client = h.client().await;
    let response = client
        .send(0, &ApiVersionsRequest::default())
        .await
        .expect("ApiVersions after bad frames");
    assert_eq!(response.error_code, 0);
    h.stop().await;
}

fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let h = Harness::start().await;
    let mut client = h.client().await;
    let mut frames = Vec::new();
    for id in 1..=5 {
        let frame = if id % 2 == 0 {
            client.encode_request(id, 12, &MetadataRequest::default().with_topics(None))
        } else {
            client.encode_request(id, 3, &ApiVersionsRequest::default())
        };
        frames.push(frame.expect("encode"));
    }
    for frame in &frames {
        client.write_frame(frame).await.expect("write");
    }
    for id in 1..=5 {
        let mut frame = client.read_frame().await.expect("read").expect("response");
        // ApiVersions responses use header v0; Metadata v12 uses header v1.
        let header = ResponseHeader::decode(&mut frame, if id % 2 == 0 { 1 } else { 0 })
            .expect("response header");
        assert_eq!(header.correlation_id, id);
    }
    h.stop().await;
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_returns() {
    let h = Harness::start().await;
    let mut idle = TcpStream::connect(h.kafka_addr).await.expect("connect");
    let mut client = h.client().await;
    client
        .send(0, &ApiVersionsRequest::default())
        .await
        .expect("ApiVersions");
    h.stop().await; // Asserts the listener task returns.
    assert!(closed_by_server(&mut idle).await);
}
