//! [`ControllerConnection`]: one connection to a CONTROLLER listener. Send
//! a request body, get its response.
//!
//! In: an address, the cluster id every request carries, and request bodies
//! (`ControllerRequest` bodies, numbered with correlation ids). Out: the
//! `ControllerResponse`, or a [`ClientError`]: a response with a non-zero
//! error code comes back as `ClientError::Server`. Frames use
//! [`frame_codec`]. A call matches its answer by correlation id, so a call
//! abandoned mid-flight never answers the next one.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use kraft_proto::controller::{controller_request::Body, ControllerRequest, ControllerResponse};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use crate::codec::{frame_codec, FrameCodec};
use crate::error::{ClientError, ControllerError};

/// One connection to a CONTROLLER listener.
pub struct ControllerConnection {
    addr: String,
    cluster_id: String,
    framed: Framed<TcpStream, FrameCodec>,
    next_id: u64,
}

impl ControllerConnection {
    pub async fn connect(
        addr: &str,
        cluster_id: &str,
    ) -> Result<ControllerConnection, ClientError> {
        let io = |source| ClientError::Io {
            addr: addr.to_string(),
            source,
        };
        let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .map_err(|_| io(std::io::ErrorKind::TimedOut.into()))?
            .map_err(io)?;
        let _ = stream.set_nodelay(true);
        Ok(ControllerConnection {
            addr: addr.to_string(),
            cluster_id: cluster_id.to_string(),
            framed: Framed::new(stream, frame_codec()),
            next_id: 1,
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends one request and waits for its response. A response carrying an
    /// error code is returned as `ClientError::Server`.
    pub async fn call(&mut self, body: Body) -> Result<ControllerResponse, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let request = ControllerRequest {
            correlation_id: id,
            cluster_id: self.cluster_id.clone(),
            body: Some(body),
        };
        let addr = self.addr.clone();
        self.framed
            .send(bytes::Bytes::from(request.encode_to_vec()))
            .await
            .map_err(|source| ClientError::Io {
                addr: addr.clone(),
                source,
            })?;
        // Answers to earlier calls that were abandoned mid-flight (their
        // future dropped, as a handler's is when its client goes away) may
        // still be on the wire ahead of ours: skip them.
        let response = loop {
            let frame = match self.framed.next().await {
                Some(Ok(frame)) => frame,
                Some(Err(source)) => return Err(ClientError::Io { addr, source }),
                None => return Err(ClientError::Closed { addr }),
            };
            let response = ControllerResponse::decode(frame.freeze()).map_err(|source| {
                ClientError::Decode {
                    addr: addr.clone(),
                    source,
                }
            })?;
            match response.correlation_id.cmp(&id) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal => break response,
                std::cmp::Ordering::Greater => {
                    return Err(ClientError::OutOfOrder {
                        addr,
                        expected: id,
                        got: response.correlation_id,
                    })
                }
            }
        };
        // 0 is Kafka's NONE: any other code is an error.
        if response.error_code != 0 {
            return Err(ControllerError::from(&response).into());
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use kraft_proto::controller::DescribeQuorumRequest;
    use tokio::net::TcpListener;

    use super::*;

    /// A controller that holds its answer to the first request until the
    /// second arrives, then answers both in order; each answer's
    /// `committed_offset` is its request's correlation id.
    async fn slow_controller() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut framed = Framed::new(stream, frame_codec());
            let mut ids = Vec::new();
            while let Some(Ok(frame)) = framed.next().await {
                ids.push(
                    ControllerRequest::decode(frame.freeze())
                        .unwrap()
                        .correlation_id,
                );
                if ids.len() < 2 {
                    continue;
                }
                for id in ids.drain(..) {
                    let response = ControllerResponse {
                        correlation_id: id,
                        committed_offset: id,
                        ..Default::default()
                    };
                    let frame = bytes::Bytes::from(response.encode_to_vec());
                    framed.send(frame).await.unwrap();
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_call_abandoned_mid_flight_does_not_answer_the_next_one() {
        let addr = slow_controller().await;
        let mut conn = ControllerConnection::connect(&addr, "c").await.unwrap();
        let body = || Body::DescribeQuorum(DescribeQuorumRequest {});
        // The first call is dropped while its answer is still on its way,
        // as a handler is when its Kafka client goes away.
        let abandoned = tokio::time::timeout(Duration::from_millis(100), conn.call(body())).await;
        assert!(abandoned.is_err(), "the first call should still be waiting");
        let response = conn.call(body()).await.unwrap();
        assert_eq!(
            response.committed_offset, 2,
            "the second call got the first call's answer"
        );
    }
}
