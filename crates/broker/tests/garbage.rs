//! Garbage bodies behind valid headers, for every advertised API and version: whatever each
//! connection gets (an answer, a close, nothing), the broker keeps serving.

mod common;

use std::time::Duration;

use common::*;
use kafka_protocol::messages::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// xorshift64*: reproducible bytes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Bytes biased towards the values that make lengths and counts extreme.
    fn body(&mut self) -> Vec<u8> {
        let len = (self.next() % 48) as usize;
        (0..len)
            .map(|_| match self.next() % 6 {
                0 => 0xff,
                1 => 0x7f,
                2 => 0x00,
                3 => 0x80,
                _ => self.next() as u8,
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bodies_never_stop_the_broker() {
    let broker = start().await;
    let mut raw = RawClient::connect(&broker).await;
    let versions: ApiVersionsResponse = raw
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    let mut rng = Rng(0x5eed_1234_abcd_0042);
    let mut sent = 0;
    for api in &versions.api_keys {
        for version in api.min_version..=api.max_version {
            for _ in 0..6 {
                let mut frame = Vec::new();
                frame.extend_from_slice(&api.api_key.to_be_bytes());
                frame.extend_from_slice(&version.to_be_bytes());
                frame.extend_from_slice(&7i32.to_be_bytes());
                // client id: null, then (flexible headers) no tagged fields.
                frame.extend_from_slice(&(-1i16).to_be_bytes());
                let key = ApiKey::try_from(api.api_key).expect("known key");
                if key.request_header_version(version) >= 2 {
                    frame.push(0);
                }
                frame.extend(rng.body());
                let mut wire = (frame.len() as i32).to_be_bytes().to_vec();
                wire.extend(frame);
                let mut stream = tokio::net::TcpStream::connect(broker.listen_addr())
                    .await
                    .expect("broker still accepts connections");
                stream.write_all(&wire).await.expect("write");
                let mut buf = [0u8; 256];
                // An answer, a close or silence (a request that waits): all fine.
                let _ =
                    tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await;
                sent += 1;
            }
        }
    }
    assert!(sent > 500, "{sent} frames");
    // Still serving, on the first connection too.
    let again: ApiVersionsResponse = raw
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    assert_eq!(again.error_code, 0);
    broker.shutdown().await;
}
