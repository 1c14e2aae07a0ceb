//! `{NAME}_URL` listing several replicas: `endpoints`, and what `lookup`
//! makes of a list.

use proptest::prelude::*;
use svc_discovery::{Error, Registry, Url, parse_service_urls};

fn registry(value: &str) -> Registry {
    Registry::from_vars([("AUTH_SVC_URL", value)])
}

#[test]
fn a_list_gives_one_endpoint_per_entry_and_lookup_gives_the_first() {
    let registry =
        registry(" http://10.0.0.7:8001/api , http://10.0.0.8:8001/api,http://auth-2:8001/api ");
    let endpoints = registry.endpoints("auth-svc").unwrap();
    let shown: Vec<&str> = endpoints.iter().map(Url::as_str).collect();
    assert_eq!(
        shown,
        [
            "http://10.0.0.7:8001/api",
            "http://10.0.0.8:8001/api",
            "http://auth-2:8001/api"
        ]
    );
    assert_eq!(registry.lookup("auth-svc").unwrap(), endpoints[0]);
    assert!(registry.is_configured("auth-svc"));
}

#[test]
fn a_single_url_is_one_endpoint_as_before() {
    for value in ["http://auth:8001", "https://auth.internal/api/v1"] {
        let registry = registry(value);
        let endpoints = registry.endpoints("auth-svc").unwrap();
        assert_eq!(endpoints, [registry.lookup("auth-svc").unwrap()]);
    }
    let kubernetes = Registry::from_vars([
        ("AUTH_SVC_SERVICE_HOST", "10.0.0.7"),
        ("AUTH_SVC_SERVICE_PORT", "8001"),
    ]);
    assert_eq!(
        kubernetes.endpoints("auth-svc").unwrap(),
        [Url::parse("http://10.0.0.7:8001").unwrap()]
    );
    assert!(
        Registry::default()
            .endpoints("auth-svc")
            .unwrap_err()
            .is_not_configured()
    );
}

/// Each bad list, the error kind it gives and a word its reason contains.
#[test]
fn bad_lists_are_typed_errors_naming_the_variable() {
    type IsKind = fn(&Error) -> bool;
    let cases: &[(&str, IsKind, &str)] = &[
        (
            "http://a:1,,http://b:1",
            |e| matches!(e, Error::InvalidList { .. }),
            "entry 2 of 3 is empty",
        ),
        (
            "http://a:1,",
            |e| matches!(e, Error::InvalidList { .. }),
            "entry 2 of 2 is empty",
        ),
        (
            ",http://a:1",
            |e| matches!(e, Error::InvalidList { .. }),
            "entry 1 of 2 is empty",
        ),
        (
            "http://a:1, ,http://b:1",
            |e| matches!(e, Error::InvalidList { .. }),
            "empty",
        ),
        (
            "http://a:1,https://b:1",
            |e| matches!(e, Error::InvalidList { .. }),
            "scheme",
        ),
        (
            "http://a:1/api,http://b:1/v2",
            |e| matches!(e, Error::InvalidList { .. }),
            "path",
        ),
        (
            "http://a:1/api,http://b:1",
            |e| matches!(e, Error::InvalidList { .. }),
            "path",
        ),
        (
            "http://a:1,http://a:1",
            |e| matches!(e, Error::InvalidList { .. }),
            "repeats entry 1",
        ),
        (
            "http://a:1,b:1",
            |e| matches!(e, Error::InvalidUrl { .. }),
            "entry 2 of 2",
        ),
        (
            "http://a:1,ftp://b:1",
            |e| matches!(e, Error::InvalidUrl { .. }),
            "entry 2 of 2",
        ),
        (
            "http://a:1,http://b:1/?x=1",
            |e| matches!(e, Error::InvalidUrl { .. }),
            "query",
        ),
    ];
    for (value, is_kind, word) in cases {
        let registry = registry(value);
        let err = registry.endpoints("auth-svc").unwrap_err();
        assert!(is_kind(&err), "{value:?}: {err:?}");
        assert_eq!(err.variable(), Some("AUTH_SVC_URL"), "{value:?}");
        assert!(err.to_string().contains(word), "{value:?}: {err}");
        assert!(err.to_string().contains("AUTH_SVC_URL"), "{value:?}: {err}");
        // `lookup` checks the whole list too: no silent first entry.
        assert_eq!(registry.lookup("auth-svc"), Err(err.clone()), "{value:?}");
        assert!(!registry.is_configured("auth-svc"));
        assert_eq!(parse_service_urls("AUTH_SVC_URL", value), Err(err));
    }
}

#[test]
fn errors_about_lists_never_show_a_password() {
    let registry = registry("http://u:hunter2@a:1,https://u:hunter2@b:1");
    let err = registry.endpoints("auth-svc").unwrap_err();
    assert!(matches!(err, Error::InvalidList { .. }));
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(!format!("{err:?}").contains("hunter2"));
}

proptest! {
    #[test]
    fn lists_of_valid_replicas_parse_back(
        hosts in proptest::collection::btree_set("[a-z]{1,8}", 1..6),
        port in 1u16..,
        path in "(/[a-z0-9]{1,6}){0,2}",
        spaces in " {0,2}",
    ) {
        let entries: Vec<String> = hosts.iter().map(|h| format!("http://{h}:{port}{path}")).collect();
        let value = entries.join(&format!("{spaces},{spaces}"));
        let urls = parse_service_urls("X_URL", &value).unwrap();
        prop_assert_eq!(urls.len(), hosts.len());
        for (url, host) in urls.iter().zip(&hosts) {
            prop_assert_eq!(url.host_str(), Some(host.as_str()));
            prop_assert_eq!(url.port(), Some(port).filter(|&p| p != 80));
        }
        prop_assert!(urls.iter().all(|u| u.path() == urls[0].path()));
    }

    #[test]
    fn no_list_panics_and_every_result_is_one_service(value in "[a-z:/,. 0-9]{0,60}") {
        match parse_service_urls("X_URL", &value) {
            Ok(urls) => {
                prop_assert!(!urls.is_empty());
                prop_assert!(urls.iter().all(|u| u.scheme() == urls[0].scheme() && u.path() == urls[0].path()));
            }
            Err(err) => prop_assert_eq!(err.variable(), Some("X_URL")),
        }
    }
}
