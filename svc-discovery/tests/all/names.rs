//! Service names -> variable names.

use svc_discovery::{Error, Registry, env_var};

#[test]
fn seed_examples() {
    assert_eq!(env_var("auth-svc").unwrap(), "AUTH_SVC_URL");
    assert_eq!(env_var("chat-svc").unwrap(), "CHAT_SVC_URL");
}

#[test]
fn spellings_of_one_service_map_to_one_variable() {
    for name in [
        "auth-svc", "Auth-Svc", "AUTH-SVC", "auth_svc", "AUTH_SVC", "auth.svc", "Auth.Svc",
    ] {
        assert_eq!(env_var(name).unwrap(), "AUTH_SVC_URL", "{name}");
    }
}

#[test]
fn table() {
    for (name, var) in [
        ("gw", "GW_URL"),
        ("a", "A_URL"),
        ("svc2", "SVC2_URL"),
        ("2fa-svc", "2FA_SVC_URL"),
        ("my.project-auth_svc", "MY_PROJECT_AUTH_SVC_URL"),
        ("payments-v2", "PAYMENTS_V2_URL"),
        ("-leading", "_LEADING_URL"),
        ("a--b", "A__B_URL"),
    ] {
        assert_eq!(env_var(name).unwrap(), var, "{name}");
    }
}

#[test]
fn invalid_characters_are_named() {
    for (name, character) in [
        ("auth svc", "' '"),
        ("auth=svc", "'='"),
        ("auth\0svc", "'\\0'"),
        ("authé", "'é'"),
        ("auth/svc", "'/'"),
        ("auth:svc", "':'"),
        ("auth\tsvc", "'\\t'"),
        ("auth\nsvc", "'\\n'"),
        (" auth-svc", "' '"),
        ("auth-svc ", "' '"),
        ("$AUTH", "'$'"),
        ("аuth", "'а'"), // Cyrillic a
    ] {
        let err = env_var(name).unwrap_err();
        let Error::InvalidName { name: given, .. } = &err else {
            panic!("{name:?}: {err:?}");
        };
        assert_eq!(given, name);
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("invalid service name {name:?}: ")),
            "{message}"
        );
        assert!(
            message.contains(character),
            "{message} should name {character}"
        );
    }
}

#[test]
fn empty_and_separator_only_names_are_invalid() {
    for (name, reason) in [
        ("", "it is empty"),
        ("-", "it has no letter or digit"),
        ("_._", "it has no letter or digit"),
    ] {
        let err = env_var(name).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("invalid service name {name:?}: {reason}")
        );
        assert_eq!(err.variable(), None);
        assert!(!err.is_not_configured());
    }
}

#[test]
fn every_entry_point_rejects_invalid_names() {
    let registry = Registry::from_vars([("AUTH_SVC_URL", "http://auth:8001")]);
    for name in ["auth svc", "", "auth=svc"] {
        assert!(matches!(
            registry.lookup(name),
            Err(Error::InvalidName { .. })
        ));
        assert!(matches!(
            registry.lookup_optional(name),
            Err(Error::InvalidName { .. })
        ));
        assert_eq!(registry.service_url(name), None);
        assert!(!registry.is_configured(name));
        assert!(matches!(
            svc_discovery::lookup(name),
            Err(Error::InvalidName { .. })
        ));
        assert!(matches!(
            svc_discovery::lookup_optional(name),
            Err(Error::InvalidName { .. })
        ));
        assert_eq!(svc_discovery::service_url(name), None);
        assert!(!svc_discovery::service_configured(name));
    }
}

#[test]
fn must_service_url_panics_on_an_invalid_name() {
    let panic = std::panic::catch_unwind(|| svc_discovery::must_service_url("auth svc"))
        .expect_err("must panic");
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(
        message.contains(r#"invalid service name "auth svc""#),
        "{message}"
    );
}
