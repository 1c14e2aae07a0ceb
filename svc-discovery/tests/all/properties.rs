//! Properties over arbitrary input: names, values and passwords.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use svc_discovery::{Error, Redacted, Registry, Url, env_var, redact, redact_str};

/// The start of every generated secret, so a leak of any part of it that
/// includes the start is found, whatever the rest is.
const MARKER: &str = "S3cr3t";

fn valid_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._-]{0,15}[A-Za-z0-9][A-Za-z0-9._-]{0,15}"
}

fn is_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Everything a registry or an error can show.
fn everything_shown(registry: &Registry) -> Vec<String> {
    let mut shown = vec![format!("{registry:?}"), format!("{registry:#?}")];
    // A found `Url` is the url crate's type, and its `Debug` shows the
    // password: callers show it through `Redacted`.
    match registry.lookup("auth-svc") {
        Ok(url) => {
            shown.push(redact(&url));
            shown.push(format!("{:?}", Redacted::new(&url)));
        }
        Err(err) => {
            shown.push(err.to_string());
            shown.push(format!("{err:?}"));
        }
    }
    for (name, result) in registry {
        shown.push(name.to_owned());
        match result {
            Ok(url) => shown.push(redact(&url)),
            Err(err) => {
                shown.push(err.to_string());
                shown.push(format!("{err:?}"));
            }
        }
    }
    shown
}

proptest! {
    // Failing cases are saved next to this file, in
    // `properties.proptest-regressions` (the default policy would put them
    // in `tests/proptest-regressions/properties.txt`).
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn valid_names_map_to_valid_variable_names(name in valid_name()) {
        let var = env_var(&name).unwrap();
        prop_assert!(var.ends_with("_URL"));
        prop_assert!(var.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'), "{}", var);
        prop_assert_eq!(var.len(), name.len() + "_URL".len());
        // Case and separators do not matter.
        prop_assert_eq!(&env_var(&name.to_ascii_lowercase()).unwrap(), &var);
        prop_assert_eq!(&env_var(&name.replace(['-', '.'], "_")).unwrap(), &var);
        // The prefix is itself a valid name for the same variable.
        prop_assert_eq!(&env_var(var.strip_suffix("_URL").unwrap()).unwrap(), &var);
    }

    #[test]
    fn names_with_any_other_character_are_invalid(
        head in "[a-z0-9._-]{0,10}",
        bad in any::<char>().prop_filter("not allowed", |c| !is_allowed(*c)),
        tail in ".{0,10}",
    ) {
        let name = format!("{head}{bad}{tail}");
        let err = env_var(&name).unwrap_err();
        let is_invalid_name = matches!(&err, Error::InvalidName { name: given, .. } if *given == name);
        prop_assert!(is_invalid_name, "{:?}", err);
        let message = err.to_string();
        let quoted_name = format!("{name:?}");
        let quoted_bad = format!("{bad:?}");
        prop_assert!(message.contains(&quoted_name), "{}", message);
        prop_assert!(message.contains(&quoted_bad), "{}", message);
        prop_assert!(Registry::default().lookup(&name).is_err());
    }

    #[test]
    fn no_input_panics(
        name in ".{0,20}",
        url in prop_oneof![".{0,40}", "(https?|ftp)://[a-zA-Z0-9:@/?#%\\[\\]._ -]{0,30}"],
        host in prop_oneof![".{0,20}", "[0-9a-f:.\\[\\]%@]{0,20}"],
        port in prop_oneof![".{0,8}", "[0-9]{0,7}"],
    ) {
        let registry = Registry::from_vars([
            ("AUTH_SVC_URL", url.as_str()),
            ("CHAT_SVC_SERVICE_HOST", host.as_str()),
            ("CHAT_SVC_SERVICE_PORT", port.as_str()),
        ]);
        for service in [name.as_str(), "auth-svc", "chat-svc"] {
            let result = registry.lookup(service);
            if let Err(err) = &result {
                let _ = (err.to_string(), format!("{err:?}"), err.variable(), err.is_not_configured());
            }
            prop_assert_eq!(registry.is_configured(service), result.is_ok());
            prop_assert_eq!(registry.service_url(service), result.clone().ok());
        }
        let _ = everything_shown(&registry);
        let _ = redact_str(&url);
        if let Ok(parsed) = Url::parse(&url) {
            let _ = redact(&parsed);
        }
        // Found URLs obey the contract.
        if let Ok(found) = registry.lookup("auth-svc") {
            prop_assert!(matches!(found.scheme(), "http" | "https"));
            prop_assert!(found.host().is_some());
            prop_assert!(found.query().is_none() && found.fragment().is_none());
        }
        if let Ok(found) = registry.lookup("chat-svc") {
            prop_assert_eq!(found.scheme(), "http");
            prop_assert!(found.port_or_known_default().is_some_and(|p| p != 0));
        }
    }

    #[test]
    fn passwords_never_show(rest in ".{0,16}") {
        let password = format!("{MARKER}{rest}");
        for value in [
            format!("http://user:{password}@auth:8001/api"),
            format!("https://user:{password}@auth"),
            format!("ftp://user:{password}@auth"),
            format!("http://user:{password}@auth/?q=1"),
            format!("auth-svc:8001 user:{password}@auth"),
            format!("http://:{password}@auth"),
        ] {
            let registry = Registry::from_vars([("AUTH_SVC_URL", value.as_str())]);
            for shown in everything_shown(&registry) {
                prop_assert!(!shown.contains(MARKER), "{:?} shown as {}", value, shown);
            }
            prop_assert!(!redact_str(&value).contains(MARKER));
        }
        let registry = Registry::from_vars([
            ("AUTH_SVC_SERVICE_HOST", format!("user:{password}@10.0.0.7")),
            ("AUTH_SVC_SERVICE_PORT", "8001".to_owned()),
        ]);
        for shown in everything_shown(&registry) {
            prop_assert!(!shown.contains(MARKER), "{}", shown);
        }
    }

    #[test]
    fn tokens_in_the_user_name_never_show(rest in "[^/?#\\\\:]{0,16}") {
        let token = format!("{MARKER}{rest}");
        let value = format!("https://{token}@auth:8443/api");
        let registry = Registry::from_vars([("AUTH_SVC_URL", value.as_str())]);
        for shown in everything_shown(&registry) {
            prop_assert!(!shown.contains(MARKER), "{:?} shown as {}", value, shown);
        }
    }

    #[test]
    fn valid_urls_are_found_as_given(
        https in any::<bool>(),
        host in "[a-z][a-z0-9-]{0,15}",
        port in 1..=u16::MAX,
        path in "(/[a-z0-9_-]{1,8}){0,3}/?",
        padding in "[ \t\n]{0,2}",
    ) {
        // A label starting `xn--` is punycode, which the URL parser checks
        // (and rejects when invalid): not a host given as is.
        proptest::prop_assume!(!host.starts_with("xn--"));
        let scheme = if https { "https" } else { "http" };
        let value = format!("{padding}{scheme}://{host}:{port}{path}{padding}");
        let found = Registry::from_vars([("GW_URL", value.as_str())]).lookup("gw").unwrap();
        prop_assert_eq!(found.scheme(), scheme);
        prop_assert_eq!(found.host_str(), Some(host.as_str()));
        prop_assert_eq!(found.port_or_known_default(), Some(port));
        let expected_path = if path.is_empty() { "/" } else { path.as_str() };
        prop_assert_eq!(found.path(), expected_path);
    }

    #[test]
    fn kubernetes_ipv4(ip in any::<Ipv4Addr>(), port in 1..=u16::MAX) {
        let found = Registry::from_vars([
            ("AUTH_SVC_SERVICE_HOST", ip.to_string()),
            ("AUTH_SVC_SERVICE_PORT", port.to_string()),
        ])
        .lookup("auth-svc")
        .unwrap();
        prop_assert_eq!(found.host(), Some(url::Host::Ipv4(ip)));
        prop_assert_eq!(found.port_or_known_default(), Some(port));
        prop_assert_eq!(found.scheme(), "http");
    }

    #[test]
    fn kubernetes_ipv6(ip in any::<Ipv6Addr>(), port in 1..=u16::MAX, bracketed in any::<bool>()) {
        let host = if bracketed { format!("[{ip}]") } else { ip.to_string() };
        let found = Registry::from_vars([
            ("AUTH_SVC_SERVICE_HOST", host),
            ("AUTH_SVC_SERVICE_PORT", port.to_string()),
        ])
        .lookup("auth-svc")
        .unwrap();
        prop_assert_eq!(found.host(), Some(url::Host::Ipv6(ip)));
        prop_assert_eq!(found.port_or_known_default(), Some(port));
    }

    #[test]
    fn ports_outside_1_to_65535_are_invalid(port in prop_oneof![Just(0u64), 65_536..u64::MAX]) {
        let err = Registry::from_vars([
            ("AUTH_SVC_SERVICE_HOST", "10.0.0.7".to_owned()),
            ("AUTH_SVC_SERVICE_PORT", port.to_string()),
        ])
        .lookup("auth-svc")
        .unwrap_err();
        prop_assert_eq!(err.variable(), Some("AUTH_SVC_SERVICE_PORT"));
    }
}
