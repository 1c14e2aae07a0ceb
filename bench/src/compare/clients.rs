//! The four clients, built alike for every suite, and how a call through
//! any of them ended.

use reqwest_middleware::ClientWithMiddleware;
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use std::time::Duration;
use svc_client::{ClientConfig, Registry};

/// The four clients, in report order (the baseline first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Reqwest,
    HttpClient,
    Facade,
    ReqwestRetry,
    /// reqwest 0.13's own retry (`reqwest::retry::for_host`): in the
    /// outage table only.
    ReqwestBuiltinRetry,
}

impl Kind {
    pub(super) const ALL: [Kind; 4] = [
        Kind::Reqwest,
        Kind::HttpClient,
        Kind::Facade,
        Kind::ReqwestRetry,
    ];

    /// The outage table's clients: [`Kind::ALL`] and reqwest's own retry.
    pub(super) const OUTAGE: [Kind; 5] = [
        Kind::Reqwest,
        Kind::HttpClient,
        Kind::Facade,
        Kind::ReqwestRetry,
        Kind::ReqwestBuiltinRetry,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Reqwest => "reqwest",
            Kind::HttpClient => "svc-httpclient",
            Kind::Facade => "svc-client",
            Kind::ReqwestRetry => "reqwest-retry",
            Kind::ReqwestBuiltinRetry => "reqwest-builtin-retry",
        }
    }

    pub(super) fn from_name(name: &str) -> Option<Kind> {
        Kind::OUTAGE.into_iter().find(|k| k.name() == name)
    }

    pub(super) fn describe(self) -> &'static str {
        match self {
            Kind::Reqwest => "`reqwest::Client` 0.13, defaults (the baseline; no retries)",
            Kind::HttpClient => "`svc_httpclient::Client`, `Config::default()`",
            Kind::Facade => {
                "`svc_client::Client::from_registry`, `ClientConfig::default()` (shared pool)"
            }
            Kind::ReqwestRetry => {
                "`reqwest-middleware` 0.5 + `reqwest-retry` 0.9, `ExponentialBackoff` with 3 retries"
            }
            Kind::ReqwestBuiltinRetry => {
                "`reqwest::Client` 0.13 with its own retry, `reqwest::retry::for_host(host)`, 3 retries \
                 per request, 5xx and errors classified retryable, its default budget (20% extra load); \
                 no backoff, no breaker (outage table only)"
            }
        }
    }
}

/// A built client of one kind.
#[derive(Clone)]
pub(super) enum AnyClient {
    Reqwest(reqwest::Client),
    HttpClient(svc_httpclient::Client),
    Facade(svc_client::Client),
    ReqwestRetry(ClientWithMiddleware),
}

/// How the clients are configured for a suite.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Profile {
    /// Library defaults.
    Defaults,
    /// For the outage: reqwest-retry's backoff shortened to the facade's
    /// (100 ms base, 5 s cap) so that a run takes seconds, not minutes.
    Outage,
    /// For a client on a runtime of its own: the facade gets a pool of its
    /// own too (`shared_pool(false)`), so that its connections are driven
    /// on its runtime (the shared pool's were opened by earlier suites on
    /// the main runtime, whose CPU the client thread would not see).
    OwnPool,
}

pub(super) fn build(kind: Kind, base: &str, profile: Profile) -> Result<AnyClient, String> {
    Ok(match kind {
        Kind::Reqwest => AnyClient::Reqwest(reqwest::Client::new()),
        Kind::HttpClient => AnyClient::HttpClient(
            svc_httpclient::Client::new(svc_httpclient::Config::default())
                .map_err(|e| format!("svc-httpclient: {e}"))?,
        ),
        Kind::Facade => {
            let registry = Registry::from_vars([("BENCH_SVC_URL", base)]);
            AnyClient::Facade(
                svc_client::Client::from_registry(
                    &registry,
                    "bench-svc",
                    ClientConfig::default().shared_pool(profile != Profile::OwnPool),
                )
                .map_err(|e| format!("svc-client: {e}"))?,
            )
        }
        Kind::ReqwestBuiltinRetry => {
            let host = reqwest::Url::parse(base)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .ok_or_else(|| format!("no host in `{base}`"))?;
            let retry = reqwest::retry::for_host(host)
                .max_retries_per_request(3)
                .classify_fn(|rr| {
                    let server_error = rr.status().is_some_and(|s| s.is_server_error());
                    if server_error || rr.error().is_some() {
                        rr.retryable()
                    } else {
                        rr.success()
                    }
                });
            AnyClient::Reqwest(
                reqwest::Client::builder()
                    .retry(retry)
                    .build()
                    .map_err(|e| format!("reqwest with retry: {e}"))?,
            )
        }
        Kind::ReqwestRetry => {
            let builder = ExponentialBackoff::builder();
            let builder = match profile {
                Profile::Defaults | Profile::OwnPool => builder,
                Profile::Outage => {
                    builder.retry_bounds(Duration::from_millis(100), Duration::from_secs(5))
                }
            };
            let policy = builder.build_with_max_retries(3);
            AnyClient::ReqwestRetry(
                reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
                    .with(RetryTransientMiddleware::new_with_policy(policy))
                    .build(),
            )
        }
    })
}

/// How a call ended.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    Status(u16),
    CircuitOpen,
    Error,
}

impl Ended {
    /// A call that failed: fast on the open circuit, or otherwise.
    fn failed(circuit_open: bool) -> Ended {
        if circuit_open {
            Ended::CircuitOpen
        } else {
            Ended::Error
        }
    }
}

impl AnyClient {
    /// GET `base` + `path`, reading the whole body.
    pub(super) async fn get(&self, base: &str, path: &str) -> Ended {
        let url = format!("{base}{path}");
        let resp = match self {
            AnyClient::Reqwest(c) => c.get(&url).send().await.map_err(|_| Ended::Error),
            AnyClient::HttpClient(c) => c
                .get(&url)
                .send()
                .await
                .map_err(|e| Ended::failed(e.is_circuit_open())),
            AnyClient::Facade(c) => c
                .get(path)
                .send()
                .await
                .map_err(|e| Ended::failed(e.is_circuit_open())),
            AnyClient::ReqwestRetry(c) => c.get(&url).send().await.map_err(|_| Ended::Error),
        };
        match resp {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.bytes().await {
                    Ok(_) => Ended::Status(status),
                    Err(_) => Ended::Error,
                }
            }
            Err(ended) => ended,
        }
    }
}

pub(super) fn expect_ok(kind: Kind, ended: Ended) -> Result<(), String> {
    match ended {
        Ended::Status(200) => Ok(()),
        Ended::Status(s) => Err(format!("{}: GET /ok answered {s}", kind.name())),
        Ended::CircuitOpen => Err(format!("{}: circuit open on a healthy server", kind.name())),
        Ended::Error => Err(format!(
            "{}: GET /ok failed on a healthy server",
            kind.name()
        )),
    }
}
