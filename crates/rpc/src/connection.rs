//! [`ControllerConnection`]: one connection to a CONTROLLER listener. Send
//! a request body, get its response.
//!
//! In: an address, the cluster id every request carries, and request bodies
//! (`ControllerRequest` bodies, numbered with correlation ids). Out: the
//! `ControllerResponse`, or a [`ClientError`]: a response with a non-zero
//! error code comes back as `ClientError::Server`. Frames use
//! [`frame_codec`].

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
        let frame = match self.framed.next().await {
            Some(Ok(frame)) => frame,
            Some(Err(source)) => return Err(ClientError::Io { addr, source }),
            None => return Err(ClientError::Closed { addr }),
        };
        let response = ControllerResponse::decode(frame.freeze())
            .map_err(|source| ClientError::Decode { addr, source })?;
        // 0 is Kafka's NONE: any other code is an error.
        if response.error_code != 0 {
            return Err(ControllerError::from(&response).into());
        }
        Ok(response)
    }
}
