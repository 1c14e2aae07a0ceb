//! Spans, events, observer hooks, and secrets kept out of all of them.

use std::sync::{Arc, Mutex};

use svc_httpclient::{
    AttemptEnd, AttemptObserver, AttemptStart, Client, Config, Outcome, StatusCode, header, reqwest,
};
use svc_test_support::{self as support, capture};
use tracing::{Instrument, Level};

fn client(config: Config) -> Client {
    Client::new(config.circuit_breaker(None).retry_budget(None)).unwrap()
}

#[tokio::test(start_paused = true)]
async fn one_client_span_per_attempt_as_a_child_of_the_caller() {
    let (events, spans, _guard) = capture();
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
    let retries = events.with_message("retrying request");
    assert_eq!(retries.len(), 1, "{retries:#?}");
    let retry = &retries[0];
    assert_eq!(retry.level, Level::DEBUG, "{retry:?}");
    assert_eq!(retry.field("attempt"), Some("1"), "{retry:?}");
    assert_eq!(retry.field("reason"), Some("503"), "{retry:?}");
    assert!(retry.field("wait_ms").is_some(), "{retry:?}");
    // Nowhere in any event's fields, the failure warning's message included.
    let all = events.all_text();
    assert!(
        !all.contains("http call failed"),
        "the call succeeded: {all}"
    );
}

#[tokio::test(start_paused = true)]
async fn one_warning_per_failed_call() {
    let (events, _spans, _guard) = capture();
    let addr = support::closed_port();
    let err = client(Config::default())
        .post(format!("http://{addr}/orders"), &1)
        .await
        .unwrap_err();
    assert_eq!(err.attempts(), 4);
    let warnings = events.at(Level::WARN);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let warning = &warnings[0];
    assert_eq!(warning.message(), "http call failed", "{warning:?}");
    assert_eq!(warning.field("method"), Some("POST"), "{warning:?}");
    let url = format!("http://{addr}/orders");
    assert_eq!(warning.field("url"), Some(url.as_str()), "{warning:?}");
    assert_eq!(warning.field("attempts"), Some("4"), "{warning:?}");
    let cause = warning.field("cause").unwrap_or_default();
    assert!(cause.contains("could not connect"), "{warning:?}");
    assert_eq!(events.with_message("retrying request").len(), 3);
}

#[tokio::test(start_paused = true)]
async fn credentials_never_appear_in_errors_or_logs() {
    let (events, spans, _guard) = capture();
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
    assert!(!spans.named("HTTP GET").is_empty());
    assert!(!events.with_message("http call failed").is_empty());
    // Every field of every captured span (not only the attempt spans) and
    // every event.
    texts.push(spans.all_text());
    texts.push(events.all_text());
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
    // Spans are only entered (and `Span::current()` named) under a
    // subscriber.
    let (_events, _spans, _guard) = capture();
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
    let (events, spans, _guard) = capture();
    let url = format!(
        "http://{}/verify?token=tok-8c1f&sig=sig-51d0",
        support::closed_port()
    );
    let err = client(Config::default().max_retries(1))
        .get(&url)
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");
    // The call's own events (every field); the attempt span's `url.full`
    // carries what the OpenTelemetry conventions keep (all but the
    // signatures), checked below.
    let own: Vec<String> = events
        .filter(|e| matches!(e.message(), "http call failed" | "retrying request"))
        .iter()
        .map(support::Event::all_text)
        .collect();
    assert_eq!(own.len(), 2, "{own:#?}");
    let texts = format!("{err} {err:?} {own:?}");
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
