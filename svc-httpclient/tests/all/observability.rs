//! Spans, events, observer hooks, and secrets kept out of all of them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use svc_httpclient::{
    AttemptEnd, AttemptObserver, AttemptStart, Client, Config, Outcome, StatusCode, header, reqwest,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Instrument, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::support::{self, LogBuffer};

#[derive(Debug, Clone)]
struct SpanRecord {
    id: u64,
    name: &'static str,
    parent: Option<&'static str>,
    fields: BTreeMap<&'static str, String>,
}

/// A layer keeping every span with its fields.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<SpanRecord>>>);

impl Spans {
    fn named(&self, name: &str) -> Vec<SpanRecord> {
        let spans = self.0.lock().unwrap();
        spans.iter().filter(|s| s.name == name).cloned().collect()
    }
}

struct Fields<'a>(&'a mut BTreeMap<&'static str, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
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
        if let Some(span) = spans.iter_mut().rev().find(|s| s.id == id.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }
}

/// Installs a subscriber capturing spans and every log line (all targets,
/// TRACE) for the current thread.
fn capture() -> (Spans, LogBuffer, tracing::subscriber::DefaultGuard) {
    let spans = Spans::default();
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::registry()
        .with(spans.clone())
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(logs.clone())
                .with_ansi(false),
        )
        .with(tracing_subscriber::filter::LevelFilter::TRACE);
    let guard = tracing::subscriber::set_default(subscriber);
    (spans, logs, guard)
}

fn client(config: Config) -> Client {
    Client::new(config.circuit_breaker(None).retry_budget(None)).unwrap()
}

#[tokio::test(start_paused = true)]
async fn one_client_span_per_attempt_as_a_child_of_the_caller() {
    let (spans, logs, _guard) = capture();
    let server = support::statuses(&[503, 200]).await;
    let url = server.url("/users/7?full=1");
    let resp = client(Config::default())
        .get(&url)
        .into_future()
        .instrument(tracing::info_span!("caller"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let attempts = spans.named("HTTP GET");
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    let port = server.addr().port().to_string();
    for (i, span) in attempts.iter().enumerate() {
        assert_eq!(span.parent, Some("caller"));
        let f = &span.fields;
        assert_eq!(f["otel.kind"], "client");
        assert_eq!(f["otel.name"], "GET");
        assert_eq!(f["http.request.method"], "GET");
        assert_eq!(f["server.address"], "127.0.0.1");
        assert_eq!(f["server.port"], port);
        assert_eq!(f["url.full"], url);
        if i == 0 {
            assert_eq!(f["http.response.status_code"], "503");
            assert_eq!(f["error.type"], "503");
            assert!(!f.contains_key("http.request.resend_count"));
        } else {
            assert_eq!(f["http.response.status_code"], "200");
            assert!(!f.contains_key("error.type"));
            assert_eq!(f["http.request.resend_count"], "1");
        }
    }
    let logs = logs.contents();
    let retry = logs
        .lines()
        .find(|l| l.contains("retrying request"))
        .expect("a retry event");
    assert!(retry.contains("DEBUG"), "{retry}");
    assert!(
        retry.contains("attempt=1") && retry.contains("reason=\"503\""),
        "{retry}"
    );
    assert!(retry.contains("wait_ms="), "{retry}");
    assert!(!logs.contains("http call failed"), "the call succeeded");
}

#[tokio::test(start_paused = true)]
async fn one_warning_per_failed_call() {
    let (_spans, logs, _guard) = capture();
    let addr = support::closed_port();
    let err = client(Config::default())
        .post(format!("http://{addr}/orders"), &1)
        .await
        .unwrap_err();
    assert_eq!(err.attempts(), 4);
    let logs = logs.contents();
    let warnings: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("http call failed"))
        .collect();
    assert_eq!(warnings.len(), 1, "{logs}");
    let warning = warnings[0];
    assert!(warning.contains("method=\"POST\""), "{warning}");
    assert!(
        warning.contains(&format!("http://{addr}/orders")),
        "{warning}"
    );
    assert!(warning.contains("attempts=4"), "{warning}");
    assert!(warning.contains("could not connect"), "{warning}");
    assert_eq!(logs.matches("retrying request").count(), 3);
}

#[tokio::test(start_paused = true)]
async fn credentials_never_appear_in_errors_or_logs() {
    let (spans, logs, _guard) = capture();
    let server = support::always(503).await;
    let mut defaults = header::HeaderMap::new();
    defaults.insert(header::COOKIE, "session=c00kie-value".parse().unwrap());
    defaults.insert(
        header::PROXY_AUTHORIZATION,
        "Basic cHJveHk6cHJveHlwYXNz".parse().unwrap(),
    );
    let config = Config::default().default_headers(defaults);
    assert!(!format!("{config:?}").contains("c00kie"));
    let client = client(config);
    assert!(!format!("{client:?}").contains("c00kie"));

    // Credentials in the URL: sent as basic auth, never shown.
    let with_password = server
        .url("/secret")
        .replace("http://", "http://alice:hunter2@");
    let resp = client.get(&with_password).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(server.seen()[0].headers.contains_key("authorization"));
    assert_eq!(server.seen()[0].headers["cookie"], "session=c00kie-value");

    // A bearer token.
    client
        .get(server.url("/secret"))
        .bearer_auth("tok3n-s3cr3t")
        .await
        .unwrap();

    // Errors with credentials in the URL.
    let closed = format!("http://alice:hunter2@{}/secret", support::closed_port());
    let err = client.get(&closed).await.unwrap_err();
    let timeout = client
        .get(&with_password)
        .timeout(std::time::Duration::from_millis(1))
        .await;
    let mut texts = vec![
        err.to_string(),
        format!("{err:?}"),
        err.url().unwrap().to_string(),
    ];
    if let Err(e) = timeout {
        texts.push(format!("{e} {e:?}"));
    }
    let mut execute = reqwest::Request::new(
        reqwest::Method::GET,
        reqwest::Url::parse(&with_password).unwrap(),
    );
    execute
        .headers_mut()
        .insert(header::AUTHORIZATION, "Bearer raw-t0ken".parse().unwrap());
    client.execute(execute).await.unwrap();
    let bad = client.get("http://alice:hunter2@[::1/").await.unwrap_err();
    texts.push(format!("{bad} {bad:?}"));
    for span in spans.named("HTTP GET") {
        texts.push(format!("{:?}", span.fields));
    }
    texts.push(logs.contents());
    assert!(logs.contents().contains("http call failed"));
    for text in &texts {
        for secret in [
            "hunter2",
            "tok3n-s3cr3t",
            "raw-t0ken",
            "c00kie",
            "cHJveHk6cHJveHlwYXNz",
            "YWxpY2U6aHVudGVyMg", // base64 of alice:hunter2
        ] {
            assert!(!text.contains(secret), "{secret} leaked in: {text}");
        }
    }
}

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
}

impl AttemptObserver for Recorder {
    fn on_attempt_start(&self, request: &mut reqwest::Request, attempt: &AttemptStart<'_>) {
        let span = tracing::Span::current();
        let name = span.metadata().map(|m| m.name()).unwrap_or("none");
        self.events
            .lock()
            .unwrap()
            .push(format!("start {} in {name}", attempt.resend_count()));
        request.headers_mut().insert(
            "x-attempt",
            attempt.resend_count().to_string().parse().unwrap(),
        );
    }

    fn on_attempt_end(&self, attempt: &AttemptEnd<'_>) {
        let span = tracing::Span::current();
        let name = span.metadata().map(|m| m.name()).unwrap_or("none");
        self.events.lock().unwrap().push(format!(
            "end {} {} {:?} {:?} {:?} retry={} in {name} {}",
            attempt.resend_count(),
            attempt.method(),
            attempt.status().map(|s| s.as_u16()),
            attempt.error_type(),
            attempt.outcome(),
            attempt.will_retry(),
            attempt.url(),
        ));
    }
}

#[tokio::test(start_paused = true)]
async fn observer_hooks_run_inside_the_attempt_span() {
    let (_spans, _logs, _guard) = capture();
    let server = support::statuses(&[503, 404]).await;
    let recorder = Arc::new(Recorder::default());
    let client = client(Config::default().observer(recorder.clone()));
    let url = server.url("/x").replace("http://", "http://u:hunter2@");
    let resp = client.get(&url).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let clean = server.url("/x");
    assert_eq!(
        *recorder.events.lock().unwrap(),
        [
            "start 0 in HTTP GET".to_owned(),
            format!("end 0 GET Some(503) Some(\"503\") Failure retry=true in HTTP GET {clean}"),
            "start 1 in HTTP GET".to_owned(),
            format!("end 1 GET Some(404) Some(\"404\") Ignored retry=false in HTTP GET {clean}"),
        ]
    );
    let seen = server.seen();
    assert_eq!(seen[0].headers["x-attempt"], "0");
    assert_eq!(seen[1].headers["x-attempt"], "1");
    let _ = Outcome::Success;
}

#[tokio::test(start_paused = true)]
async fn query_values_never_appear_in_errors_or_logs_and_signatures_not_in_spans() {
    let (spans, logs, _guard) = capture();
    let url = format!(
        "http://{}/verify?token=tok-8c1f&sig=sig-51d0",
        support::closed_port()
    );
    let err = client(Config::default().max_retries(1))
        .get(&url)
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");
    // The call's own events; a `fmt` layer also prints the attempt span's
    // `url.full` beside events of other crates, which carries what the
    // OpenTelemetry conventions keep (all but the signatures).
    let events: Vec<String> = logs
        .contents()
        .lines()
        .filter(|l| l.contains("http call failed") || l.contains("retrying request"))
        .map(str::to_owned)
        .collect();
    assert_eq!(events.len(), 2, "{events:#?}");
    let texts = format!("{err} {err:?} {events:?}");
    assert!(
        !texts.contains("tok-8c1f") && !texts.contains("sig-51d0"),
        "{texts}"
    );
    let attempts = spans.named("HTTP GET");
    assert_eq!(attempts.len(), 2);
    for span in attempts {
        let full = &span.fields["url.full"];
        assert!(full.ends_with("?token=tok-8c1f&sig=REDACTED"), "{full}");
    }
}

/// Records the order its hooks run in, and whether the request carried the
/// header `marks` (added by an observer layered around it).
struct Layered {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
    sets: Option<&'static str>,
}

impl AttemptObserver for Layered {
    fn on_attempt_start(&self, request: &mut reqwest::Request, _attempt: &AttemptStart<'_>) {
        let seen: Vec<&str> = request
            .headers()
            .get_all("x-layer")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        self.log
            .lock()
            .unwrap()
            .push(format!("start {} sees {seen:?}", self.name));
        if let Some(value) = self.sets {
            request
                .headers_mut()
                .append("x-layer", value.parse().unwrap());
        }
    }

    fn on_attempt_end(&self, _attempt: &AttemptEnd<'_>) {
        self.log.lock().unwrap().push(format!("end {}", self.name));
    }
}

#[tokio::test(start_paused = true)]
async fn observers_compose_the_last_added_outermost() {
    let server = support::always(200).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let layer = |name, sets| Layered {
        name,
        log: log.clone(),
        sets,
    };
    let config = Config::default()
        .observer(layer("first", None))
        .observer(layer("second", Some("second")))
        .observer(layer("third", Some("third")));
    client(config).get(server.url("/x")).await.unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "start third sees []",
            "start second sees [\"third\"]",
            "start first sees [\"third\", \"second\"]",
            "end first",
            "end second",
            "end third",
        ]
    );
    assert_eq!(
        server.seen()[0].headers.get_all("x-layer").iter().count(),
        2
    );
}
