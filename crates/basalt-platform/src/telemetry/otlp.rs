//! The OTLP exporter, configured by the standard OpenTelemetry environment
//! variables (outside Basalt's `BASALT_*` configuration, so that the same
//! settings as for every other service of a deployment apply):
//!
//! - `OTEL_EXPORTER_OTLP_ENDPOINT` (`http://collector:4318`; spans go to
//!   its `/v1/traces`) or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full
//!   URL): either turns traces on; neither, `OTEL_SDK_DISABLED=true` or
//!   `OTEL_TRACES_EXPORTER=none` leaves them off;
//! - `OTEL_EXPORTER_OTLP_PROTOCOL` / `…_TRACES_PROTOCOL`: only
//!   `http/protobuf` (the default) is supported; anything else refuses to
//!   start rather than send nothing;
//! - `OTEL_EXPORTER_OTLP_HEADERS` / `…_TRACES_HEADERS` (`key=value,…`, e.g.
//!   a collector's API key), `OTEL_EXPORTER_OTLP_COMPRESSION` /
//!   `…_TRACES_COMPRESSION` (`gzip`), `OTEL_EXPORTER_OTLP_TIMEOUT` /
//!   `…_TRACES_TIMEOUT` (milliseconds, default 10000);
//! - `OTEL_SERVICE_NAME` (default `basalt`), `OTEL_RESOURCE_ATTRIBUTES`;
//! - `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` (default
//!   `parentbased_always_on`); health probes and `/metrics` are never sampled;
//! - `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_MAX_QUEUE_SIZE`,
//!   `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, `OTEL_BSP_EXPORT_TIMEOUT`: the batch
//!   processor (export every 5 s, or at 512 spans).
//!
//! The batch processor runs on a thread of its own and waits for each
//! export there; the requests themselves are sent by reqwest on the
//! server's Tokio runtime ([`OnRuntime`]), so that no second runtime or
//! blocking client is needed. HTTPS endpoints are verified against the
//! system's certificates.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::trace::{Link, SpanKind, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    Config, SamplingDecision, SamplingResult, SdkTracerProvider, ShouldSample,
};

/// A configured exporter.
pub(super) struct Exporter {
    pub provider: SdkTracerProvider,
    /// Where spans go, for the start-up log line.
    pub endpoint: String,
}

/// The exporter the environment asks for, or `None` when it asks for none.
pub(super) fn from_env() -> anyhow::Result<Option<Exporter>> {
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let endpoint = match (
        var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        var("OTEL_EXPORTER_OTLP_ENDPOINT"),
    ) {
        (Some(full), _) => full,
        (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
        (None, None) => return Ok(None),
    };
    let off = |name: &str, value: &str| var(name).is_some_and(|v| v.eq_ignore_ascii_case(value));
    if off("OTEL_SDK_DISABLED", "true") || off("OTEL_TRACES_EXPORTER", "none") {
        return Ok(None);
    }
    if let Some(protocol) = var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .filter(|p| p != "http/protobuf")
    {
        anyhow::bail!(
            "OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not supported: Basalt exports traces \
             over http/protobuf only (collectors accept it on port 4318)"
        );
    }
    url::Url::parse(&endpoint)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .with_context(|| format!("the OTLP traces endpoint {endpoint:?} is not an http(s) URL"))?;
    let timeout = var("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
        .or_else(|| var("OTEL_EXPORTER_OTLP_TIMEOUT"))
        .and_then(|ms| ms.parse().ok())
        .map_or(Duration::from_secs(10), Duration::from_millis);

    crate::server::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .context("cannot build the OTLP exporter's HTTP client")?;
    let runtime = tokio::runtime::Handle::try_current()
        .context("the OTLP exporter needs the Tokio runtime")?;
    // Headers and compression come from the environment through the builder.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint.clone())
        .with_timeout(timeout)
        .with_http_client(OnRuntime {
            client,
            runtime,
            endpoint: endpoint.clone(),
            failing: AtomicBool::new(false),
        })
        .build()
        .context("cannot configure the OTLP traces exporter")?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(SkipProbes(Config::default().sampler))
        .with_resource(resource())
        .build();
    Ok(Some(Exporter { provider, endpoint }))
}

/// `service.name` from the environment, else `basalt`; the version.
fn resource() -> Resource {
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.trim().is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    let builder = Resource::builder()
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    if named {
        builder.build()
    } else {
        builder.with_service_name("basalt").build()
    }
}

/// Routes whose requests are not traced: probes and scrapes, which come
/// every few seconds from machines and would bury the traces of users.
const UNTRACED_ROUTES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The configured sampler (`OTEL_TRACES_SAMPLER`), except that requests to
/// [`UNTRACED_ROUTES`] are dropped, and with them (parent-based sampling)
/// the database spans of the readiness check.
#[derive(Debug, Clone)]
struct SkipProbes(Box<dyn ShouldSample>);

impl ShouldSample for SkipProbes {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let probe = *span_kind == SpanKind::Server
            && attributes.iter().any(|kv| {
                kv.key.as_str() == "http.route"
                    && UNTRACED_ROUTES.contains(&kv.value.as_str().as_ref())
            });
        if probe {
            return SamplingResult {
                decision: SamplingDecision::Drop,
                attributes: Vec::new(),
                trace_state: Default::default(),
            };
        }
        self.0
            .should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

/// The exporter's HTTP client: reqwest, run on the server's runtime. The
/// batch processor waits on its own thread, outside any runtime, for the
/// spawned request. It says when the collector stops and starts taking
/// spans (the SDK itself logs nothing): once, not at every batch.
#[derive(Debug)]
struct OnRuntime {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
    endpoint: String,
    /// Whether the last export failed.
    failing: AtomicBool,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let sent = self
            .runtime
            .spawn(async move { client.send_bytes(request).await })
            .await
            .map_err(HttpError::from)
            .and_then(|answer| answer);
        let problem = match &sent {
            Ok(response) if response.status().is_success() => None,
            Ok(response) => Some(format!("the collector answered {}", response.status())),
            Err(error) => Some(error.to_string()),
        };
        match problem {
            Some(error) if !self.failing.swap(true, Ordering::Relaxed) => tracing::warn!(
                endpoint = self.endpoint,
                error,
                "cannot export traces; spans are dropped while this lasts"
            ),
            None if self.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!(endpoint = self.endpoint, "exporting traces again");
            }
            _ => {}
        }
        sent
    }
}
