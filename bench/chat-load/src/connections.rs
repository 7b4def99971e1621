//! `connections`: N idle connections, authenticated and subscribed, held
//! open; the server's memory before and after gives its cost per idle
//! connection.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Args;
use tokio::sync::{Semaphore, watch};

use crate::client::{Counters, Endpoint, Subscriber};
use crate::{CommonArgs, Result, procfs, setup};

/// Options of the `connections` mode.
#[derive(Args)]
pub struct ConnectionsArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Connections to open and hold.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Seconds to wait, idle, before each memory reading.
    #[arg(long, default_value_t = 5)]
    settle_secs: u64,
    /// Seconds to hold the connections after they are all open.
    #[arg(long, default_value_t = 20)]
    hold_secs: u64,
    /// Authenticate only, subscribe to nothing (what a subscription costs
    /// is the difference with a normal run).
    #[arg(long)]
    no_subscribe: bool,
    /// Longest time allowed for opening them all.
    #[arg(long, default_value_t = 600)]
    connect_timeout_secs: u64,
}

/// Sum of the servers' RSS (KiB); None when a pid is gone.
fn servers_rss(pids: &[u32]) -> Option<u64> {
    pids.iter().map(|&pid| procfs::rss_kib(pid)).sum()
}

/// Runs the mode and prints its result.
pub async fn run(args: ConnectionsArgs) -> Result<()> {
    let common = &args.common;
    let fixture = setup::prepare(common).await?;
    let endpoint = Arc::new(Endpoint::of(&common.server).await?);
    let sources = common.sources();
    let pids = &common.server_pids;

    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    let rss_before = servers_rss(pids);
    let own_before = procfs::own_rss_kib();

    let counters = Arc::new(Counters::default());
    let gate = Arc::new(Semaphore::new(common.connect_concurrency.max(1)));
    let (stop, stopped) = watch::channel(false);
    let ping = (common.ping_secs > 0).then(|| Duration::from_secs(common.ping_secs));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.connections);
    for n in 0..args.connections {
        let user = &fixture.users[n % fixture.users.len()];
        let subscriber = Subscriber {
            endpoint: endpoint.clone(),
            source: Some(sources[n % sources.len()]),
            token: user.token.clone(),
            room: (!args.no_subscribe).then(|| fixture.rooms[n % fixture.rooms.len()].clone()),
            ping,
        };
        tasks.push(tokio::spawn(subscriber.run(
            gate.clone(),
            counters.clone(),
            None,
            stopped.clone(),
        )));
    }

    // Wait until every connection is open or given up.
    let deadline = started + Duration::from_secs(args.connect_timeout_secs);
    let mut last_report = Instant::now();
    loop {
        let done =
            counters.established.load(Ordering::Relaxed) + counters.failed.load(Ordering::Relaxed);
        if done as usize >= args.connections || Instant::now() >= deadline {
            break;
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            eprintln!(
                "chat-load: {} open, {} failed after {:.0} s",
                counters.open.load(Ordering::Relaxed),
                counters.failed.load(Ordering::Relaxed),
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let opened = counters.open.load(Ordering::Relaxed);
    eprintln!("chat-load: {opened} connections open in {connect_secs:.1} s; holding them");

    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    let rss_open = servers_rss(pids);
    tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
    let rss_held = servers_rss(pids);
    let held = counters.open.load(Ordering::Relaxed);
    let own_held = procfs::own_rss_kib();
    let peak = pids
        .iter()
        .map(|&pid| procfs::hwm_kib(pid))
        .sum::<Option<u64>>();

    let per_conn = match (rss_before, rss_held) {
        (Some(before), Some(after)) if held > 0 => {
            Some(after.saturating_sub(before) as f64 / held as f64)
        }
        _ => None,
    };
    let show = |v: Option<u64>| v.map_or("na".to_owned(), |v| v.to_string());
    println!(
        "connections: {held} held of {} wanted ({} failed, {} dropped) after {:.0} s of holding; opened in {connect_secs:.1} s",
        args.connections,
        counters.failed.load(Ordering::Relaxed),
        counters.dropped.load(Ordering::Relaxed),
        args.hold_secs as f64,
    );
    if let Some(per_conn) = per_conn {
        println!(
            "server RSS: {} KiB before, {} KiB all open, {} KiB after holding: {per_conn:.1} KiB per idle connection",
            show(rss_before),
            show(rss_open),
            show(rss_held)
        );
    }
    let samples = counters.samples_line();
    if !samples.is_empty() {
        println!("first failures: {samples}");
    }
    println!(
        "RESULT mode=connections wanted={} held={held} opened={opened} failed={} dropped={} reconnects={} \
         connect_secs={connect_secs:.1} rss_before_kib={} rss_open_kib={} rss_held_kib={} rss_peak_kib={} \
         kib_per_conn={} client_rss_before_kib={} client_rss_held_kib={} users={} rooms={} subscribed={}",
        args.connections,
        counters.failed.load(Ordering::Relaxed),
        counters.dropped.load(Ordering::Relaxed),
        counters.reconnects.load(Ordering::Relaxed),
        show(rss_before),
        show(rss_open),
        show(rss_held),
        show(peak),
        per_conn.map_or("na".to_owned(), |v| format!("{v:.2}")),
        show(own_before),
        show(own_held),
        fixture.users.len(),
        fixture.rooms.len(),
        u8::from(!args.no_subscribe),
    );

    let _ = stop.send(true);
    let closing = async {
        for task in tasks {
            let _ = task.await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), closing)
        .await
        .is_err()
    {
        eprintln!("chat-load: some connections did not close within 30 s");
    }
    Ok(())
}
