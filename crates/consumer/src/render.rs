//! How a message is shown: the seed's labelled block (pretty), one JSON object per line,
//! or the raw value.

use std::io::{self, IsTerminal, Write};

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use serde::de::Visitor;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;
use streamhub_model::EnvelopeOf;
use streamhub_model::schema::{self, SchemaError};

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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// A streamhub envelope checked in place: the fields and types of
/// [`streamhub_model::Envelope`], but strings are only validated and the payload only
/// delimited, so checking a message allocates nothing and the value can be written out
/// as it came.
pub type EnvelopeView<'a> = EnvelopeOf<JsonString, EnvelopeTime, &'a RawValue>;

/// Accepts exactly the values that parse as a [`streamhub_model::Envelope`].
pub fn parse_envelope(bytes: &[u8]) -> serde_json::Result<EnvelopeView<'_>> {
    // One UTF-8 check of the whole value is cheaper than one per string; on invalid
    // UTF-8 the byte parser says where.
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// Any JSON string, checked but not kept.
#[derive(Debug)]
pub struct JsonString;

impl<'de> Deserialize<'de> for JsonString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Check;
        impl Visitor<'_> for Check {
            type Value = JsonString;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<JsonString, E> {
                Ok(JsonString)
            }
        }
        deserializer.deserialize_str(Check)
    }
}

/// The envelope's time, as chrono deserialises a `DateTime<Utc>`, with a fast path for
/// the strict RFC 3339 form producers write.
#[derive(Debug)]
pub struct EnvelopeTime(pub DateTime<Utc>);

impl<'de> Deserialize<'de> for EnvelopeTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        envelope_time(deserializer).map(EnvelopeTime)
    }
}

fn envelope_time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    struct Time;
    impl Visitor<'_> for Time {
        type Value = DateTime<Utc>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an RFC 3339 formatted date and time string")
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<DateTime<Utc>, E> {
            match parse_strict_rfc3339(text) {
                Some(t) => Ok(t),
                None => text
                    .parse::<DateTime<FixedOffset>>()
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(E::custom),
            }
        }
    }
    deserializer.deserialize_str(Time)
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)` with every field in range; `None` for anything
/// else, which chrono then judges (leap seconds, lower case, a space for `T`, ...).
fn parse_strict_rfc3339(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    let number = |at: usize, width: usize| -> Option<i64> {
        let digits = b.get(at..at + width)?;
        digits.iter().try_fold(0i64, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (number(0, 4)?, number(5, 2)?, number(8, 2)?);
    let (hour, minute, second) = (number(11, 2)?, number(14, 2)?, number(17, 2)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=month_days).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0i64;
    if b[at] == b'.' {
        let start = at + 1;
        at = start;
        while at < b.len() && b[at].is_ascii_digit() {
            at += 1;
        }
        let width = at - start;
        if width == 0 || width > 9 {
            return None;
        }
        nanos = number(start, width)? * 10i64.pow((9 - width) as u32);
    }
    let offset = match b.get(at..)? {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (number(at + 1, 2)?, number(at + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let seconds = h * 3600 + m * 60;
            if *sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    DateTime::from_timestamp(seconds, nanos as u32)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (year 0 or later;
/// H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
    /// Whether each message is checked against its data type's schema ([`Self::validating`]).
    validate: bool,
    /// Of the messages shown, how many broke their schema or were no envelope; counted
    /// only when validating.
    pub invalid: u64,
    /// The JSON line being built, reused for every message.
    line: Vec<u8>,
    /// The last topic seen and its JSON string: consecutive messages mostly share it.
    topic: String,
    topic_json: Vec<u8>,
}

impl Renderer {
    pub fn new(format: Format, palette: Palette) -> Self {
        Self {
            format,
            palette,
            shown: 0,
            not_envelopes: 0,
            validate: false,
            invalid: 0,
            line: Vec::with_capacity(1024),
            topic: String::new(),
            topic_json: b"\"\"".to_vec(),
        }
    }

    /// Also checks each message against the JSON Schema of its envelope's data type and
    /// reports where it breaks it: `invalid:` lines (pretty), `schema_errors` (json) or on
    /// `warnings` (raw). A value that is no envelope is invalid too.
    pub fn validating(mut self) -> Self {
        self.validate = true;
        self
    }

    /// Where a message breaks its schema: `None` unless validating.
    fn schema_errors(
        &self,
        parsed: &Option<serde_json::Result<EnvelopeView<'_>>>,
    ) -> Option<Vec<SchemaError>> {
        if !self.validate {
            return None;
        }
        Some(match parsed {
            Some(Ok(view)) => match serde_json::from_str::<Value>(view.payload.get()) {
                Ok(payload) => schema::validate(view.data_type, &payload),
                // Cannot happen: the view delimited valid JSON.
                Err(e) => vec![SchemaError {
                    path: String::new(),
                    message: e.to_string(),
                }],
            },
            _ => vec![SchemaError {
                path: String::new(),
                message: format!(
                    "not a streamhub envelope: {}",
                    why_not(parsed).unwrap_or_default()
                ),
            }],
        })
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
        let parsed = record.value.map(parse_envelope);
        let envelope = match &parsed {
            Some(Ok(view)) => Some(view),
            _ => None,
        };
        let shown = if envelope.is_some() {
            Shown::Envelope
        } else {
            self.not_envelopes += 1;
            Shown::NotEnvelope
        };
        let errors = self.schema_errors(&parsed);
        if errors.as_ref().is_some_and(|e| !e.is_empty()) {
            self.invalid += 1;
        }
        match self.format {
            Format::Raw => {
                out.write_all(record.value.unwrap_or_default())?;
                out.write_all(b"\n")?;
                for e in errors.iter().flatten() {
                    let _ = writeln!(
                        warnings,
                        "invalid: {}[{}]@{}: {e}",
                        record.topic, record.partition, record.offset
                    );
                }
            }
            Format::Json => {
                self.line.clear();
                self.json_line(record, envelope.is_some(), errors.as_deref())?;
                out.write_all(&self.line)?;
                if let Some(why) = why_not(&parsed) {
                    // Best effort: a closed stderr must not stop the data on stdout.
                    let _ = writeln!(
                        warnings,
                        "warning: {}[{}]@{} is not a streamhub envelope ({why}); written with \"valid_envelope\": false",
                        record.topic, record.partition, record.offset
                    );
                }
            }
            Format::Pretty => {
                let mut block = pretty_block(
                    self.palette,
                    self.shown,
                    record,
                    envelope,
                    why_not(&parsed).as_deref(),
                );
                // A value that is no envelope says so above already.
                if envelope.is_some() {
                    for e in errors.iter().flatten() {
                        block.push_str(&format!("   {} {e}\n", self.palette.red("✖ invalid:")));
                    }
                }
                out.write_all(block.as_bytes())?;
            }
        }
        Ok(shown)
    }

    /// Appends `{topic, partition, offset, key, timestamp, valid_envelope, envelope}` and a
    /// newline to the line buffer. A valid envelope goes in as it came (made compact when
    /// it spans lines); a value that is not an envelope goes in `value` (as JSON when it
    /// parses, else as text) or `value_hex`. When validating, `schema_errors` follows:
    /// `[{path, message}]`, empty for a valid message.
    fn json_line(
        &mut self,
        record: &Record<'_>,
        valid_envelope: bool,
        schema_errors: Option<&[SchemaError]>,
    ) -> io::Result<()> {
        if self.topic != record.topic {
            self.topic.clear();
            self.topic.push_str(record.topic);
            self.topic_json.clear();
            serde_json::to_writer(&mut self.topic_json, record.topic)?;
        }
        let line = &mut self.line;
        line.extend_from_slice(b"{\"topic\":");
        line.extend_from_slice(&self.topic_json);
        line.extend_from_slice(b",\"partition\":");
        serde_json::to_writer(&mut *line, &record.partition)?;
        line.extend_from_slice(b",\"offset\":");
        serde_json::to_writer(&mut *line, &record.offset)?;
        line.extend_from_slice(b",\"key\":");
        match record.key {
            None => line.extend_from_slice(b"null"),
            Some(k) => serde_json::to_writer(&mut *line, &String::from_utf8_lossy(k))?,
        }
        line.extend_from_slice(b",\"timestamp\":");
        match record.timestamp_ms {
            Some(ms) if push_rfc3339_millis(line, ms) => {}
            _ => line.extend_from_slice(b"null"),
        }
        match record.value {
            Some(value) if valid_envelope => {
                line.extend_from_slice(b",\"valid_envelope\":true,\"envelope\":");
                push_compact_json(line, value);
            }
            None => line.extend_from_slice(b",\"valid_envelope\":false,\"value\":null"),
            Some(value) => {
                line.extend_from_slice(b",\"valid_envelope\":false,");
                if serde_json::from_slice::<&RawValue>(value).is_ok() {
                    line.extend_from_slice(b"\"value\":");
                    push_compact_json(line, value);
                } else if let Ok(text) = std::str::from_utf8(value) {
                    line.extend_from_slice(b"\"value\":");
                    serde_json::to_writer(&mut *line, text)?;
                } else {
                    line.extend_from_slice(b"\"value_hex\":\"");
                    line.extend_from_slice(hex_string(value).as_bytes());
                    line.push(b'"');
                }
            }
        }
        if let Some(errors) = schema_errors {
            line.extend_from_slice(b",\"schema_errors\":");
            serde_json::to_writer(&mut *line, errors)?;
        }
        line.extend_from_slice(b"}\n");
        Ok(())
    }
}

/// Why a value is not shown as an envelope; `None` when it is one.
fn why_not(parsed: &Option<serde_json::Result<EnvelopeView<'_>>>) -> Option<String> {
    match parsed {
        None => Some("the value is empty (a tombstone)".to_owned()),
        Some(Err(e)) => Some(e.to_string()),
        Some(Ok(_)) => None,
    }
}

/// Appends valid JSON on one line: as it is, or without its whitespace outside strings
/// when it spans lines (inside strings JSON has no raw line breaks, only escapes).
fn push_compact_json(line: &mut Vec<u8>, json: &[u8]) {
    if !has_line_break(json) {
        line.extend_from_slice(json);
        return;
    }
    let (mut in_string, mut escaped) = (false, false);
    for &b in json {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            line.push(b);
        } else if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            in_string = b == b'"';
            line.push(b);
        }
    }
}

/// Whether `\n` or `\r` occurs: one pass in 16-byte chunks, which the compiler vectorises.
fn has_line_break(bytes: &[u8]) -> bool {
    let (chunks, tail) = bytes.as_chunks::<16>();
    chunks.iter().any(|c| {
        c.iter()
            .fold(false, |found, &b| found | (b == b'\n') | (b == b'\r'))
    }) || tail.iter().any(|&b| b == b'\n' || b == b'\r')
}

/// Latest millisecond written by the fast path: 9999-12-31T23:59:59.999Z.
const LAST_FOUR_DIGIT_YEAR_MS: i64 = 253_402_300_799_999;

/// Appends `"YYYY-MM-DDTHH:MM:SS.mmmZ"`, as chrono's RFC 3339 with milliseconds, for a
/// time in milliseconds since the epoch; `false` (nothing appended) when out of range.
fn push_rfc3339_millis(line: &mut Vec<u8>, ms: i64) -> bool {
    if !(0..=LAST_FOUR_DIGIT_YEAR_MS).contains(&ms) {
        return match kafka_time(Some(ms)) {
            Some(t) => {
                line.push(b'"');
                line.extend_from_slice(t.to_rfc3339_opts(SecondsFormat::Millis, true).as_bytes());
                line.push(b'"');
                true
            }
            None => false,
        };
    }
    let (days, in_day) = (ms / 86_400_000, ms % 86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (secs, millis) = (in_day / 1000, in_day % 1000);
    let mut text = *b"\"0000-00-00T00:00:00.000Z\"";
    let mut put = |at: usize, width: usize, mut n: i64| {
        for i in (at..at + width).rev() {
            text[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(1, 4, year);
    put(6, 2, month);
    put(9, 2, day);
    put(12, 2, secs / 3600);
    put(15, 2, secs / 60 % 60);
    put(18, 2, secs % 60);
    put(21, 3, millis);
    line.extend_from_slice(&text);
    true
}

/// (year, month, day) of a day counted from 1970-01-01 (not negative), in the proleptic
/// Gregorian calendar (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn key_text(key: Option<&[u8]>) -> Option<String> {
    key.map(|k| String::from_utf8_lossy(k).into_owned())
}

fn kafka_time(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.and_then(DateTime::from_timestamp_millis)
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
    envelope: Option<&EnvelopeView<'_>>,
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
            // Compact, keys in order: the same text whatever spacing the producer used.
            let payload = serde_json::from_str::<Value>(env.payload.get())
                .map(|v| v.to_string())
                .unwrap_or_else(|_| env.payload.get().to_owned());
            format!(
                "{head}\n   {} {}\n   {} {}\n   {} {}\n",
                p.dim("📦 Data Type:"),
                p.magenta(env.data_type.as_str()),
                p.dim("🕒 Timestamp:"),
                env.timestamp.0.to_rfc3339_opts(SecondsFormat::Millis, true),
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
    use serde_json::json;
    use streamhub_model::Envelope;

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

    fn payment_bytes(amount: f64) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "topic": "payments", "data_type": "payment",
            "timestamp": "2026-11-28T18:00:00Z", "producer_id": "p1", "seq": 1,
            "payload": {
                "transaction_id": "txn-0123456789abcdef0123", "account": "acct-12345678",
                "amount": amount, "currency": "EUR", "merchant": "IKEA", "category": "home",
                "method": "card", "status": "completed", "failure_reason": null,
            }
        }))
        .unwrap()
    }

    fn render_validating(format: Format, value: &[u8]) -> (String, String, u64) {
        let mut r = Renderer::new(format, Palette::PLAIN).validating();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        r.write(&mut out, &mut err, &record(Some(value))).unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
            r.invalid,
        )
    }

    #[test]
    fn validating_reports_each_broken_field() {
        let (out, _, invalid) = render_validating(Format::Pretty, &payment_bytes(-3.0));
        assert_eq!(invalid, 1);
        assert!(
            out.contains("✖ invalid: /amount: -3.0 is less than or equal to the minimum of 0"),
            "{out}"
        );
        let (out, _, invalid) = render_validating(Format::Pretty, &payment_bytes(12.5));
        assert_eq!(invalid, 0);
        assert!(!out.contains("invalid"), "{out}");

        let (out, err, invalid) = render_validating(Format::Json, &payment_bytes(-3.0));
        assert_eq!(invalid, 1);
        assert!(err.is_empty(), "{err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["schema_errors"][0]["path"], "/amount", "{v}");
        let (out, _, _) = render_validating(Format::Json, &payment_bytes(12.5));
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["schema_errors"], json!([]), "{v}");
        // Without --validate the line is as before.
        let (out, _, _) = render(Format::Json, Some(&payment_bytes(-3.0)));
        assert!(!out.contains("schema_errors"), "{out}");

        let (out, err, _) = render_validating(Format::Raw, &payment_bytes(-3.0));
        assert!(out.starts_with('{'), "{out}");
        assert!(
            err.starts_with("invalid: sensor_data[1]@41: /amount: "),
            "{err}"
        );

        // A value that is no envelope is invalid too.
        let (out, _, invalid) = render_validating(Format::Json, b"plain text");
        assert_eq!(invalid, 1);
        let v: Value = serde_json::from_str(&out).unwrap();
        let message = v["schema_errors"][0]["message"].as_str().unwrap();
        assert!(message.starts_with("not a streamhub envelope"), "{v}");
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
            parse_envelope(&bytes).ok().as_ref(),
            None,
        );
        assert!(block.contains("\x1b[1;36m"));
    }

    #[test]
    fn the_view_accepts_exactly_what_parses_as_an_envelope() {
        let valid = String::from_utf8(envelope_bytes()).unwrap();
        let cases = [
            valid.as_str(),
            r#"{"topic":"t\u0041","data_type":"logs","timestamp":"2026-11-28T18:00:00.123456789+02:00","producer_id":"p\n","seq":0,"payload":null,"extra":[1]}"#,
            r#"["t","sensor","2026-11-28T18:00:00Z","p",1,{"a":1}]"#,
            r#"{"topic":"t","data_type":"sensor","timestamp":"2026-11-28T18:00:00Z","producer_id":"p","seq":1}"#,
            r#"{"topic":"t","data_type":"sensors","timestamp":"2026-11-28T18:00:00Z","producer_id":"p","seq":1,"payload":{}}"#,
            r#"{"topic":"t","data_type":"sensor","timestamp":"yesterday","producer_id":"p","seq":1,"payload":{}}"#,
            r#"{"topic":"t","data_type":"sensor","timestamp":"2026-11-28T18:00:00Z","producer_id":"p","seq":-1,"payload":{}}"#,
            r#"{"topic":7,"data_type":"sensor","timestamp":"2026-11-28T18:00:00Z","producer_id":"p","seq":1,"payload":{}}"#,
            r#"{"topic":"t","topic":"u","data_type":"sensor","timestamp":"2026-11-28T18:00:00Z","producer_id":"p","seq":1,"payload":{}}"#,
            r#"{"topic":"t","data_type":"sensor","timestamp":"2026-11-28T18:00:00Z","producer_id":"p","seq":1,"payload":{"a":}}"#,
            r#"{"topic":"t","data_type":"sensor","timestamp":"2026-11-28T18:00:00Z","producer_id":"p","seq":1,"payload":{}} x"#,
            "{}",
            "",
        ];
        let mut accepted = 0;
        for case in cases {
            let view = parse_envelope(case.as_bytes()).is_ok();
            let envelope = serde_json::from_str::<Envelope>(case).is_ok();
            assert_eq!(view, envelope, "{case}");
            accepted += usize::from(view);
        }
        assert_eq!(accepted, 3, "the valid cases are accepted");
        let bad_utf8 = b"{\"topic\":\"\xff\",\"data_type\":\"sensor\",\"timestamp\":\"2026-11-28T18:00:00Z\",\"producer_id\":\"p\",\"seq\":1,\"payload\":{}}";
        assert!(parse_envelope(bad_utf8).is_err());
        assert!(serde_json::from_slice::<Envelope>(bad_utf8).is_err());
    }

    #[test]
    fn json_line_keeps_the_envelope_as_it_came_in_field_order() {
        let bytes = envelope_bytes();
        let (out, _, _) = render(Format::Json, Some(&bytes));
        let expected = format!(
            "{{\"topic\":\"sensor_data\",\"partition\":1,\"offset\":41,\"key\":\"42\",\"timestamp\":\"2026-11-18T11:06:40.000Z\",\"valid_envelope\":true,\"envelope\":{}}}\n",
            String::from_utf8(bytes).unwrap()
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn an_envelope_over_several_lines_is_written_on_one() {
        let pretty = serde_json::to_string_pretty(&json!({
            "topic": "sensor_data", "data_type": "sensor",
            "timestamp": "2026-11-28T18:00:00Z", "producer_id": "p 1", "seq": 7,
            "payload": {"note": "a \"quoted\" \\ text\nwith an escaped break", "list": [1, 2]}
        }))
        .unwrap();
        let crlf = pretty.replace('\n', "\r\n");
        for value in [pretty, crlf] {
            let (out, err, shown) = render(Format::Json, Some(value.as_bytes()));
            assert_eq!(shown, Shown::Envelope);
            assert!(err.is_empty());
            assert_eq!(out.lines().count(), 1, "{out}");
            assert!(!out.trim_end_matches('\n').contains(['\n', '\r']), "{out}");
            let line: Value = serde_json::from_str(&out).unwrap();
            let original: Value = serde_json::from_str(&value).unwrap();
            assert_eq!(line["envelope"], original);
            assert!(
                out.contains(r#""producer_id":"p 1""#),
                "spaces in strings stay: {out}"
            );
        }
    }

    #[test]
    fn envelope_times_are_read_as_chrono_reads_them() {
        let mut samples: Vec<String> = [
            "2026-11-28T18:00:00Z",
            "2026-11-28T18:00:00.1Z",
            "2026-11-28T18:00:00.123456789Z",
            "2026-11-28T18:00:00.1234567891Z",
            "2026-11-28T18:00:00.Z",
            "2026-11-28T18:00:00+02:00",
            "2026-11-28T18:00:00.5-09:30",
            "2026-11-28T18:00:00-00:00",
            "2026-11-28T18:00:00+23:59",
            "2026-11-28T18:00:00+24:00",
            "2026-11-28T18:00:00+0200",
            "2026-11-28t18:00:00z",
            "2026-11-28 18:00:00Z",
            "2026-11-28T18:00:60Z",
            "2026-11-28T24:00:00Z",
            "2026-11-28T18:60:00Z",
            "2024-02-29T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2000-02-29T23:59:59.999Z",
            "2026-04-31T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-10T00:00:00Z",
            "2026-01-00T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "0000-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59.999999999-12:00",
            "1969-12-31T23:59:59Z",
            "+2026-11-28T18:00:00Z",
            "2026-11-28T18:00:00",
            "2026-11-28T18:00:00Zjunk",
            "2026-1-28T18:00:00Z",
            "",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        // Every day of 1999..=2001 and a spread of later years, at various times.
        for days in (10_592..11_688).chain((20_000..2_900_000).step_by(997)) {
            let t = DateTime::from_timestamp(
                days * 86_400 + days % 86_400,
                (days % 1000) as u32 * 1_000_000,
            )
            .unwrap();
            samples.push(t.to_rfc3339_opts(SecondsFormat::AutoSi, true));
            samples.push(
                t.with_timezone(&FixedOffset::west_opt(3 * 3600 + 1800).unwrap())
                    .to_rfc3339(),
            );
        }
        let mut fast_hits = 0;
        for text in &samples {
            let chrono = text
                .parse::<DateTime<FixedOffset>>()
                .ok()
                .map(|t| t.with_timezone(&Utc));
            let fast = parse_strict_rfc3339(text);
            if fast.is_some() {
                assert_eq!(fast, chrono, "{text}");
                fast_hits += 1;
            }
            let json = serde_json::to_string(text).unwrap();
            let mut de = serde_json::Deserializer::from_str(&json);
            assert_eq!(envelope_time(&mut de).ok(), chrono, "{text}");
        }
        assert!(
            fast_hits > samples.len() * 9 / 10,
            "the fast path takes the usual forms: {fast_hits} of {}",
            samples.len()
        );
    }

    #[test]
    fn line_breaks_are_found_anywhere() {
        for len in 0..40 {
            let mut bytes = vec![b'a'; len];
            assert!(!has_line_break(&bytes));
            for at in 0..len {
                for brk in [b'\n', b'\r'] {
                    bytes[at] = brk;
                    assert!(has_line_break(&bytes), "{len} {at}");
                    bytes[at] = b'a';
                }
            }
        }
    }

    #[test]
    fn kafka_time_is_written_as_chrono_writes_it() {
        let mut samples = vec![
            0,
            1,
            999,
            86_399_999,
            951_782_400_000,   // 2000-02-29
            4_107_542_400_000, // 2100-03-01
            1_795_000_000_123,
            LAST_FOUR_DIGIT_YEAR_MS,
            LAST_FOUR_DIGIT_YEAR_MS + 1,
            -1,
            -62_135_596_800_000, // 0001-01-01
        ];
        let mut x: i64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            // xorshift: spread over 1970..=9999 without a dependency.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            samples.push(x.rem_euclid(LAST_FOUR_DIGIT_YEAR_MS + 1));
        }
        for ms in samples {
            let mut line = Vec::new();
            assert!(push_rfc3339_millis(&mut line, ms));
            let expected = DateTime::from_timestamp_millis(ms)
                .unwrap()
                .to_rfc3339_opts(SecondsFormat::Millis, true);
            assert_eq!(
                String::from_utf8(line).unwrap(),
                format!("\"{expected}\""),
                "{ms}"
            );
        }
        let mut line = Vec::new();
        assert!(!push_rfc3339_millis(&mut line, i64::MAX));
        assert!(line.is_empty());
    }

    #[test]
    fn json_escapes_topic_and_key_and_reuses_the_topic_between_topics() {
        let bytes = envelope_bytes();
        let mut r = Renderer::new(Format::Json, Palette::PLAIN);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        for topic in ["a", "b", "a"] {
            let rec = Record {
                topic,
                key: Some(b"k\"\n\xff"),
                timestamp_ms: None,
                ..record(Some(&bytes))
            };
            r.write(&mut out, &mut err, &rec).unwrap();
        }
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let topics: Vec<&str> = lines.iter().map(|l| l["topic"].as_str().unwrap()).collect();
        assert_eq!(topics, ["a", "b", "a"]);
        assert_eq!(lines[0]["key"], "k\"\n\u{fffd}");
        assert_eq!(lines[0]["timestamp"], Value::Null);
    }
}
