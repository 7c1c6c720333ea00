//! CPU cost of showing one message as a JSON line, without Kafka: the envelope check
//! alone, and the whole `Renderer::write` into a reused buffer, per message.
//!
//!   cargo run --release -p streamhub-consumer --example render_cost [-- N]

use std::hint::black_box;
use std::time::Instant;

use streamhub_consumer::render::{Format, Palette, Record, Renderer, parse_envelope};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let values: Vec<Vec<u8>> = (0..1000)
        .map(|seq| {
            format!(
                r#"{{"topic":"sensor_data","data_type":"sensor","timestamp":"2026-11-28T18:00:00.{:06}Z","producer_id":"producer-1","seq":{seq},"payload":{{"sensor_id":"sensor-{:03}","location":"building-a/floor-2","temperature_c":{:.2},"humidity_pct":{:.1},"pressure_hpa":1013.2,"battery_pct":87,"status":"ok"}}}}"#,
                seq * 997 % 1_000_000,
                seq % 50,
                20.0 + (seq % 100) as f64 / 10.0,
                40.0 + (seq % 30) as f64,
            )
            .into_bytes()
        })
        .collect();
    println!("value size: {} bytes", values[0].len());

    let started = Instant::now();
    for i in 0..n {
        let view = parse_envelope(&values[i % values.len()]).unwrap();
        black_box(view);
    }
    let check = started.elapsed().as_secs_f64() * 1e6 / n as f64;

    let mut renderer = Renderer::new(Format::Json, Palette::PLAIN);
    let mut out = Vec::with_capacity(64 * 1024);
    let started = Instant::now();
    for i in 0..n {
        let record = Record {
            topic: "sensor_data",
            partition: (i % 3) as i32,
            offset: i as i64,
            key: Some(b"sensor-001"),
            timestamp_ms: Some(1_796_000_000_000 + i as i64),
            value: Some(&values[i % values.len()]),
        };
        renderer
            .write(&mut out, &mut std::io::sink(), &record)
            .unwrap();
        if out.len() > 60 * 1024 {
            black_box(&out);
            out.clear();
        }
    }
    let write = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("envelope check: {check:.3} µs/message; whole json line: {write:.3} µs/message");
}
