//! Set-up through the REST API: accounts (`/api/auth/register`, then an
//! access token from `/api/auth/token`), public rooms (`POST
//! /api/chat/rooms`) and memberships (`POST /api/chat/rooms/{id}/join`).
//! Everything is idempotent per prefix, so a second run with the same
//! prefix reuses what the first created.

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::{CommonArgs, Result};

/// A signed-in account.
#[derive(Clone)]
pub struct User {
    /// An access token for the `auth` frame.
    pub token: String,
}

/// What the load runs on.
pub struct Fixture {
    /// Signed-in accounts, every one a member of every room.
    pub users: Vec<User>,
    /// Room ids, as the WebSocket frames name them.
    pub rooms: Vec<String>,
}

/// Creates (or finds) the accounts and rooms and signs everyone in.
pub async fn prepare(args: &CommonArgs) -> Result<Fixture> {
    let started = Instant::now();
    let http = Client::builder().timeout(Duration::from_secs(60)).build()?;
    let base = args.server.trim_end_matches('/');
    if args.users == 0 || args.rooms == 0 {
        return Err("--users and --rooms must be at least 1".into());
    }
    let mut users = Vec::with_capacity(args.users);
    // One at a time: argon2 hashing is the server's slow part and it runs
    // one hash per core anyway.
    for n in 1..=args.users {
        let username = format!("{}-{n}", args.prefix);
        let token = sign_up_or_in(&http, base, &username, &args.password).await?;
        users.push(User { token });
    }
    let owner = users.first().ok_or("no users")?.clone();
    let mut rooms = Vec::with_capacity(args.rooms);
    for n in 1..=args.rooms {
        let name = format!("{}-room-{n}", args.prefix);
        rooms.push(create_or_find_room(&http, base, &owner.token, &name).await?);
    }
    for user in users.iter().skip(1) {
        for room in &rooms {
            join(&http, base, &user.token, room).await?;
        }
    }
    eprintln!(
        "chat-load: {} users signed in, {} rooms ready in {:.1} s",
        users.len(),
        rooms.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(Fixture { users, rooms })
}

async fn sign_up_or_in(
    http: &Client,
    base: &str,
    username: &str,
    password: &str,
) -> Result<String> {
    let email = format!("{username}@example.com");
    let answer = http
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": email, "username": username, "password": password}))
        .send()
        .await?;
    let status = answer.status();
    // 422: taken, i.e. created by an earlier run with this prefix.
    if !status.is_success() && status != StatusCode::UNPROCESSABLE_ENTITY {
        let text = answer.text().await.unwrap_or_default();
        let hint = if status == StatusCode::TOO_MANY_REQUESTS {
            " (raise BASALT_IDENTITY__RATE_LIMITS__REGISTER_PER_IP_PER_HOUR)"
        } else {
            ""
        };
        return Err(format!("registering {username}: {status} {text}{hint}").into());
    }
    let answer = http
        .post(format!("{base}/api/auth/token"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await?;
    let status = answer.status();
    let text = answer.text().await?;
    if !status.is_success() {
        return Err(format!("signing in {username}: {status} {text}").into());
    }
    let body: Value = serde_json::from_str(&text)?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no access_token in {text}").into())
}

/// A room's id from an answer that is the room, or wraps it as `room`.
fn room_id(room: &Value) -> Option<String> {
    let id = room.get("id").or_else(|| room.get("room")?.get("id"))?;
    match id {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

async fn create_or_find_room(http: &Client, base: &str, token: &str, name: &str) -> Result<String> {
    let answer = http
        .post(format!("{base}/api/chat/rooms"))
        .bearer_auth(token)
        .json(&json!({"name": name, "kind": "public"}))
        .send()
        .await?;
    let status = answer.status();
    let text = answer.text().await?;
    if status.is_success() {
        let room: Value = serde_json::from_str(&text)?;
        return room_id(&room).ok_or_else(|| format!("no room id in {text}").into());
    }
    // Perhaps an earlier run's: look it up among the caller's rooms.
    let listed = http
        .get(format!("{base}/api/chat/rooms"))
        .bearer_auth(token)
        .send()
        .await?;
    if listed.status().is_success() {
        let list: Value = listed.json().await?;
        let rooms = list.get("rooms").unwrap_or(&list);
        if let Some(found) = rooms
            .as_array()
            .into_iter()
            .flatten()
            .find(|room| room.get("name").and_then(Value::as_str) == Some(name))
            .and_then(room_id)
        {
            return Ok(found);
        }
    }
    Err(format!("creating room {name}: {status} {text}").into())
}

async fn join(http: &Client, base: &str, token: &str, room: &str) -> Result<()> {
    let answer = http
        .post(format!("{base}/api/chat/rooms/{room}/join"))
        .bearer_auth(token)
        .send()
        .await?;
    let status = answer.status();
    // 409: a member already (a second run with the same prefix).
    if status.is_success() || status == StatusCode::CONFLICT {
        return Ok(());
    }
    let text = answer.text().await.unwrap_or_default();
    Err(format!("joining room {room}: {status} {text}").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_are_read_from_either_shape() {
        assert_eq!(room_id(&json!({"id": "abc"})).as_deref(), Some("abc"));
        assert_eq!(room_id(&json!({"room": {"id": 7}})).as_deref(), Some("7"));
        assert_eq!(room_id(&json!({"name": "x"})), None);
    }
}
