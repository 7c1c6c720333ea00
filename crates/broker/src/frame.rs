//! Request framing: a 4-byte big-endian length, then the request header and body.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncRead, AsyncReadExt};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FrameError {
    #[error("frame of {0} bytes is larger than the limit of {1}")]
    TooLarge(i64, usize),
    #[error("negative frame length {0}")]
    Negative(i32),
    #[error("frame of {0} bytes is too short for a request header")]
    TooShort(usize),
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("malformed request header: {0}")]
    Header(String),
}

/// Reads one frame; `None` at a clean end of stream (between frames).
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_bytes: usize,
) -> std::io::Result<Option<Result<Bytes, FrameError>>> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = i32::from_be_bytes(len);
    if len < 0 {
        return Ok(Some(Err(FrameError::Negative(len))));
    }
    if len as usize > max_bytes {
        return Ok(Some(Err(FrameError::TooLarge(len as i64, max_bytes))));
    }
    let mut body = BytesMut::zeroed(len as usize);
    reader.read_exact(&mut body).await?;
    Ok(Some(Ok(body.freeze())))
}

/// The first fields of every request header, readable whatever the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

pub fn prefix(frame: &[u8]) -> Result<Prefix, FrameError> {
    if frame.len() < 8 {
        return Err(FrameError::TooShort(frame.len()));
    }
    let mut b = frame;
    Ok(Prefix {
        api_key: b.get_i16(),
        api_version: b.get_i16(),
        correlation_id: b.get_i32(),
    })
}

/// Decodes the request header at the version the API key and version call for; `frame` is
/// left at the start of the body.
pub fn decode_header(frame: &mut Bytes) -> Result<(ApiKey, RequestHeader), FrameError> {
    let p = prefix(frame)?;
    let key = ApiKey::try_from(p.api_key).map_err(|_| FrameError::UnknownApiKey(p.api_key))?;
    let header_version = key.request_header_version(p.api_version);
    let header = RequestHeader::decode(frame, header_version)
        .map_err(|e| FrameError::Header(e.to_string()))?;
    Ok((key, header))
}

/// A whole response frame: length, header, body.
pub fn encode_response<R: Encodable>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> anyhow_like::Result<Bytes> {
    let header_version = key.response_header_version(version);
    encode_with_header(header_version, correlation_id, body, version)
}

pub fn encode_with_header<R: Encodable>(
    header_version: i16,
    correlation_id: i32,
    body: &R,
    version: i16,
) -> anyhow_like::Result<Bytes> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let size = header
        .compute_size(header_version)
        .and_then(|h| Ok(h + body.compute_size(version)?))
        .map_err(|e| e.to_string())?;
    let mut out = BytesMut::with_capacity(4 + size);
    out.put_i32(size as i32);
    header
        .encode(&mut out, header_version)
        .map_err(|e| e.to_string())?;
    body.encode(&mut out, version).map_err(|e| e.to_string())?;
    Ok(out.freeze())
}

/// Encoding errors as plain strings (the codec's own error type is anyhow's).
pub mod anyhow_like {
    pub type Result<T> = std::result::Result<T, String>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsResponse, MetadataRequest};
    use kafka_protocol::protocol::StrBytes;

    fn request(key: ApiKey, version: i16, correlation_id: i32) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("test")));
        let mut out = BytesMut::new();
        header
            .encode(&mut out, key.request_header_version(version))
            .unwrap();
        MetadataRequest::default()
            .encode(&mut out, version)
            .unwrap();
        out.freeze()
    }

    #[tokio::test]
    async fn frames_are_length_prefixed() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&3i32.to_be_bytes());
        wire.extend_from_slice(b"abc");
        wire.extend_from_slice(&0i32.to_be_bytes());
        let mut r = &wire[..];
        assert_eq!(
            read_frame(&mut r, 10).await.unwrap(),
            Some(Ok(Bytes::from_static(b"abc")))
        );
        assert_eq!(
            read_frame(&mut r, 10).await.unwrap(),
            Some(Ok(Bytes::new()))
        );
        assert_eq!(read_frame(&mut r, 10).await.unwrap(), None);
    }

    #[tokio::test]
    async fn oversized_and_negative_frames_are_refused() {
        let wire = 11i32.to_be_bytes();
        let mut r = &wire[..];
        assert_eq!(
            read_frame(&mut r, 10).await.unwrap(),
            Some(Err(FrameError::TooLarge(11, 10)))
        );
        let wire = (-1i32).to_be_bytes();
        let mut r = &wire[..];
        assert_eq!(
            read_frame(&mut r, 10).await.unwrap(),
            Some(Err(FrameError::Negative(-1)))
        );
    }

    #[tokio::test]
    async fn a_truncated_frame_is_an_error() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&5i32.to_be_bytes());
        wire.extend_from_slice(b"ab");
        let mut r = &wire[..];
        assert!(read_frame(&mut r, 10).await.is_err());
    }

    #[test]
    fn headers_decode_at_flexible_and_classic_versions() {
        for version in [0, 8, 9, 12] {
            let mut frame = request(ApiKey::Metadata, version, 42);
            let (key, header) = decode_header(&mut frame).unwrap();
            assert_eq!(key, ApiKey::Metadata);
            assert_eq!(header.request_api_version, version);
            assert_eq!(header.correlation_id, 42);
            assert_eq!(header.client_id.as_deref(), Some("test"));
            let body = MetadataRequest::decode(&mut frame, version).unwrap();
            assert_eq!(body, MetadataRequest::default());
        }
    }

    #[test]
    fn unknown_keys_and_short_frames_are_refused() {
        let mut frame = Bytes::from_static(&[0x7f, 0x00, 0, 1, 0, 0, 0, 7, 0, 0]);
        assert_eq!(
            decode_header(&mut frame).unwrap_err(),
            FrameError::UnknownApiKey(0x7f00)
        );
        let mut frame = Bytes::from_static(&[0, 3, 0]);
        assert_eq!(
            decode_header(&mut frame).unwrap_err(),
            FrameError::TooShort(3)
        );
    }

    #[test]
    fn responses_carry_length_and_correlation_id() {
        let frame =
            encode_response(ApiKey::ApiVersions, 3, 77, &ApiVersionsResponse::default()).unwrap();
        let len = i32::from_be_bytes(frame[0..4].try_into().unwrap()) as usize;
        assert_eq!(len, frame.len() - 4);
        assert_eq!(i32::from_be_bytes(frame[4..8].try_into().unwrap()), 77);
        // ApiVersions responses keep header v0 (no tagged fields) even when flexible.
        let mut body = frame.slice(8..);
        assert_eq!(
            ApiVersionsResponse::decode(&mut body, 3).unwrap(),
            ApiVersionsResponse::default()
        );
    }
}
