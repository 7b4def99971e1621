//! A real SMTP server for tests: Debian's `aiosmtpd` (package
//! `python3-aiosmtpd`, installed by `bash scripts/test.sh`), storing every
//! message it accepts in a Maildir that the test reads back.
//!
//! ```ignore
//! let smtp = SmtpServer::start().await;
//! // configure Basalt with `smtp.url()`, make it send mail, then:
//! let mail = smtp.wait_for_message("alice@example.com", Duration::from_secs(10)).await;
//! assert!(mail.body.contains("https://"));
//! ```
//!
//! aiosmtpd's `Mailbox` handler writes a Maildir (one file per message,
//! written to `tmp/` and renamed into `new/`, so a file that is visible is
//! complete), not an mbox file.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine;
use tempfile::TempDir;

/// The system interpreter: the machine's default `python3` may be another
/// installation (pyenv) without Debian's aiosmtpd.
const PYTHON: &str = "/usr/bin/python3";

/// How long the server may take to start accepting connections.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running aiosmtpd on `127.0.0.1`; killed when dropped.
#[derive(Debug)]
pub struct SmtpServer {
    port: u16,
    child: Child,
    dir: TempDir,
}

/// One message as the server stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// Envelope recipients (`RCPT TO`), as recorded by aiosmtpd.
    pub rcpt_to: Vec<String>,
    /// Envelope sender (`MAIL FROM`).
    pub mail_from: String,
    /// The `From:` header, decoded.
    pub from: String,
    /// The `To:` header, decoded.
    pub to: String,
    /// The `Subject:` header, decoded (RFC 2047 encoded words).
    pub subject: String,
    /// The body as text, with its transfer encoding (quoted-printable,
    /// base64, 7bit/8bit) undone.
    pub body: String,
    /// All headers, unfolded, in order (names as written).
    pub headers: Vec<(String, String)>,
}

impl ReceivedMail {
    /// The first header named `name` (case-insensitive), decoded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether `address` is among the envelope recipients or in `To:`.
    pub fn is_for(&self, address: &str) -> bool {
        self.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(address))
            || self
                .to
                .to_ascii_lowercase()
                .contains(&address.to_ascii_lowercase())
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn check_aiosmtpd_installed() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = CHECKED.get_or_init(|| {
        if !Path::new(PYTHON).is_file() {
            return Err(format!("{PYTHON} is missing"));
        }
        let out = Command::new(PYTHON)
            .args(["-c", "import aiosmtpd"])
            .output()
            .map_err(|e| format!("cannot run {PYTHON}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{PYTHON} cannot import aiosmtpd: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    });
    if let Err(problem) = result {
        panic!(
            "the mail tests need a real SMTP server (aiosmtpd, Debian package python3-aiosmtpd): \
             {problem}. `bash scripts/test.sh` installs it, or run \
             `apt-get install python3-aiosmtpd`."
        );
    }
}

impl SmtpServer {
    /// Starts a server on a free port and waits until it accepts connections.
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    /// Starts a server on `port` (e.g. one a test configured Basalt with
    /// while no server was running) and waits until it accepts connections.
    pub async fn start_on(port: u16) -> Self {
        check_aiosmtpd_installed();
        let dir = tempfile::tempdir().expect("temp dir");
        let log = std::fs::File::create(dir.path().join("aiosmtpd.log")).expect("log file");
        let child = Command::new(PYTHON)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("maildir"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {PYTHON} -m aiosmtpd: {e}"));
        let mut server = Self { port, child, dir };
        server.wait_until_ready().await;
        server
    }

    async fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                panic!(
                    "aiosmtpd on port {} exited ({status}) before accepting connections:\n{}",
                    self.port,
                    self.log()
                );
            }
            // A greeting proves that an SMTP server answers, not merely that
            // the port is open.
            let greeting = tokio::task::spawn_blocking(move || greeting(addr))
                .await
                .expect("greeting check runs");
            if let Ok(greeting) = greeting
                && greeting.starts_with("220")
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not accept connections on port {} within {START_TIMEOUT:?}:\n{}",
                self.port,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `smtp://127.0.0.1:PORT`, for Basalt's `smtp_url`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The server's own output, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("aiosmtpd.log")).unwrap_or_default()
    }

    fn maildir(&self) -> PathBuf {
        self.dir.path().join("maildir")
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = ["new", "cur"]
            .iter()
            .filter_map(|sub| std::fs::read_dir(self.maildir().join(sub)).ok())
            .flatten()
            .flatten()
            .map(|entry| {
                let modified = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (modified, entry.path())
            })
            .collect();
        files.sort();
        files
            .iter()
            .map(|(_, path)| {
                let raw = std::fs::read(path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                parse_message(&raw)
            })
            .collect()
    }

    /// Waits (polling, up to `timeout`) for a message to `to` and returns the
    /// first one; panics listing what did arrive when none does.
    pub async fn wait_for_message(&self, to: &str, timeout: Duration) -> ReceivedMail {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if let Some(mail) = messages.iter().find(|m| m.is_for(to)) {
                return mail.clone();
            }
            if Instant::now() >= deadline {
                let seen: Vec<_> = messages
                    .iter()
                    .map(|m| format!("to {:?}: {:?}", m.rcpt_to, m.subject))
                    .collect();
                panic!(
                    "no message to {to} within {timeout:?}; received: {seen:?}\nserver log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects, reads the greeting line and says goodbye (blocking, briefly).
fn greeting(addr: SocketAddr) -> std::io::Result<String> {
    use std::io::{BufRead, Write};
    let stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = std::io::BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let _ = reader.get_mut().write_all(b"QUIT\r\n");
    Ok(line)
}

/// Parses one stored message (RFC 5322): unfolded headers, decoded body.
/// Enough for single-part text messages, which is what Basalt sends.
pub fn parse_message(raw: &[u8]) -> ReceivedMail {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((text.as_str(), ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    for (_, value) in &mut headers {
        *value = decode_encoded_words(value);
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let encoding = get("Content-Transfer-Encoding").to_ascii_lowercase();
    let body = match encoding.trim() {
        "quoted-printable" => {
            String::from_utf8_lossy(&decode_quoted_printable(body.as_bytes())).into_owned()
        }
        "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .expect("a base64 body");
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => body.to_owned(),
    };
    ReceivedMail {
        rcpt_to: get("X-RcptTo")
            .split(',')
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
            .collect(),
        mail_from: get("X-MailFrom"),
        from: get("From"),
        to: get("To"),
        subject: get("Subject"),
        body,
        headers,
    }
}

/// Undoes quoted-printable: `=XX` escapes and `=` soft line breaks.
pub fn decode_quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'=' if input.get(i + 1) == Some(&b'\n') => i += 2,
            b'=' if input.get(i + 1..i + 3) == Some(b"\r\n") => i += 3,
            b'=' => match input
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                }
                None => {
                    out.push(b'=');
                    i += 1;
                }
            },
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`);
/// whitespace between two adjacent encoded words is dropped, as the RFC says.
pub fn decode_encoded_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut pending_space = String::new();
    let mut after_word = false;
    while !rest.is_empty() {
        if let Some((decoded, consumed)) = encoded_word(rest) {
            if !after_word {
                out.push_str(&pending_space);
            }
            pending_space.clear();
            out.push_str(&decoded);
            rest = &rest[consumed..];
            after_word = true;
            continue;
        }
        let ch = rest.chars().next().expect("not empty");
        if ch.is_whitespace() {
            pending_space.push(ch);
        } else {
            out.push_str(&pending_space);
            pending_space.clear();
            out.push(ch);
            after_word = false;
        }
        rest = &rest[ch.len_utf8()..];
    }
    out.push_str(&pending_space);
    out
}

/// One encoded word at the start of `s`: its text and its length.
fn encoded_word(s: &str) -> Option<(String, usize)> {
    let inner = s.strip_prefix("=?")?;
    let (_charset, inner) = inner.split_once('?')?;
    let (encoding, inner) = inner.split_once('?')?;
    let end = inner.find("?=")?;
    let payload = &inner[..end];
    let bytes = match encoding {
        "b" | "B" => base64::engine::general_purpose::STANDARD
            .decode(payload)
            .ok()?,
        "q" | "Q" => decode_quoted_printable(payload.replace('_', " ").as_bytes()),
        _ => return None,
    };
    let consumed = s.len() - inner.len() + end + 2;
    Some((String::from_utf8_lossy(&bytes).into_owned(), consumed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_quoted_printable_message_with_folded_encoded_subject() {
        let raw = b"From: Basalt <no-reply@basalt.test>\r\n\
To: alice@example.com\r\n\
Subject: =?utf-8?b?V2VsY29tZSwg?=\r\n =?utf-8?q?=C3=85lice?=\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
X-MailFrom: no-reply@basalt.test\r\n\
X-RcptTo: alice@example.com\r\n\
\r\n\
Confirm: https://basalt.test/confirm?token=3Dabc=\r\n123 h=C3=A9llo\r\n";
        let mail = parse_message(raw);
        assert_eq!(mail.subject, "Welcome, \u{c5}lice");
        assert_eq!(
            mail.body,
            "Confirm: https://basalt.test/confirm?token=abc123 h\u{e9}llo\n"
        );
        assert_eq!(mail.rcpt_to, vec!["alice@example.com"]);
        assert!(mail.is_for("Alice@example.com"));
        assert_eq!(mail.header("x-mailfrom"), Some("no-reply@basalt.test"));
    }

    #[test]
    fn parses_base64_and_plain_bodies() {
        let b64 = parse_message(
            b"Subject: plain words\nContent-Transfer-Encoding: base64\n\naMOpbGxv\nIHdvcmxk\n",
        );
        assert_eq!(b64.subject, "plain words");
        assert_eq!(b64.body, "h\u{e9}llo world");
        let plain = parse_message(b"Subject: x\n\nline =41 stays\n");
        assert_eq!(plain.body, "line =41 stays\n");
    }
}
