//! How a message is shown: the seed's labelled block (pretty), one JSON object per line,
//! or the raw value.

use std::io::{self, IsTerminal, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use streamhub_model::Envelope;

/// Output formats of `consumer read`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The seed's labelled block per message, coloured on a terminal.
    Pretty,
    /// One JSON object per line: topic, partition, offset, key, timestamp, envelope.
    Json,
    /// The value bytes followed by a newline.
    Raw,
}

/// A consumed message, independent of the Kafka client.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    /// Kafka's timestamp in milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    pub value: Option<&'a [u8]>,
}

/// ANSI styling, off unless writing to a terminal without `NO_COLOR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Palette {
    enabled: bool,
}

impl Palette {
    pub const PLAIN: Palette = Palette { enabled: false };
    pub const COLOURED: Palette = Palette { enabled: true };

    /// Colour for stdout when it is a terminal and `NO_COLOR` is unset or empty
    /// (<https://no-color.org>).
    pub fn for_stdout() -> Palette {
        Self::detect(io::stdout().is_terminal())
    }

    pub fn for_stderr() -> Palette {
        Self::detect(io::stderr().is_terminal())
    }

    fn detect(is_terminal: bool) -> Palette {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Palette {
            enabled: is_terminal && !no_color,
        }
    }

    pub fn enabled(self) -> bool {
        self.enabled
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub fn bold(self, t: &str) -> String {
        self.paint("1", t)
    }
    pub fn dim(self, t: &str) -> String {
        self.paint("2", t)
    }
    pub fn cyan(self, t: &str) -> String {
        self.paint("1;36", t)
    }
    pub fn green(self, t: &str) -> String {
        self.paint("32", t)
    }
    pub fn yellow(self, t: &str) -> String {
        self.paint("1;33", t)
    }
    pub fn red(self, t: &str) -> String {
        self.paint("1;31", t)
    }
    pub fn magenta(self, t: &str) -> String {
        self.paint("35", t)
    }
}

/// What became of one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    Envelope,
    /// Shown raw because it is not a streamhub envelope.
    NotEnvelope,
}

/// Writes messages in one format and counts them.
#[derive(Debug)]
pub struct Renderer {
    format: Format,
    palette: Palette,
    /// Messages shown so far, the running count of the pretty format.
    pub shown: u64,
    /// Of those, how many were not valid envelopes.
    pub not_envelopes: u64,
}

impl Renderer {
    pub fn new(format: Format, palette: Palette) -> Self {
        Self {
            format,
            palette,
            shown: 0,
            not_envelopes: 0,
        }
    }

    /// Writes one message; the warning for a non-envelope goes inline (pretty) or to
    /// `warnings` (json), never nowhere.
    pub fn write(
        &mut self,
        out: &mut dyn Write,
        warnings: &mut dyn Write,
        record: &Record<'_>,
    ) -> io::Result<Shown> {
        self.shown += 1;
        let parsed = record.value.map(serde_json::from_slice::<Envelope>);
        let shown = match parsed {
            Some(Ok(_)) => Shown::Envelope,
            _ => Shown::NotEnvelope,
        };
        if shown == Shown::NotEnvelope {
            self.not_envelopes += 1;
        }
        let why_not = match &parsed {
            None => Some("the value is empty (a tombstone)".to_owned()),
            Some(Err(e)) => Some(e.to_string()),
            Some(Ok(_)) => None,
        };
        match self.format {
            Format::Raw => {
                out.write_all(record.value.unwrap_or_default())?;
                out.write_all(b"\n")?;
            }
            Format::Json => {
                let line = json_line(record, parsed.and_then(Result::ok));
                serde_json::to_writer(&mut *out, &line)?;
                out.write_all(b"\n")?;
                if let Some(why) = why_not {
                    // Best effort: a closed stderr must not stop the data on stdout.
                    let _ = writeln!(
                        warnings,
                        "warning: {}[{}]@{} is not a streamhub envelope ({why}); written with \"valid_envelope\": false",
                        record.topic, record.partition, record.offset
                    );
                }
            }
            Format::Pretty => {
                let block = pretty_block(
                    self.palette,
                    self.shown,
                    record,
                    parsed.and_then(Result::ok).as_ref(),
                    why_not.as_deref(),
                );
                out.write_all(block.as_bytes())?;
            }
        }
        Ok(shown)
    }
}

fn key_text(key: Option<&[u8]>) -> Option<String> {
    key.map(|k| String::from_utf8_lossy(k).into_owned())
}

fn kafka_time(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.and_then(DateTime::from_timestamp_millis)
}

/// `{topic, partition, offset, key, timestamp, envelope}`; a value that is not an envelope
/// goes in `value` (as JSON when it parses, else as text, else as hex) beside
/// `"valid_envelope": false`.
pub fn json_line(record: &Record<'_>, envelope: Option<Envelope>) -> Value {
    let mut o = Map::new();
    o.insert("topic".into(), json!(record.topic));
    o.insert("partition".into(), json!(record.partition));
    o.insert("offset".into(), json!(record.offset));
    o.insert("key".into(), json!(key_text(record.key)));
    o.insert(
        "timestamp".into(),
        json!(
            kafka_time(record.timestamp_ms).map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        ),
    );
    match envelope {
        Some(env) => {
            o.insert("valid_envelope".into(), json!(true));
            o.insert("envelope".into(), json!(env));
        }
        None => {
            o.insert("valid_envelope".into(), json!(false));
            match record.value {
                None => {
                    o.insert("value".into(), Value::Null);
                }
                Some(bytes) => match serde_json::from_slice::<Value>(bytes) {
                    Ok(v) => {
                        o.insert("value".into(), v);
                    }
                    Err(_) => match std::str::from_utf8(bytes) {
                        Ok(s) => {
                            o.insert("value".into(), json!(s));
                        }
                        Err(_) => {
                            o.insert("value_hex".into(), json!(hex_string(bytes)));
                        }
                    },
                },
            }
        }
    }
    Value::Object(o)
}

fn hex_string(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The seed's block — topic, data type, timestamp, payload — with a running count and
/// where the message sits in Kafka.
pub fn pretty_block(
    p: Palette,
    count: u64,
    record: &Record<'_>,
    envelope: Option<&Envelope>,
    why_not: Option<&str>,
) -> String {
    let mut where_ = format!("partition {} · offset {}", record.partition, record.offset);
    if let Some(k) = key_text(record.key) {
        where_.push_str(" · key ");
        where_.push_str(&k);
    }
    let head = format!(
        "{} {} {}",
        p.bold(&format!("#{count}")),
        p.cyan(&format!("📨 {}", record.topic)),
        p.dim(&format!("[{where_}]")),
    );
    match envelope {
        Some(env) => {
            let payload = serde_json::to_string(&env.payload).unwrap_or_default();
            format!(
                "{head}\n   {} {}\n   {} {}\n   {} {}\n",
                p.dim("📦 Data Type:"),
                p.magenta(env.data_type.as_str()),
                p.dim("🕒 Timestamp:"),
                env.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true),
                p.dim("🧩 Payload:"),
                p.green(&payload),
            )
        }
        None => {
            let raw = match record.value {
                None => "(no value)".to_owned(),
                Some(bytes) => match std::str::from_utf8(bytes) {
                    Ok(s) => s.to_owned(),
                    Err(_) => format!("0x{}", hex_string(bytes)),
                },
            };
            let when = kafka_time(record.timestamp_ms)
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
                .unwrap_or_else(|| "unknown".into());
            format!(
                "{head}\n   {} {}\n   {} {}\n   {} {}\n",
                p.yellow("⚠ not a streamhub envelope:"),
                why_not.unwrap_or("unknown reason"),
                p.dim("🕒 Kafka timestamp:"),
                when,
                p.dim("🧾 Raw value:"),
                raw,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope_bytes() -> Vec<u8> {
        serde_json::to_vec(&json!({
            "topic": "sensor_data", "data_type": "sensor",
            "timestamp": "2026-11-28T18:00:00Z", "producer_id": "p1", "seq": 7,
            "payload": {"sensor_id": "42", "temperature": 25.3}
        }))
        .unwrap()
    }

    fn record<'a>(value: Option<&'a [u8]>) -> Record<'a> {
        Record {
            topic: "sensor_data",
            partition: 1,
            offset: 41,
            key: Some(b"42"),
            timestamp_ms: Some(1_795_000_000_000),
            value,
        }
    }

    fn render(format: Format, value: Option<&[u8]>) -> (String, String, Shown) {
        let mut r = Renderer::new(format, Palette::PLAIN);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let shown = r.write(&mut out, &mut err, &record(value)).unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
            shown,
        )
    }

    #[test]
    fn json_carries_position_and_envelope() {
        let bytes = envelope_bytes();
        let (out, err, shown) = render(Format::Json, Some(&bytes));
        assert_eq!(shown, Shown::Envelope);
        assert!(err.is_empty());
        assert!(out.ends_with('\n') && out.lines().count() == 1);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["topic"], "sensor_data");
        assert_eq!(v["partition"], 1);
        assert_eq!(v["offset"], 41);
        assert_eq!(v["key"], "42");
        assert_eq!(v["valid_envelope"], true);
        assert_eq!(v["envelope"]["seq"], 7);
        assert_eq!(v["envelope"]["payload"]["sensor_id"], "42");
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn json_keeps_what_is_not_an_envelope_and_warns() {
        let (out, err, shown) = render(Format::Json, Some(b"{\"hello\":1}"));
        assert_eq!(shown, Shown::NotEnvelope);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["valid_envelope"], false);
        assert_eq!(v["value"]["hello"], 1);
        assert!(err.contains("not a streamhub envelope"), "{err}");

        let (out, _, _) = render(Format::Json, Some(b"plain text"));
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["value"], "plain text");

        let (out, _, _) = render(Format::Json, Some(&[0xff, 0x00]));
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["value_hex"], "ff00");

        let (out, _, _) = render(Format::Json, None);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["value"], Value::Null);
    }

    #[test]
    fn raw_is_the_value_and_a_newline() {
        let (out, err, _) = render(Format::Raw, Some(b"abc"));
        assert_eq!(out, "abc\n");
        assert!(err.is_empty());
    }

    #[test]
    fn pretty_shows_the_seed_fields_without_colour_when_plain() {
        let bytes = envelope_bytes();
        let (out, _, _) = render(Format::Pretty, Some(&bytes));
        assert!(out.starts_with("#1 📨 sensor_data [partition 1 · offset 41 · key 42]"));
        assert!(out.contains("📦 Data Type: sensor"));
        assert!(out.contains("🕒 Timestamp: 2026-11-28T18:00:00.000Z"));
        assert!(out.contains("🧩 Payload: {\"sensor_id\":\"42\",\"temperature\":25.3}"));
        assert!(!out.contains('\x1b'));
    }

    #[test]
    fn pretty_shows_a_bad_value_raw_with_a_warning() {
        let (out, _, shown) = render(Format::Pretty, Some(b"not json"));
        assert_eq!(shown, Shown::NotEnvelope);
        assert!(out.contains("⚠ not a streamhub envelope:"), "{out}");
        assert!(out.contains("🧾 Raw value: not json"), "{out}");
    }

    #[test]
    fn colour_only_when_asked() {
        let bytes = envelope_bytes();
        let block = pretty_block(
            Palette::COLOURED,
            3,
            &record(Some(&bytes)),
            serde_json::from_slice::<Envelope>(&bytes).ok().as_ref(),
            None,
        );
        assert!(block.contains("\x1b[1;36m"));
    }
}
