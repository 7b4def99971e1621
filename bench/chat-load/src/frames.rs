//! The frames of `docs/chat-protocol.md` the harness reads and writes.
//! Incoming frames are parsed lazily: only `type`, `id` and what the
//! harness needs; `message` stays raw until it is known to be an object.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// Any server → client frame, as far as the harness looks into it.
#[derive(Deserialize)]
pub struct Incoming<'a> {
    /// The frame's `type`.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    /// The `id` of the client frame answered (the harness sends numbers).
    #[serde(default)]
    pub id: Option<u64>,
    /// `message` (an object) or, on `error`, the text.
    #[serde(default, borrow)]
    pub message: Option<&'a RawValue>,
    /// On `error`: the code.
    #[serde(default, borrow)]
    pub code: Option<Cow<'a, str>>,
    /// On `message`, `subscribed` and `ack`: the room's offset.
    #[serde(default)]
    pub offset: Option<u64>,
    /// On `message` and `subscribed`: the room's epoch.
    #[serde(default, borrow)]
    pub epoch: Option<Cow<'a, str>>,
    /// On `subscribed`: whether everything after `since` was replayed.
    #[serde(default)]
    pub recovered: Option<bool>,
}

/// The part of a `message` object the harness reads.
#[derive(Deserialize)]
pub struct MessageBody<'a> {
    /// The body as sent.
    #[serde(borrow)]
    pub body: Cow<'a, str>,
}

impl Incoming<'_> {
    /// The text of an `error` frame's `message`.
    pub fn error_text(&self) -> String {
        self.message
            .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
            .unwrap_or_default()
    }

    /// The `code` and text of an `error` frame, for messages.
    pub fn describe_error(&self) -> String {
        format!(
            "{} ({})",
            self.code.as_deref().unwrap_or("no code"),
            self.error_text()
        )
    }
}

/// `{"type":"auth","token":…}`
pub fn auth(token: &str) -> String {
    serde_json::json!({"type": "auth", "token": token}).to_string()
}

/// `{"type":"subscribe","id":…,"room":…}`, resuming after `since` if given.
pub fn subscribe(id: u64, room: &str, since: Option<(u64, &str)>) -> String {
    let mut frame = serde_json::json!({"type": "subscribe", "id": id, "room": room});
    if let Some((offset, epoch)) = since {
        frame["since"] = serde_json::json!({"offset": offset, "epoch": epoch});
    }
    frame.to_string()
}

/// `{"type":"ping"}`
pub const PING: &str = r#"{"type":"ping"}"#;

/// A `send` frame. `room_json` is the room id already written as a JSON
/// string (quoted and escaped once, not for every message).
pub fn send(id: u64, room_json: &str, body: &str) -> String {
    // The body is the harness's own ASCII text (no quotes or backslashes).
    format!(r#"{{"type":"send","id":{id},"room":{room_json},"body":"{body}"}}"#)
}

/// The body of a benchmark message: a marker, the step it belongs to, its
/// intended send time (ns since the run's clock base) and padding.
pub fn bench_body(step: u32, intended_ns: u64, pad: &str) -> String {
    format!("chatload s{step} t{intended_ns} {pad}")
}

/// The step and intended send time of a benchmark message's body.
pub fn parse_bench_body(body: &str) -> Option<(u32, u64)> {
    let mut words = body.split(' ');
    if words.next()? != "chatload" {
        return None;
    }
    let step = words.next()?.strip_prefix('s')?.parse().ok()?;
    let intended = words.next()?.strip_prefix('t')?.parse().ok()?;
    Some((step, intended))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_bodies_round_trip() {
        let body = bench_body(7, 123_456_789, "xxxx");
        assert_eq!(parse_bench_body(&body), Some((7, 123_456_789)));
        assert_eq!(parse_bench_body("hello world"), None);
    }

    #[test]
    fn message_frames_parse() -> Result<(), serde_json::Error> {
        let text = r#"{"type":"message","room":"r1","offset":42,"epoch":"e1",
            "message":{"id":1,"author":{"id":"u","username":"ann"},"body":"chatload s2 t99 x",
            "bodyHtml":"<p>x</p>","createdAt":"2026-12-04T10:00:00.000Z"}}"#;
        let frame: Incoming = serde_json::from_str(text)?;
        assert_eq!(frame.kind, "message");
        assert_eq!(frame.offset, Some(42));
        let raw = frame.message.map(RawValue::get).unwrap_or("{}");
        let message: MessageBody = serde_json::from_str(raw)?;
        assert_eq!(parse_bench_body(&message.body), Some((2, 99)));
        Ok(())
    }

    #[test]
    fn error_frames_parse() -> Result<(), serde_json::Error> {
        let text = r#"{"type":"error","id":3,"code":"RATE_LIMITED","message":"slow down"}"#;
        let frame: Incoming = serde_json::from_str(text)?;
        assert_eq!(frame.id, Some(3));
        assert_eq!(frame.describe_error(), "RATE_LIMITED (slow down)");
        Ok(())
    }

    #[test]
    fn send_frames_are_json() -> Result<(), serde_json::Error> {
        let room = serde_json::to_string("room \"1\"")?;
        let frame: serde_json::Value = serde_json::from_str(&send(5, &room, "chatload s1 t2 x"))?;
        assert_eq!(frame["room"], "room \"1\"");
        assert_eq!(frame["id"], 5);
        Ok(())
    }
}
