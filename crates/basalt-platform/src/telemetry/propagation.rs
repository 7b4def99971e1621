//! The W3C trace context (`traceparent`) across hand-offs: written down
//! where work is handed off (an HTTP client's request, a job row, an outbox
//! row, an AMQP message header) and continued where the work is picked up,
//! so that the span doing it is a child of the span that asked for it.
//! Only `traceparent` travels (`tracestate` is not kept): one short text
//! column, one header.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The header and field name.
const TRACEPARENT: &str = "traceparent";

/// The current span's context as a `traceparent` value
/// (`00-<trace id>-<span id>-<flags>`), to store or send with work handed
/// off; `None` when traces are off or no span is current.
pub fn traceparent() -> Option<String> {
    traceparent_of(&tracing::Span::current())
}

/// `span`'s context as a `traceparent` value; `None` when traces are off or
/// `span` is disabled.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    if !super::tracing_enabled() || span.is_none() {
        return None;
    }
    let mut carrier = Carrier(None);
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    carrier.0
}

/// Makes `span` a child of the context `traceparent` names (a stored value,
/// or an incoming request's header). Nothing happens when traces are off,
/// or the value is absent or malformed: `span` then starts a trace (or goes
/// on with its contextual parent).
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    if !super::tracing_enabled() {
        return;
    }
    let Some(value) = traceparent else {
        return;
    };
    let parent = TraceContextPropagator::new().extract(&Carrier(Some(value.to_owned())));
    if parent.span().span_context().is_valid() {
        // Fails only for a span already started, which the callers' are not.
        let _ = span.set_parent(parent);
    }
}

/// A carrier holding the one header.
struct Carrier(Option<String>);

impl Injector for Carrier {
    fn set(&mut self, key: &str, value: String) {
        if key == TRACEPARENT {
            self.0 = Some(value);
        }
    }
}

impl Extractor for Carrier {
    fn get(&self, key: &str) -> Option<&str> {
        (key == TRACEPARENT).then_some(self.0.as_deref()).flatten()
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT]
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[test]
    fn a_span_continued_from_a_traceparent_is_its_child_and_passes_its_own_on() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        // The flag is process-wide; nothing else in these unit tests reads it.
        super::super::TRACING.store(true, std::sync::atomic::Ordering::Relaxed);
        tracing::subscriber::with_default(subscriber, || {
            let incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
            let span = tracing::info_span!("job");
            continue_trace(&span, Some(incoming));
            let handed_on = span.in_scope(traceparent).expect("a traceparent");
            let parts: Vec<&str> = handed_on.split('-').collect();
            assert_eq!(parts.len(), 4, "{handed_on}");
            assert_eq!(parts[0], "00");
            assert_eq!(parts[1], "0af7651916cd43dd8448eb211c80319c", "same trace");
            assert_ne!(parts[2], "b7ad6b7169203331", "its own span id");
            assert_eq!(parts[3], "01", "sampled");

            // Garbage starts a new trace instead.
            let other = tracing::info_span!("job");
            continue_trace(&other, Some("00-not-a-trace-01"));
            let fresh = other.in_scope(traceparent).expect("a traceparent");
            assert!(
                !fresh.contains("0af7651916cd43dd8448eb211c80319c"),
                "{fresh}"
            );
        });
        assert_eq!(traceparent(), None, "no span, no context");
        super::super::TRACING.store(false, std::sync::atomic::Ordering::Relaxed);
    }
}
