//! Logs and traces.
//!
//! Logs: text for people, JSON for log shippers (`log_format`), filtered by
//! `log_level`.
//!
//! Traces: OpenTelemetry over OTLP/HTTP, for `basalt serve` only, and off
//! unless the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set ([`otlp`] says what else is
//! read from the environment). The spans are `tracing` spans, exported by
//! `tracing-opentelemetry`: a server span per HTTP request
//! (`http/observe.rs`), a span per `with_conn!`/`with_tx!` block inside a
//! traced operation (`db/mod.rs`), a span per job run (`jobs/worker.rs`) and
//! per event delivered to a consumer (`events/mod.rs`). The W3C trace context
//! crosses the job queue and the event bus in the job and outbox rows and the
//! AMQP headers ([`propagation`]), so one request's trace goes on through the
//! work it handed off. With traces on, every log line written inside a span
//! carries its `trace_id` and `span_id`. With traces off, nothing of this
//! runs: code that exists only for traces asks [`tracing_enabled`] first.

mod otlp;
mod propagation;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::dispatcher::{Dispatch, WeakDispatch};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::fmt::format::{FmtSpan, Writer};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, filter};

use crate::config::LogFormat;

pub use propagation::{continue_trace, traceparent, traceparent_of};

// The macros of `db/mod.rs` make their spans in the crates that use them.
#[doc(hidden)]
pub use tracing as __tracing;

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    /// The server: logs are its output (twelve-factor).
    Stdout,
    /// One-shot commands: stdout carries the command's result.
    Stderr,
}

/// Whether this process exports traces. Set once the exporting subscriber is
/// installed, cleared when [`Telemetry::shutdown`] begins.
static TRACING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported. Code that exists only for traces (extra span
/// fields, database spans, trace context written with a job or an event)
/// asks this first, so that it costs nothing with traces off.
pub fn tracing_enabled() -> bool {
    TRACING.load(Ordering::Relaxed)
}

/// Installs the global subscriber for logs only (one-shot commands). Safe to
/// call more than once (tests); later calls do nothing.
pub fn init(format: LogFormat, filter: &str, target: LogTarget) {
    install(format, filter, target, None);
}

/// The exporter of a server's traces; see [`init_server`].
#[must_use = "call `shutdown` at exit, or the last spans are lost"]
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// Installs the global subscriber for `basalt serve`: logs on stdout, and
/// traces exported over OTLP when the environment configures an endpoint.
/// Call inside the Tokio runtime (the exporter sends its requests on it),
/// and call [`Telemetry::shutdown`] before the runtime ends.
///
/// Fails when the OTLP settings in the environment are unusable (an
/// unsupported protocol, a malformed endpoint): whoever set them wants
/// traces, so Basalt does not start silently without them.
pub fn init_server(format: LogFormat, filter: &str) -> anyhow::Result<Telemetry> {
    let exporter = otlp::from_env()?;
    let provider = exporter.as_ref().map(|e| e.provider.clone());
    let installed = install(format, filter, LogTarget::Stdout, provider.as_ref());
    match exporter {
        Some(exporter) if installed => {
            TRACING.store(true, Ordering::Relaxed);
            tracing::info!(endpoint = %exporter.endpoint, "exporting traces over OTLP");
            Ok(Telemetry { provider })
        }
        Some(exporter) => {
            // A subscriber was already installed (tests): nothing would reach
            // this exporter.
            let _ = exporter.provider.shutdown();
            Ok(Telemetry { provider: None })
        }
        None => Ok(Telemetry { provider: None }),
    }
}

impl Telemetry {
    /// Stops tracing and sends the spans still buffered, waiting for the
    /// collector's answer (at most `OTEL_BSP_EXPORT_TIMEOUT`, 30 s by
    /// default). Call after the server's graceful shutdown.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        TRACING.store(false, Ordering::Relaxed);
        // The flush blocks its thread until the export is answered, and the
        // export runs on this runtime: wait for it from a blocking thread.
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(Ok(())) => tracing::debug!("traces flushed"),
            Ok(Err(error)) => tracing::warn!(%error, "cannot flush the last traces"),
            Err(error) => tracing::warn!(%error, "cannot flush the last traces"),
        }
    }
}

/// Builds and installs the subscriber; `false` if one was installed already.
fn install(
    format: LogFormat,
    filter: &str,
    target: LogTarget,
    provider: Option<&SdkTracerProvider>,
) -> bool {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a person at a terminal, never into log files.
    let (ansi, writer) = match target {
        LogTarget::Stdout => (
            std::io::stdout().is_terminal(),
            BoxMakeWriter::new(std::io::stdout),
        ),
        LogTarget::Stderr => (
            std::io::stderr().is_terminal(),
            BoxMakeWriter::new(std::io::stderr),
        ),
    };
    let ids = provider.map(|_| TraceIds::default());
    // The log filter applies to the log lines alone: `log_level = "warn"`
    // does not switch the request spans off for the exporter.
    let logs = log_layer(format, ids.clone(), ansi, writer).with_filter(filter);
    let traces = provider.map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("basalt"))
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_filter(filter::filter_fn(exported).with_max_level_hint(Level::INFO))
    });
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(logs).with(traces));
    if let Some(ids) = ids {
        ids.install(&dispatch);
    }
    dispatch.try_init().is_ok()
}

/// What the exporter sees: Basalt's own spans (no library's), and the
/// warnings and errors logged inside them, which become span events.
fn exported(metadata: &Metadata<'_>) -> bool {
    if metadata.is_span() {
        metadata.target().starts_with("basalt") && *metadata.level() <= Level::INFO
    } else {
        *metadata.level() <= Level::WARN
    }
}

/// The log lines' layer: text or JSON, with trace ids when `ids` is given.
fn log_layer<S>(
    format: LogFormat,
    ids: Option<TraceIds>,
    ansi: bool,
    writer: BoxMakeWriter,
) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let layer = tracing_subscriber::fmt::layer()
        .with_span_events(FmtSpan::NONE)
        .with_target(true)
        .with_ansi(ansi)
        .with_writer(writer);
    match (format, ids) {
        (LogFormat::Text, None) => layer.boxed(),
        (LogFormat::Text, Some(ids)) => layer
            .map_event_format(|inner| WithTraceIds {
                inner,
                json: false,
                ids,
            })
            .boxed(),
        (LogFormat::Json, ids) => {
            let layer = layer
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false);
            match ids {
                Some(ids) => layer
                    .map_event_format(|inner| WithTraceIds {
                        inner,
                        json: true,
                        ids,
                    })
                    .boxed(),
                None => layer.boxed(),
            }
        }
    }
}

/// Reads the OpenTelemetry ids of `tracing` spans from the subscriber that
/// holds the exporting layer. The log layer is part of that subscriber, so
/// it learns of it once the subscriber is built ([`TraceIds::install`]);
/// while formatting an event, `tracing`'s current dispatcher is not
/// available (it guards against subscribers that log themselves).
#[derive(Clone, Default)]
struct TraceIds(Arc<OnceLock<WeakDispatch>>);

impl TraceIds {
    fn install(&self, dispatch: &Dispatch) {
        let _ = self.0.set(dispatch.downgrade());
    }

    /// The trace and span ids of the span `id`, in hex.
    fn of(&self, id: &tracing::span::Id) -> Option<(String, String)> {
        let dispatch = self.0.get()?.upgrade()?;
        let cx = tracing_opentelemetry::get_otel_context(id, &dispatch)?;
        let span = cx.span();
        let context = span.span_context();
        context.is_valid().then(|| {
            (
                context.trace_id().to_string(),
                context.span_id().to_string(),
            )
        })
    }
}

/// An event format that adds the trace and span ids of the event's span to
/// what `inner` writes: first fields `trace_id` and `span_id` of a JSON
/// object, ` trace_id=… span_id=…` at the end of a text line. (The line is
/// formatted into a buffer first, which loses a terminal's colours: traced
/// servers write their logs to files and collectors, not to people.)
struct WithTraceIds<F> {
    inner: F,
    json: bool,
    ids: TraceIds,
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let Some((trace_id, span_id)) = ctx.parent_span().and_then(|span| self.ids.of(&span.id()))
        else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        if self.json
            && let Some(rest) = line.strip_prefix('{')
        {
            write!(
                writer,
                "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\""
            )?;
            if !rest.starts_with('}') {
                writer.write_char(',')?;
            }
            writer.write_str(rest)
        } else {
            let text = line.strip_suffix('\n').unwrap_or(&line);
            writeln!(writer, "{text} trace_id={trace_id} span_id={span_id}")
        }
    }
}

/// The span of one `with_conn!`/`with_tx!` block, named after the module
/// that runs it (`with_tx basalt_blog::store`), or no span at all when
/// traces are off or the block runs outside any span (a background loop's
/// polling would otherwise make a trace of its own every few milliseconds).
/// The span is not entered: it lives as long as the block, which is its
/// duration, and is never the current span of another task.
#[doc(hidden)]
#[macro_export]
macro_rules! __db_span {
    ($block:literal) => {
        if $crate::telemetry::tracing_enabled()
            && !$crate::telemetry::__tracing::Span::current().is_none()
        {
            $crate::telemetry::__tracing::info_span!(
                target: "basalt::db",
                "db",
                otel.name = concat!($block, " ", module_path!()),
                otel.kind = "client",
                db.system.name = $crate::telemetry::__tracing::field::Empty,
            )
        } else {
            $crate::telemetry::__tracing::Span::none()
        }
    };
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    use super::*;

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        fn lines(&self) -> Vec<String> {
            let bytes = self.0.lock().expect("buffer").clone();
            String::from_utf8(bytes)
                .expect("utf-8")
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    /// Logs `message` inside a request span through the server's layers
    /// (no exporter: spans still get ids); returns the lines and the
    /// span's trace and span ids.
    fn log_in_a_span(format: LogFormat) -> (Vec<String>, String, String) {
        let buffer = Buffer::default();
        let provider = SdkTracerProvider::builder().build();
        let writer = {
            let buffer = buffer.clone();
            BoxMakeWriter::new(move || buffer.clone())
        };
        let ids = TraceIds::default();
        let subscriber = Dispatch::new(
            tracing_subscriber::registry()
                .with(
                    log_layer(format, Some(ids.clone()), false, writer)
                        .with_filter(EnvFilter::new("info")),
                )
                .with(
                    tracing_opentelemetry::layer()
                        .with_tracer(provider.tracer("test"))
                        .with_filter(filter::filter_fn(exported)),
                ),
        );
        ids.install(&subscriber);
        let ids = tracing::dispatcher::with_default(&subscriber, || {
            let span = tracing::info_span!("request", request_id = "r-1");
            span.in_scope(|| tracing::info!(answer = 42, "inside"));
            tracing::info!("outside");
            let cx = span.context();
            let otel = cx.span();
            let context = otel.span_context();
            (
                context.trace_id().to_string(),
                context.span_id().to_string(),
            )
        });
        (buffer.lines(), ids.0, ids.1)
    }

    #[test]
    fn a_json_log_line_carries_the_trace_and_span_id_of_its_span() {
        let (lines, trace_id, span_id) = log_in_a_span(LogFormat::Json);
        assert_eq!(lines.len(), 2, "{lines:?}");
        let inside: serde_json::Value = serde_json::from_str(&lines[0]).expect("JSON");
        assert_eq!(inside["trace_id"], trace_id.as_str(), "{}", lines[0]);
        assert_eq!(inside["span_id"], span_id.as_str());
        assert_eq!(trace_id.len(), 32);
        assert_ne!(trace_id, "0".repeat(32));
        assert_eq!(inside["message"], "inside");
        assert_eq!(inside["answer"], 42);
        assert_eq!(inside["span"]["request_id"], "r-1");
        // Outside any span there is no trace to name.
        let outside: serde_json::Value = serde_json::from_str(&lines[1]).expect("JSON");
        assert!(outside.get("trace_id").is_none(), "{}", lines[1]);
        assert_eq!(outside["message"], "outside");
    }

    #[test]
    fn a_text_log_line_ends_with_the_trace_id() {
        let (lines, trace_id, span_id) = log_in_a_span(LogFormat::Text);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].ends_with(&format!(" trace_id={trace_id} span_id={span_id}")),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("inside"), "{}", lines[0]);
        assert!(!lines[1].contains("trace_id"), "{}", lines[1]);
    }
}
