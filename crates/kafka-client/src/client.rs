//! [`KafkaClient`]: a minimal Kafka protocol client over one TCP
//! connection, for tests and `kraftctl`.
//!
//! In: a request struct from `kafka_protocol::messages` and the version to
//! speak. Out: the decoded response. Requests go one at a time; the
//! correlation id of each response is checked. No version negotiation: the
//! caller picks versions (ask ApiVersions first if unsure). The raw
//! [`write_frame`](KafkaClient::write_frame) /
//! [`read_frame`](KafkaClient::read_frame) pair lets tests send bytes no
//! well-behaved client would.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::net::{TcpStream, ToSocketAddrs};

use crate::frame::{FrameError, FramedConnection};

/// The largest response frame the client accepts (100 MiB, the size of the
/// largest request a Kafka broker accepts by default).
pub const MAX_RESPONSE_BYTES: usize = 100 * 1024 * 1024;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum KafkaClientError {
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error(transparent)]
    Connection(#[from] FrameError),
    #[error("the broker closed the connection")]
    Closed,
    #[error("cannot encode the request: {0}")]
    Encode(String),
    #[error("cannot decode the response: {0}")]
    Decode(String),
    #[error("response has correlation id {got}, expected {expected}")]
    CorrelationMismatch { expected: i32, got: i32 },
}

/// One connection to a Kafka broker.
#[derive(Debug)]
pub struct KafkaClient {
    connection: FramedConnection,
    client_id: String,
    next_correlation_id: i32,
}

impl KafkaClient {
    /// Connects to `addr` with client id `kraft`.
    pub async fn connect(addr: impl ToSocketAddrs) -> Result<KafkaClient, KafkaClientError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(KafkaClientError::Connect)?;
        let _ = stream.set_nodelay(true);
        Ok(KafkaClient {
            connection: FramedConnection::new(stream, MAX_RESPONSE_BYTES),
            client_id: "kraft".to_string(),
            next_correlation_id: 1,
        })
    }

    /// Sets the client id sent in request headers.
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> KafkaClient {
        self.client_id = client_id.into();
        self
    }

    /// Sends `request` at `version` and returns its decoded response.
    pub async fn send<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<R::Response, KafkaClientError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = self.encode_request(correlation_id, version, request)?;
        self.write_frame(&frame).await?;
        let mut frame = self.read_frame().await?.ok_or(KafkaClientError::Closed)?;
        let header = ResponseHeader::decode(
            &mut frame,
            <R::Response as kafka_protocol::protocol::HeaderVersion>::header_version(version),
        )
        .map_err(|e| KafkaClientError::Decode(e.to_string()))?;
        if header.correlation_id != correlation_id {
            return Err(KafkaClientError::CorrelationMismatch {
                expected: correlation_id,
                got: header.correlation_id,
            });
        }
        R::Response::decode(&mut frame, version)
            .map_err(|e| KafkaClientError::Decode(e.to_string()))
    }

    /// Encodes a request header and body (without the size prefix).
    pub fn encode_request<R: Request>(
        &self,
        correlation_id: i32,
        version: i16,
        request: &R,
    ) -> Result<Bytes, KafkaClientError> {
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_string(self.client_id.clone())));
        let mut out = BytesMut::new();
        header
            .encode(&mut out, R::header_version(version))
            .map_err(|e| KafkaClientError::Encode(e.to_string()))?;
        request
            .encode(&mut out, version)
            .map_err(|e| KafkaClientError::Encode(e.to_string()))?;
        Ok(out.freeze())
    }

    /// Writes raw frame bytes (the size prefix is added).
    pub async fn write_frame(&mut self, payload: &[u8]) -> Result<(), KafkaClientError> {
        Ok(self.connection.write_frame(payload).await?)
    }

    /// Reads one raw response frame; `None` if the broker closed the
    /// connection.
    pub async fn read_frame(&mut self) -> Result<Option<Bytes>, KafkaClientError> {
        Ok(self.connection.read_frame().await?)
    }
}
