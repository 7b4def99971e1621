//! `basalt serve` as a child process of the test, for what only a real
//! process shows: its output, its exit status, signals, and a process-wide
//! subscriber (the trace exporter) that in-process test apps would share.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long to wait for a line or for the exit.
const WAIT: Duration = Duration::from_secs(30);

/// A running `basalt serve`; its stdout and stderr lines arrive on a channel.
pub struct ChildServer {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line read so far, in order.
    pub seen: Vec<String>,
}

impl ChildServer {
    /// Spawns `cmd serve`.
    pub fn start(cmd: &mut Command) -> Self {
        let mut child = cmd
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns");
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`.
    pub fn wait_for(&mut self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(WAIT) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line containing {needle:?}; output so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The base URL (`http://` or `https://`) announced on the start-up line.
    pub fn base_url(&mut self) -> String {
        let line = self.wait_for("ready:");
        let start = line
            .find("docs http")
            .expect("docs URL on the startup line")
            + "docs ".len();
        let url = &line[start..];
        let end = url.find("/docs").expect("docs path");
        url[..end].to_owned()
    }

    /// Sends SIGTERM and waits for the exit; then every line written by
    /// then is in [`ChildServer::seen`].
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .expect("kill runs")
                .success()
        );
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("did not exit within {WAIT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // The readers stop at the pipes' end, which the exit closes.
        while let Ok(line) = self.lines.recv_timeout(WAIT) {
            self.seen.push(line);
        }
        status
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
