//! Trace context across processes: W3C `traceparent` / `tracestate` pairs, in gRPC metadata,
//! NATS headers and HTTP headers alike. With no OpenTelemetry layer installed (no OTLP
//! endpoint configured) spans carry no context: nothing is injected, nothing extracted.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The trace context of `span`, to carry on (an empty one when tracing is off).
pub fn context(span: &tracing::Span) -> Context {
    match span.is_disabled() {
        true => Context::new(),
        false => span.context(),
    }
}

/// Whether `cx` belongs to a trace.
pub fn is_traced(cx: &Context) -> bool {
    cx.span().span_context().is_valid()
}

struct Pairs(Vec<(String, String)>);

impl Injector for Pairs {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

/// The headers that carry `cx` (none when it belongs to no trace).
pub fn headers(cx: &Context) -> Vec<(String, String)> {
    let mut pairs = Pairs(Vec::new());
    if is_traced(cx) {
        opentelemetry::global::get_text_map_propagator(|p| p.inject_context(cx, &mut pairs));
    }
    pairs.0
}

/// The propagator's two headers, read once.
struct Carried([(&'static str, Option<String>); 2]);

impl Extractor for Carried {
    fn get(&self, key: &str) -> Option<&str> {
        let found = self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(key));
        found.and_then(|(_, v)| v.as_deref())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| *k).collect()
    }
}

/// The context carried in headers (`get` looks one up by its lowercase name).
pub fn extract(get: impl Fn(&str) -> Option<String>) -> Context {
    let carried = Carried(["traceparent", "tracestate"].map(|k| (k, get(k))));
    if carried.0[0].1.is_none() {
        return Context::new();
    }
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&carried))
}

/// Makes `cx` the parent of `span`, when it belongs to a trace.
pub fn set_parent(span: &tracing::Span, cx: Context) {
    if is_traced(&cx) && !span.is_disabled() {
        let _ = span.set_parent(cx);
    }
}
