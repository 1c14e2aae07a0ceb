//! Keeping credentials out of errors, spans and logs, and naming origins.

use std::borrow::Cow;

use url::{Position, Url};

/// `url` without its user name and password (the userinfo of
/// `http://user:pass@host/`). Borrows when there is nothing to strip.
pub(crate) fn strip_credentials(url: &Url) -> Cow<'_, Url> {
    if url.username().is_empty() && url.password().is_none() {
        return Cow::Borrowed(url);
    }
    let mut clean = url.clone();
    // Both only fail for URLs that cannot have credentials, which then
    // have none to strip.
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    Cow::Owned(clean)
}

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

    #[test]
    fn credentials_are_stripped() {
        let url = Url::parse("https://alice:s3cret@api.test:8443/v1?q=1").unwrap();
        assert_eq!(
            strip_credentials(&url).as_str(),
            "https://api.test:8443/v1?q=1"
        );
        let user_only = Url::parse("http://alice@api.test/").unwrap();
        assert_eq!(strip_credentials(&user_only).as_str(), "http://api.test/");
        let clean = Url::parse("http://api.test/").unwrap();
        assert!(matches!(strip_credentials(&clean), Cow::Borrowed(_)));
    }

    proptest::proptest! {
        #[test]
        fn stripped_urls_and_origin_keys_never_hold_the_password(
            user in "[a-z]{1,8}",
            password in "[A-Za-z0-9]{12,20}",
            host in "[a-z]{1,10}(\\.[a-z]{2,5})?",
            port in proptest::option::of(1u16..),
            path in "(/[a-z0-9]{0,6}){0,3}",
        ) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let url = Url::parse(&format!("http://{user}:{password}@{host}{port}{path}")).unwrap();
            proptest::prop_assert!(!strip_credentials(&url).as_str().contains(&password));
            proptest::prop_assert!(!origin_key(&url).contains(&password));
            let clean = strip_credentials(&url).into_owned();
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
