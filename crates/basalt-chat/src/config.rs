//! The chat's configuration section: `[chat]` in the TOML file,
//! `BASALT_CHAT__*` in the environment.

use serde::{Deserialize, Serialize};

/// Everything tunable about the chat.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// Frames buffered per connection for a client; one that lets more pile
    /// up is closed with code 4008 (it reads too slowly).
    pub send_queue_max: usize,
    /// The most messages a resuming subscription is sent from history;
    /// a longer gap is answered `recovered: false` (page it over REST).
    pub recovery_max_messages: i64,
    /// Rate limits (`[chat.rate_limits]`).
    pub rate_limits: ChatRateLimits,
    /// A user is online while one of their connections sent a frame within
    /// this many seconds.
    pub presence_ttl_secs: u64,
}

/// Per-minute limits, per user (across nodes) and per connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatRateLimits {
    /// Messages a user (and each connection) may send per minute.
    pub sends_per_minute: u32,
    /// Typing notices a user (and each connection) may send per minute.
    pub typing_per_minute: u32,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            send_queue_max: 256,
            recovery_max_messages: 10_000,
            rate_limits: ChatRateLimits::default(),
            presence_ttl_secs: 30,
        }
    }
}

impl Default for ChatRateLimits {
    fn default() -> Self {
        Self {
            sends_per_minute: 120,
            typing_per_minute: 30,
        }
    }
}

impl ChatConfig {
    /// Checks values that would make the chat misbehave.
    pub fn validate(&self) -> Result<(), String> {
        if self.send_queue_max < 16 {
            return Err("chat.send_queue_max must be at least 16".into());
        }
        if self.recovery_max_messages < 0 {
            return Err("chat.recovery_max_messages must not be negative".into());
        }
        if self.rate_limits.sends_per_minute == 0 || self.rate_limits.typing_per_minute == 0 {
            return Err("chat.rate_limits must be at least 1 per minute".into());
        }
        if !(5..=3600).contains(&self.presence_ttl_secs) {
            return Err("chat.presence_ttl_secs must be between 5 and 3600".into());
        }
        Ok(())
    }
}
