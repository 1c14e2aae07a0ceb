//! Naming origins: the key of the per-origin breaker and budget.

use std::borrow::Cow;

use url::{Position, Url};

/// The origin of `url` as `scheme://host[:port]`, the key of the per-origin
/// breaker and budget. The `url` crate drops default ports and lower-cases
/// hosts of special schemes, so equal origins give equal keys.
pub(crate) fn origin_key(url: &Url) -> Cow<'_, str> {
    if url.username().is_empty() && url.password().is_none() {
        return Cow::Borrowed(&url[Position::BeforeScheme..Position::AfterPort]);
    }
    let mut key = String::with_capacity(url.as_str().len());
    key.push_str(url.scheme());
    key.push_str("://");
    key.push_str(&url[Position::BeforeHost..Position::AfterPort]);
    Cow::Owned(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn origin_keys_never_hold_the_password(
            user in "[a-z]{1,8}",
            password in "[A-Za-z0-9]{12,20}",
            host in "[a-z]{1,10}(\\.[a-z]{2,5})?",
            port in proptest::option::of(1u16..),
            path in "(/[a-z0-9]{0,6}){0,3}",
        ) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let url = Url::parse(&format!("http://{user}:{password}@{host}{port}{path}")).unwrap();
            proptest::prop_assert!(!origin_key(&url).contains(&password));
            let clean = svc_discovery::strip_userinfo(&url).into_owned();
            proptest::prop_assert_eq!(origin_key(&url), origin_key(&clean));
        }
    }

    #[test]
    fn origin_keys_ignore_path_credentials_and_default_port() {
        let key = |s: &str| origin_key(&Url::parse(s).unwrap()).into_owned();
        assert_eq!(key("http://Host.Test:80/a/b?c"), "http://host.test");
        assert_eq!(key("http://u:p@host.test/x"), "http://host.test");
        assert_eq!(key("http://host.test:8080/"), "http://host.test:8080");
        assert_eq!(key("http://127.0.0.1:9/"), "http://127.0.0.1:9");
        assert_ne!(key("https://host.test/"), key("http://host.test/"));
    }
}
