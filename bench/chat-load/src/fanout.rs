//! `fanout`: S subscribers spread over R rooms, P publishers sending at a
//! fixed total rate, in steps. Every message body carries its step and its
//! intended send time, so each delivery's latency is measured from the
//! schedule: a publisher that falls behind (or a server that makes it wait)
//! shows up in the latency instead of hiding it (coordinated omission).
//!
//! With `--ramp`, the rate grows step by step while the server keeps up
//! (every message delivered within the drain time, p99 under a bound, no
//! errors), is refined by bisection, and then `--runs` steps measure at
//! `--fraction` (half) of the highest rate sustained.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Counters, Endpoint, Subscriber, Ws};
use crate::frames::{self, Incoming};
use crate::{CommonArgs, Result, procfs, setup};

/// Options of the `fanout` mode.
#[derive(Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The publishers' node (node A of a two-node run); default: --server.
    #[arg(long)]
    publisher_server: Option<String>,
    /// Subscribing connections, spread evenly over the rooms.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Publishing connections, spread over the rooms.
    #[arg(long, default_value_t = 10)]
    publishers: usize,
    /// Accounts that only publish (the rest only subscribe): each send
    /// moves its author's read position, which is pushed to every
    /// connection of the author, and that is not the traffic measured.
    #[arg(long, default_value_t = 4)]
    publisher_users: usize,
    /// Sends per second, all publishers together (the ramp's first step).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Raise the rate to the highest one sustained, then measure at --fraction of it.
    #[arg(long)]
    ramp: bool,
    /// Each ramp step's rate over the previous one's.
    #[arg(long, default_value_t = 1.5)]
    ramp_factor: f64,
    /// Most ramp steps.
    #[arg(long, default_value_t = 14)]
    ramp_steps: u32,
    /// Bisection steps between the last rate sustained and the first not.
    #[arg(long, default_value_t = 2)]
    refine_steps: u32,
    /// The measured runs' rate as a fraction of the highest sustained.
    #[arg(long, default_value_t = 0.5)]
    fraction: f64,
    /// Seconds of sending per step.
    #[arg(long, default_value_t = 10)]
    step_secs: u64,
    /// Seconds of sending before the measured steps (not reported).
    #[arg(long, default_value_t = 3)]
    warmup_secs: u64,
    /// Longest wait after a step's last send for its deliveries.
    #[arg(long, default_value_t = 5)]
    drain_secs: u64,
    /// Measured steps at the final rate.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// A step is sustained when at least this share of its deliveries arrived…
    #[arg(long, default_value_t = 0.99)]
    ok_ratio: f64,
    /// …with a p99 (from the intended send time) under this many ms, and no errors.
    #[arg(long, default_value_t = 500)]
    ok_p99_ms: u64,
    /// Characters of padding in each body (after the step and time stamp).
    #[arg(long, default_value_t = 48)]
    body_pad: usize,
}

/// Latency histograms count microseconds, up to a minute, 3 digits.
fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Deliveries of one step, over every subscriber.
struct StepDeliveries {
    latency: Histogram<u64>,
    delivered: u64,
    last: Option<Instant>,
}

/// Sends of one step, over every publisher.
#[derive(Default)]
struct StepSends {
    sent: u64,
    unsent: u64,
    acked: u64,
    errors: HashMap<String, u64>,
    ack_latency: Option<Histogram<u64>>,
    max_lateness: Duration,
}

/// One publishing connection.
struct Publisher {
    sink: tokio::sync::Mutex<SplitSink<Ws, Message>>,
    /// The room's id as a JSON string.
    room_json: String,
    room: usize,
    /// Sends not yet answered: id → (step, intended ns).
    pending: Mutex<HashMap<u64, (u32, u64)>>,
    next_id: AtomicU64,
}

/// What every step shares.
struct Run {
    base: Instant,
    publishers: Vec<Arc<Publisher>>,
    subscribers_in_room: Vec<u64>,
    deliveries: Arc<Mutex<HashMap<u32, StepDeliveries>>>,
    sends: Arc<Mutex<HashMap<u32, StepSends>>>,
    last_delivery_ns: Arc<AtomicU64>,
    pad: String,
    server_pids: Vec<u32>,
    aux_pids: Vec<u32>,
}

/// One step's outcome.
#[derive(Clone)]
struct StepResult {
    rate: f64,
    secs: f64,
    sent: u64,
    unsent: u64,
    acked: u64,
    errors: u64,
    error_codes: String,
    expected: u64,
    delivered: u64,
    delivered_per_s: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    ack_p99_ms: f64,
    lateness_ms: f64,
    server_cores: f64,
    aux_cores: f64,
    client_cores: f64,
    machine_busy_pct: f64,
    /// Cores busy with work that is none of the measured processes' (other people's).
    other_cores: f64,
    server_us_per_delivery: f64,
    aux_us_per_delivery: f64,
    ok: bool,
}

impl StepResult {
    fn print(&self, phase: &str, index: u32) {
        println!(
            "[{phase} {index}] {:.0} sends/s: sent {} (unsent {}), acked {}, errors {}{}; delivered {}/{} ({:.2} %) = {:.0}/s; \
             latency p50 {:.2} ms, p90 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2}; ack p99 {:.2} ms; \
             server {:.2} cores ({:.1} us/delivery), aux {:.2} cores, generator {:.2} cores, machine {:.0} % busy: {}",
            self.rate,
            self.sent,
            self.unsent,
            self.acked,
            self.errors,
            if self.error_codes.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.error_codes)
            },
            self.delivered,
            self.expected,
            100.0 * self.delivered as f64 / self.expected.max(1) as f64,
            self.delivered_per_s,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.p999_ms,
            self.max_ms,
            self.ack_p99_ms,
            self.server_cores,
            self.server_us_per_delivery,
            self.aux_cores,
            self.client_cores,
            self.machine_busy_pct,
            if self.ok {
                "sustained"
            } else {
                "NOT sustained"
            }
        );
        println!(
            "RESULT mode=fanout phase={phase} step={index} rate={:.1} secs={:.1} sent={} unsent={} acked={} errors={} \
             expected={} delivered={} delivered_per_s={:.0} p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} p999_ms={:.3} \
             max_ms={:.3} ack_p99_ms={:.3} lateness_ms={:.3} server_cores={:.3} aux_cores={:.3} client_cores={:.3} \
             machine_busy_pct={:.1} other_cores={:.3} server_us_per_delivery={:.3} aux_us_per_delivery={:.3} ok={}",
            self.rate,
            self.secs,
            self.sent,
            self.unsent,
            self.acked,
            self.errors,
            self.expected,
            self.delivered,
            self.delivered_per_s,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.p999_ms,
            self.max_ms,
            self.ack_p99_ms,
            self.lateness_ms,
            self.server_cores,
            self.aux_cores,
            self.client_cores,
            self.machine_busy_pct,
            self.other_cores,
            self.server_us_per_delivery,
            self.aux_us_per_delivery,
            u8::from(self.ok)
        );
    }
}

/// Runs the mode and prints its results.
pub async fn run(args: FanoutArgs) -> Result<()> {
    let common = &args.common;
    if args.publishers == 0 || args.subscribers == 0 {
        return Err("--publishers and --subscribers must be at least 1".into());
    }
    let fixture = setup::prepare(common).await?;
    let sub_endpoint = Arc::new(Endpoint::of(&common.server).await?);
    let pub_endpoint =
        Endpoint::of(args.publisher_server.as_deref().unwrap_or(&common.server)).await?;
    let sources = common.sources();
    // Publishers' accounts first, subscribers' after (shared if too few).
    let reserved = args.publisher_users.clamp(1, fixture.users.len());
    let (pub_users, sub_users) = if fixture.users.len() > reserved {
        fixture.users.split_at(reserved)
    } else {
        (&fixture.users[..], &fixture.users[..])
    };
    let rooms = fixture.rooms.len();

    let base = Instant::now();
    let deliveries: Arc<Mutex<HashMap<u32, StepDeliveries>>> = Arc::default();
    let last_delivery_ns = Arc::new(AtomicU64::new(0));
    let on_message: Arc<client::OnMessage> = {
        let deliveries = deliveries.clone();
        let last_delivery_ns = last_delivery_ns.clone();
        Arc::new(move |body: &str, now: Instant| {
            let Some((step, intended_ns)) = frames::parse_bench_body(body) else {
                return;
            };
            let now_ns = now.duration_since(base).as_nanos() as u64;
            last_delivery_ns.fetch_max(now_ns, Ordering::Relaxed);
            let latency_us = now_ns.saturating_sub(intended_ns) / 1000;
            if let Ok(mut steps) = deliveries.lock() {
                let entry = steps.entry(step).or_insert_with(|| StepDeliveries {
                    latency: new_histogram(),
                    delivered: 0,
                    last: None,
                });
                entry.latency.saturating_record(latency_us.max(1));
                entry.delivered += 1;
                entry.last = Some(now);
            }
        })
    };

    // Subscribers.
    let counters = Arc::new(Counters::default());
    let gate = Arc::new(Semaphore::new(common.connect_concurrency.max(1)));
    let (stop, stopped) = watch::channel(false);
    let ping = (common.ping_secs > 0).then(|| Duration::from_secs(common.ping_secs));
    let mut subscribers_in_room = vec![0u64; rooms];
    let mut tasks = Vec::with_capacity(args.subscribers);
    let started = Instant::now();
    for n in 0..args.subscribers {
        subscribers_in_room[n % rooms] += 1;
        let subscriber = Subscriber {
            endpoint: sub_endpoint.clone(),
            source: Some(sources[n % sources.len()]),
            token: sub_users[n % sub_users.len()].token.clone(),
            room: Some(fixture.rooms[n % rooms].clone()),
            ping,
        };
        tasks.push(tokio::spawn(subscriber.run(
            gate.clone(),
            counters.clone(),
            Some(on_message.clone()),
            stopped.clone(),
        )));
    }
    let deadline = started + Duration::from_secs(300);
    while (counters.established.load(Ordering::Relaxed) + counters.failed.load(Ordering::Relaxed))
        < args.subscribers as u64
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let failed = counters.failed.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(format!(
            "{failed} of {} subscribers could not connect: {}",
            args.subscribers,
            counters.samples_line()
        )
        .into());
    }
    eprintln!(
        "chat-load: {} subscribers in {rooms} rooms connected in {:.1} s",
        args.subscribers,
        started.elapsed().as_secs_f64()
    );

    // Publishers.
    let sends: Arc<Mutex<HashMap<u32, StepSends>>> = Arc::default();
    let mut publishers = Vec::with_capacity(args.publishers);
    for n in 0..args.publishers {
        let room = n % rooms;
        let ws = client::open(
            &pub_endpoint,
            Some(sources[n % sources.len()]),
            &pub_users[n % pub_users.len()].token,
        )
        .await
        .map_err(|e| format!("publisher {n}: {e}"))?;
        let (sink, stream) = ws.split();
        let publisher = Arc::new(Publisher {
            sink: tokio::sync::Mutex::new(sink),
            room_json: serde_json::to_string(&fixture.rooms[room])?,
            room,
            pending: Mutex::default(),
            next_id: AtomicU64::new(1),
        });
        tokio::spawn(read_answers(
            publisher.clone(),
            stream,
            sends.clone(),
            base,
            counters.clone(),
        ));
        publishers.push(publisher);
    }

    let run = Run {
        base,
        publishers,
        subscribers_in_room,
        deliveries,
        sends,
        last_delivery_ns,
        pad: "x".repeat(args.body_pad),
        server_pids: common.server_pids.clone(),
        aux_pids: common.aux_pids.clone(),
    };
    println!(
        "fanout: {} subscribers in {rooms} rooms ({} accounts), {} publishers ({} accounts){}",
        args.subscribers,
        sub_users.len(),
        args.publishers,
        pub_users.len(),
        args.publisher_server
            .as_deref()
            .map_or(String::new(), |p| format!(
                "; publishers on {p}, subscribers on {}",
                common.server
            ))
    );

    let mut step = 0u32;
    let final_rate = if args.ramp {
        let best = ramp(&run, &args, &mut step).await;
        let Some(best) = best else {
            return Err("not even the first rate was sustained: lower --rate".into());
        };
        best.print("max", 0);
        best.rate * args.fraction
    } else {
        args.rate
    };
    let phase = if args.ramp { "half" } else { "fixed" };
    if args.warmup_secs > 0 {
        step += 1;
        run.step(step, final_rate, args.warmup_secs, &args).await;
        quiesce(&run, Duration::from_secs(args.drain_secs)).await;
    }
    let mut results = Vec::new();
    for n in 1..=args.runs {
        step += 1;
        let result = run.step(step, final_rate, args.step_secs, &args).await;
        result.print(phase, n);
        results.push(result);
        quiesce(&run, Duration::from_secs(args.drain_secs)).await;
    }
    if !results.is_empty() {
        median_of(&results).print(&format!("{phase}-median"), args.runs);
    }
    println!(
        "RESULT mode=fanout phase=connections cores={} subscribers={} open={} dropped={} reconnects={} gaps={} duplicates={} unrecovered={} errors={}",
        procfs::cores(),
        args.subscribers,
        counters.open.load(Ordering::Relaxed),
        counters.dropped.load(Ordering::Relaxed),
        counters.reconnects.load(Ordering::Relaxed),
        counters.gaps.load(Ordering::Relaxed),
        counters.duplicates.load(Ordering::Relaxed),
        counters.unrecovered.load(Ordering::Relaxed),
        counters.errors.load(Ordering::Relaxed),
    );
    let samples = counters.samples_line();
    if !samples.is_empty() {
        println!("first failures: {samples}");
    }

    let _ = stop.send(true);
    for publisher in &run.publishers {
        let _ =
            tokio::time::timeout(Duration::from_secs(5), publisher.sink.lock().await.close()).await;
    }
    let closing = async {
        for task in tasks {
            let _ = task.await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(30), closing).await;
    Ok(())
}

/// Raises the rate while it is sustained; returns the best step.
async fn ramp(run: &Run, args: &FanoutArgs, step: &mut u32) -> Option<StepResult> {
    if args.warmup_secs > 0 {
        *step += 1;
        run.step(*step, args.rate, args.warmup_secs, args).await;
        quiesce(run, Duration::from_secs(args.drain_secs)).await;
    }
    let mut best: Option<StepResult> = None;
    let mut too_much: Option<f64> = None;
    let mut rate = args.rate;
    for n in 1..=args.ramp_steps {
        *step += 1;
        let result = run.step(*step, rate, args.step_secs, args).await;
        result.print("ramp", n);
        quiesce(run, Duration::from_secs(args.drain_secs)).await;
        if result.ok {
            best = Some(result);
            rate *= args.ramp_factor;
        } else {
            too_much = Some(rate);
            break;
        }
    }
    for n in 1..=args.refine_steps {
        let (Some(good), Some(bad)) = (best.as_ref(), too_much) else {
            break;
        };
        let rate = (good.rate + bad) / 2.0;
        *step += 1;
        let result = run.step(*step, rate, args.step_secs, args).await;
        result.print("refine", n);
        quiesce(run, Duration::from_secs(args.drain_secs)).await;
        if result.ok {
            best = Some(result);
        } else {
            too_much = Some(rate);
        }
    }
    best
}

/// Waits until no delivery arrived for a second (a backlog drained), at most `longest`.
async fn quiesce(run: &Run, longest: Duration) {
    let until = Instant::now() + longest;
    while Instant::now() < until {
        let last = run.base + Duration::from_nanos(run.last_delivery_ns.load(Ordering::Relaxed));
        if last.elapsed() >= Duration::from_secs(1) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// CPU ticks of the servers, the auxiliary processes, this process and the machine.
struct CpuSnapshot {
    at: Instant,
    servers: u64,
    aux: u64,
    own: u64,
    machine: Option<(u64, u64)>,
}

impl CpuSnapshot {
    fn take(run: &Run) -> Self {
        Self {
            at: Instant::now(),
            servers: procfs::cpu_ticks_of(&run.server_pids),
            aux: procfs::cpu_ticks_of(&run.aux_pids),
            own: procfs::cpu_ticks(std::process::id()).unwrap_or(0),
            machine: procfs::machine_ticks(),
        }
    }
}

impl Run {
    /// Sends at `rate` for `secs`, waits for the deliveries, and measures.
    async fn step(&self, step: u32, rate: f64, secs: u64, args: &FanoutArgs) -> StepResult {
        let publishers = self.publishers.len();
        let per_publisher = rate / publishers as f64;
        let interval = Duration::from_secs_f64(1.0 / per_publisher.max(1e-3));
        let count = ((per_publisher * secs as f64).round() as u64).max(1);
        let start = Instant::now() + Duration::from_millis(50);
        let cpu0 = CpuSnapshot::take(self);
        let mut handles = Vec::with_capacity(publishers);
        for (n, publisher) in self.publishers.iter().enumerate() {
            // Staggered, so that the publishers' sends interleave evenly.
            let offset = interval.mul_f64(n as f64 / publishers as f64);
            handles.push(tokio::spawn(publish(
                publisher.clone(),
                step,
                start + offset,
                interval,
                count,
                self.base,
                self.pad.clone(),
                self.sends.clone(),
            )));
        }
        let mut expected = 0;
        for (handle, publisher) in handles.into_iter().zip(&self.publishers) {
            let sent = handle.await.unwrap_or(0);
            expected += sent * self.subscribers_in_room[publisher.room];
        }
        // The deliveries, until all arrived or the drain time is over.
        let drain_until = Instant::now() + Duration::from_secs(args.drain_secs);
        loop {
            let delivered = self
                .deliveries
                .lock()
                .map(|d| d.get(&step).map_or(0, |s| s.delivered))
                .unwrap_or(0);
            if delivered >= expected || Instant::now() >= drain_until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Answers (acks) come before the deliveries in practice; a moment more for the last ones.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let cpu1 = CpuSnapshot::take(self);
        let received = self.deliveries.lock().ok().and_then(|mut d| {
            let mine = d.remove(&step);
            d.retain(|&s, _| s > step);
            mine
        });
        let sent_stats = self
            .sends
            .lock()
            .ok()
            .and_then(|mut s| s.remove(&step))
            .unwrap_or_default();
        self.measure(
            rate, secs, start, expected, received, sent_stats, &cpu0, &cpu1, args,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn measure(
        &self,
        rate: f64,
        secs: u64,
        start: Instant,
        expected: u64,
        received: Option<StepDeliveries>,
        sends: StepSends,
        cpu0: &CpuSnapshot,
        cpu1: &CpuSnapshot,
        args: &FanoutArgs,
    ) -> StepResult {
        let latency = received.as_ref().map(|r| &r.latency);
        let quantile_ms =
            |q: f64| latency.map_or(f64::NAN, |h| h.value_at_quantile(q) as f64 / 1000.0);
        let delivered = received.as_ref().map_or(0, |r| r.delivered);
        // Over the sending time, or longer if deliveries trailed behind it.
        let span = received
            .as_ref()
            .and_then(|r| r.last)
            .map_or(0.0, |last| {
                last.saturating_duration_since(start).as_secs_f64()
            })
            .max(secs as f64);
        let wall = cpu1.at.duration_since(cpu0.at).as_secs_f64().max(1e-3);
        let tick = procfs::ticks_per_second();
        let server_s = (cpu1.servers.saturating_sub(cpu0.servers)) as f64 / tick;
        let aux_s = (cpu1.aux.saturating_sub(cpu0.aux)) as f64 / tick;
        let own_s = (cpu1.own.saturating_sub(cpu0.own)) as f64 / tick;
        let machine_busy_pct = match (cpu0.machine, cpu1.machine) {
            (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
                100.0 * (b1 - b0) as f64 / (t1 - t0) as f64
            }
            _ => f64::NAN,
        };
        let errors: u64 = sends.errors.values().sum();
        let mut codes: Vec<String> = sends
            .errors
            .iter()
            .map(|(c, n)| format!("{c}: {n}"))
            .collect();
        codes.sort();
        let p99_ms = quantile_ms(0.99);
        let ok = expected > 0
            && delivered as f64 >= args.ok_ratio * expected as f64
            && p99_ms <= args.ok_p99_ms as f64
            && errors == 0
            && sends.unsent == 0;
        let per_delivery = |cpu_s: f64| {
            if delivered > 0 {
                cpu_s * 1e6 / delivered as f64
            } else {
                f64::NAN
            }
        };
        StepResult {
            rate,
            secs: secs as f64,
            sent: sends.sent,
            unsent: sends.unsent,
            acked: sends.acked,
            errors,
            error_codes: codes.join(", "),
            expected,
            delivered,
            delivered_per_s: delivered as f64 / span,
            p50_ms: quantile_ms(0.5),
            p90_ms: quantile_ms(0.9),
            p99_ms,
            p999_ms: quantile_ms(0.999),
            max_ms: latency.map_or(f64::NAN, |h| h.max() as f64 / 1000.0),
            ack_p99_ms: sends
                .ack_latency
                .as_ref()
                .map_or(f64::NAN, |h| h.value_at_quantile(0.99) as f64 / 1000.0),
            lateness_ms: sends.max_lateness.as_secs_f64() * 1000.0,
            server_cores: server_s / wall,
            aux_cores: aux_s / wall,
            client_cores: own_s / wall,
            machine_busy_pct,
            other_cores: (machine_busy_pct / 100.0 * procfs::cores() as f64
                - (server_s + aux_s + own_s) / wall)
                .max(0.0),
            server_us_per_delivery: per_delivery(server_s),
            aux_us_per_delivery: per_delivery(aux_s),
            ok,
        }
    }
}

/// One publisher's share of a step: `count` sends, one every `interval`
/// from `first`; returns how many were sent.
#[allow(clippy::too_many_arguments)]
async fn publish(
    publisher: Arc<Publisher>,
    step: u32,
    first: Instant,
    interval: Duration,
    count: u64,
    base: Instant,
    pad: String,
    sends: Arc<Mutex<HashMap<u32, StepSends>>>,
) -> u64 {
    let mut sink = publisher.sink.lock().await;
    let mut sent = 0;
    let mut max_lateness = Duration::ZERO;
    for k in 0..count {
        let intended = first + interval.mul_f64(k as f64);
        tokio::time::sleep_until(intended.into()).await;
        max_lateness = max_lateness.max(Instant::now().saturating_duration_since(intended));
        let intended_ns = intended.duration_since(base).as_nanos() as u64;
        let id = publisher.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut pending) = publisher.pending.lock() {
            pending.insert(id, (step, intended_ns));
        }
        let frame = frames::send(
            id,
            &publisher.room_json,
            &frames::bench_body(step, intended_ns, &pad),
        );
        if sink.send(Message::text(frame)).await.is_err() {
            break;
        }
        sent += 1;
    }
    if let Ok(mut steps) = sends.lock() {
        let entry = steps.entry(step).or_default();
        entry.sent += sent;
        entry.unsent += count - sent;
        entry.max_lateness = entry.max_lateness.max(max_lateness);
    }
    sent
}

/// Reads a publisher's answers: `ack` and `error` frames, matched to their sends.
async fn read_answers(
    publisher: Arc<Publisher>,
    mut stream: SplitStream<Ws>,
    sends: Arc<Mutex<HashMap<u32, StepSends>>>,
    base: Instant,
    counters: Arc<Counters>,
) {
    while let Some(frame) = stream.next().await {
        let text = match frame {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(close)) => {
                counters.note(format!(
                    "a publisher was closed: {}",
                    close.map_or("no close frame".to_owned(), |c| format!(
                        "code {} {}",
                        u16::from(c.code),
                        c.reason
                    ))
                ));
                return;
            }
            Ok(_) => continue,
            Err(e) => {
                counters.note(format!("a publisher's read failed: {e}"));
                return;
            }
        };
        let now_ns = base.elapsed().as_nanos() as u64;
        let Ok(frame) = serde_json::from_str::<Incoming>(text.as_str()) else {
            continue;
        };
        let is_ack = frame.kind == "ack";
        if !is_ack && frame.kind != "error" {
            continue;
        }
        let Some(id) = frame.id else {
            counters.note(format!(
                "a publisher got an error without id: {}",
                frame.describe_error()
            ));
            continue;
        };
        let Some((step, intended_ns)) = publisher
            .pending
            .lock()
            .ok()
            .and_then(|mut p| p.remove(&id))
        else {
            continue;
        };
        if let Ok(mut steps) = sends.lock() {
            let entry = steps.entry(step).or_default();
            if is_ack {
                entry.acked += 1;
                entry
                    .ack_latency
                    .get_or_insert_with(new_histogram)
                    .saturating_record((now_ns.saturating_sub(intended_ns) / 1000).max(1));
            } else {
                *entry
                    .errors
                    .entry(frame.code.as_deref().unwrap_or("?").to_owned())
                    .or_default() += 1;
            }
        }
        if !is_ack {
            counters.note(format!("send error: {}", frame.describe_error()));
        }
    }
}

/// Each figure's median over the runs (the "ok" of the median run by delivered/s).
fn median_of(results: &[StepResult]) -> StepResult {
    let median = |f: fn(&StepResult) -> f64| {
        let mut v: Vec<f64> = results.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    let median_u = |f: fn(&StepResult) -> u64| {
        let mut v: Vec<u64> = results.iter().map(f).collect();
        v.sort_unstable();
        v[v.len() / 2]
    };
    StepResult {
        rate: median(|r| r.rate),
        secs: median(|r| r.secs),
        sent: median_u(|r| r.sent),
        unsent: median_u(|r| r.unsent),
        acked: median_u(|r| r.acked),
        errors: median_u(|r| r.errors),
        error_codes: String::new(),
        expected: median_u(|r| r.expected),
        delivered: median_u(|r| r.delivered),
        delivered_per_s: median(|r| r.delivered_per_s),
        p50_ms: median(|r| r.p50_ms),
        p90_ms: median(|r| r.p90_ms),
        p99_ms: median(|r| r.p99_ms),
        p999_ms: median(|r| r.p999_ms),
        max_ms: median(|r| r.max_ms),
        ack_p99_ms: median(|r| r.ack_p99_ms),
        lateness_ms: median(|r| r.lateness_ms),
        server_cores: median(|r| r.server_cores),
        aux_cores: median(|r| r.aux_cores),
        client_cores: median(|r| r.client_cores),
        machine_busy_pct: median(|r| r.machine_busy_pct),
        other_cores: median(|r| r.other_cores),
        server_us_per_delivery: median(|r| r.server_us_per_delivery),
        aux_us_per_delivery: median(|r| r.aux_us_per_delivery),
        ok: results.iter().all(|r| r.ok),
    }
}
