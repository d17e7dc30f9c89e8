//! Encoding a handler's response as the frame that goes to the socket.
//!
//! In: the API, version, correlation id and a response body. Out: the whole
//! frame (size prefix, response header, body) as one buffer, or a
//! [`RequestError::Encode`] when the body does not fit its version.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;

use super::RequestError;

/// Encodes a whole response frame: the size prefix, the response header
/// (at the API's response header version) and `body` at `version`. The
/// prefix is reserved up front so the frame goes to the socket as it is.
pub fn encode_response<R: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<BytesMut, RequestError> {
    let encode_error = |reason: String| RequestError::Encode {
        api,
        version,
        reason,
    };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = api.response_header_version(version);
    let size = header
        .compute_size(header_version)
        .and_then(|h| Ok(h + body.compute_size(version)?))
        .map_err(|e| encode_error(e.to_string()))?;
    let mut out = BytesMut::with_capacity(4 + size);
    out.put_i32(0);
    header
        .encode(&mut out, header_version)
        .map_err(|e| encode_error(e.to_string()))?;
    body.encode(&mut out, version)
        .map_err(|e| encode_error(e.to_string()))?;
    let len = i32::try_from(out.len() - 4)
        .map_err(|_| encode_error(format!("{} bytes is too large for a frame", out.len())))?;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(out)
}
