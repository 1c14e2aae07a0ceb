//! `tracing` layers that record events and spans with their fields.
//!
//! Tests assert on what a user relies on: the structured fields of an
//! event (`attempts = 4`, `level = WARN`), not on how a formatter happened
//! to print them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::DefaultGuard;
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Field values rendered as text: strings as they are, everything else
/// with `Debug` (so `4`, `true`, `Some(..)`).
type Fields = BTreeMap<String, String>;

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

fn text(fields: &Fields) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

// ===== events =====

/// One `tracing` event as [`Events`] saw it.
#[derive(Debug, Clone)]
pub struct Event {
    /// The event's level.
    pub level: Level,
    /// The event's target (by default its module path).
    pub target: String,
    /// The name of the span the event happened in, if any.
    pub span: Option<String>,
    /// Every field, `message` included, rendered as text.
    pub fields: BTreeMap<String, String>,
}

impl Event {
    /// The `message` field, or `""`.
    pub fn message(&self) -> &str {
        self.field("message").unwrap_or("")
    }

    /// The field called `name`, rendered as text.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// Every field as `name=value`, for checks that nothing secret appears
    /// anywhere.
    pub fn all_text(&self) -> String {
        text(&self.fields)
    }
}

/// A `tracing` layer recording every event it is given, with its fields.
/// Clones share the record.
#[derive(Debug, Clone, Default)]
pub struct Events(Arc<Mutex<Vec<Event>>>);

impl Events {
    /// Every event so far.
    pub fn all(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    /// The events at `level`.
    pub fn at(&self, level: Level) -> Vec<Event> {
        self.filter(|e| e.level == level)
    }

    /// The events whose message is exactly `message`.
    pub fn with_message(&self, message: &str) -> Vec<Event> {
        self.filter(|e| e.message() == message)
    }

    /// The events for which `keep` is true.
    pub fn filter(&self, keep: impl Fn(&Event) -> bool) -> Vec<Event> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| keep(e))
            .cloned()
            .collect()
    }

    /// Every field of every event, one event a line.
    pub fn all_text(&self) -> String {
        self.all()
            .iter()
            .map(Event::all_text)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Forgets the events recorded so far.
    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Events {
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        event.record(&mut Visitor(&mut fields));
        let span = ctx.event_span(event).map(|span| span.name().to_owned());
        self.0.lock().unwrap().push(Event {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            span,
            fields,
        });
    }
}

// ===== spans =====

/// One span as [`Spans`] saw it: its fields as given at creation plus
/// every later `record`.
#[derive(Debug, Clone)]
pub struct SpanRecord {
    /// The span's id (unique among the spans open at one time).
    pub id: u64,
    /// The span's name.
    pub name: &'static str,
    /// The name of its parent span, if any.
    pub parent: Option<&'static str>,
    /// Every field recorded so far, rendered as text.
    pub fields: BTreeMap<String, String>,
}

impl SpanRecord {
    /// The field called `name`, rendered as text.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// Every field as `name=value`.
    pub fn all_text(&self) -> String {
        text(&self.fields)
    }
}

/// A `tracing` layer keeping every span with its fields. Clones share the
/// record.
#[derive(Debug, Clone, Default)]
pub struct Spans(Arc<Mutex<Vec<SpanRecord>>>);

impl Spans {
    /// Every span so far, in creation order.
    pub fn all(&self) -> Vec<SpanRecord> {
        self.0.lock().unwrap().clone()
    }

    /// The spans called `name`.
    pub fn named(&self, name: &str) -> Vec<SpanRecord> {
        let spans = self.0.lock().unwrap();
        spans.iter().filter(|s| s.name == name).cloned().collect()
    }

    /// Every field of every span, one span a line.
    pub fn all_text(&self) -> String {
        self.all()
            .iter()
            .map(SpanRecord::all_text)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        attrs.record(&mut Visitor(&mut fields));
        let parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map(|parent| parent.name());
        self.0.lock().unwrap().push(SpanRecord {
            id: id.into_u64(),
            name: attrs.metadata().name(),
            parent,
            fields,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut spans = self.0.lock().unwrap();
        // Ids are reused once a span closes: the latest span with it.
        if let Some(span) = spans.iter_mut().rev().find(|s| s.id == id.into_u64()) {
            values.record(&mut Visitor(&mut span.fields));
        }
    }
}

/// Installs, for the current thread until the guard drops, a subscriber
/// recording every event and span (all targets, all levels).
///
/// With `#[tokio::test]` (a current-thread runtime) this sees everything
/// the test's tasks do; a multi-thread runtime's workers need the layers
/// installed on a subscriber of their own.
pub fn capture() -> (Events, Spans, DefaultGuard) {
    let events = Events::default();
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry()
        .with(spans.clone())
        .with(events.clone())
        .with(tracing_subscriber::filter::LevelFilter::TRACE);
    let guard = tracing::subscriber::set_default(subscriber);
    (events, spans, guard)
}
