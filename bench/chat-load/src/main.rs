//! `chat-load`: the load generator of Basalt's chat benchmark (`bench/chat.sh`).
//!
//! It speaks the protocol of `docs/chat-protocol.md` (token in the first
//! `auth` frame, `subscribe`, `send`) and has two modes:
//!
//! - `connections`: opens N authenticated connections, each subscribed to a
//!   room, holds them idle and reports the server's RSS before and after
//!   (memory per idle connection);
//! - `fanout`: S subscribers in R rooms, P publishers sending at a fixed
//!   rate. Each message's body carries its *intended* send time, so latency
//!   is measured from the schedule, not from when the publisher got round to
//!   sending (coordinated omission corrected). With `--ramp` it raises the
//!   rate step by step to the highest one the server sustains, then measures
//!   at half of it.
//!
//! Results are printed for people and as `RESULT key=value …` lines for the
//! script. Users and rooms are created through the REST API (few users, many
//! connections each: registration is rate limited and argon2 is slow).

mod client;
mod connections;
mod fanout;
mod frames;
mod procfs;
mod setup;

use std::net::Ipv4Addr;

use clap::{Args, Parser, Subcommand};

/// Errors are reported, not handled: the harness stops with a message.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// The harness's result type.
pub type Result<T> = std::result::Result<T, Error>;

#[derive(Parser)]
#[command(
    name = "chat-load",
    about = "Load generator for Basalt's chat WebSocket"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Hold N idle, authenticated, subscribed connections; memory per connection.
    Connections(connections::ConnectionsArgs),
    /// Publishers and subscribers at a target rate: delivered/s and latency.
    Fanout(fanout::FanoutArgs),
}

/// Options every mode shares: where the server is and who connects.
#[derive(Args, Clone)]
pub struct CommonArgs {
    /// The server (node B in a two-node run): set-up and subscribers.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Accounts to create (or reuse) and sign in; connections share them.
    #[arg(long, default_value_t = 20)]
    pub users: usize,
    /// Usernames are `<prefix>-<n>`, rooms `<prefix>-room-<n>`: one per run.
    #[arg(long, default_value = "chatload")]
    pub prefix: String,
    /// The accounts' password.
    #[arg(long, default_value = "correct horse battery staple")]
    pub password: String,
    /// Rooms to create; connections are spread over them.
    #[arg(long, default_value_t = 10)]
    pub rooms: usize,
    /// Source addresses 127.0.0.1 … 127.0.0.K for outgoing connections, so
    /// that ephemeral ports never run out.
    #[arg(long, default_value_t = 4)]
    pub source_addrs: u8,
    /// WebSocket handshakes in flight at once while connecting.
    #[arg(long, default_value_t = 128)]
    pub connect_concurrency: usize,
    /// Server process(es) whose RSS and CPU are read from /proc (repeatable).
    #[arg(long = "server-pid")]
    pub server_pids: Vec<u32>,
    /// Other processes whose CPU is counted (PostgreSQL, Redis; repeatable).
    #[arg(long = "aux-pid")]
    pub aux_pids: Vec<u32>,
    /// Send `{"type":"ping"}` on every connection this often (0: never).
    #[arg(long, default_value_t = 20)]
    pub ping_secs: u64,
}

impl CommonArgs {
    /// The loopback source addresses to spread connections over.
    pub fn sources(&self) -> Vec<Ipv4Addr> {
        (1..=self.source_addrs.max(1))
            .map(|n| Ipv4Addr::new(127, 0, 0, n))
            .collect()
    }
}

fn main() {
    let cli = Cli::parse();
    match procfs::raise_nofile_limit() {
        Ok(limit) => eprintln!("chat-load: open-file limit {limit}"),
        Err(e) => eprintln!("chat-load: could not raise the open-file limit: {e}"),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("chat-load: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let outcome = runtime.block_on(async {
        match cli.mode {
            Mode::Connections(args) => connections::run(args).await,
            Mode::Fanout(args) => fanout::run(args).await,
        }
    });
    if let Err(e) = outcome {
        // With its causes: reqwest's own message names only the URL.
        let mut message = e.to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            message.push_str(&format!(": {c}"));
            cause = c.source();
        }
        eprintln!("chat-load: {message}");
        std::process::exit(1);
    }
}
