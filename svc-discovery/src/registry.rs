//! An immutable snapshot of the service variables.
//!
//! Reading the process environment on every call makes code untestable
//! without `std::env::set_var`, which races with every other thread reading
//! the environment (and is `unsafe` since Rust 2024). A [`Registry`] is taken
//! once, at startup or in a test from a literal list, and passed around.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::env::VarError;
use std::ffi::OsString;
use std::fmt;
use std::iter::FusedIterator;

use url::Url;

use crate::Error;
use crate::name::{self, HOST_SUFFIX, PORT_SUFFIX, URL_SUFFIX};
use crate::redact::redact_str;
use crate::resolve::{self, Raw, Source};
use crate::setting;

/// A snapshot of the variables that configure services.
///
/// Take it from the process with [`Registry::from_env`], or from any list of
/// pairs with [`Registry::from_vars`] (tests, config files). It keeps only the
/// variables discovery reads (`*_URL`, `*_SERVICE_HOST`, `*_SERVICE_PORT`)
/// and the client settings next to them ([`Setting`](crate::Setting):
/// `*_TIMEOUT`, `*_MAX_RETRIES`...), and never changes afterwards. Lookups follow the same rules as the free
/// functions ([`lookup`](crate::lookup) and friends); see the
/// [crate documentation](crate) for them.
///
/// `Debug` lists the variables with their values redacted by
/// [`redact_str`](crate::redact_str), so a registry can be logged.
/// `Default` is the empty registry, in which no service is configured.
///
/// # Example
///
/// ```
/// use svc_discovery::Registry;
///
/// let registry = Registry::from_vars([
///     ("AUTH_SVC_URL", "http://myproject-auth-svc:8001"),
///     ("CHAT_SVC_URL", "http://myproject-chat-svc:8002"),
/// ]);
/// let auth = registry.lookup("auth-svc")?;
/// assert_eq!(auth.as_str(), "http://myproject-auth-svc:8001/");
/// assert!(registry.is_configured("chat-svc"));
/// assert!(!registry.is_configured("search-svc"));
/// # Ok::<(), svc_discovery::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Registry {
    /// Relevant variables only, by name.
    vars: BTreeMap<String, Value>,
    /// Prefixes (`AUTH_SVC`) of the services with a URL or host set, sorted.
    services: Vec<String>,
}

#[derive(Clone, PartialEq, Eq)]
enum Value {
    Text(String),
    NotUnicode(OsString),
}

// ===== impl Registry =====

impl Registry {
    /// Takes a snapshot of the process environment.
    ///
    /// Variables whose name is not valid Unicode are skipped (no service name
    /// maps to them); a value that is not valid Unicode is kept and reported
    /// as invalid on lookup. On Windows, where variable names are
    /// case-insensitive, names are upper-cased.
    ///
    /// ```
    /// use svc_discovery::Registry;
    ///
    /// let registry = Registry::from_env();
    /// for (service, url) in &registry {
    ///     match url {
    ///         Ok(url) => println!("{service}: {}", svc_discovery::redact(&url)),
    ///         Err(err) => println!("{service}: {err}"),
    ///     }
    /// }
    /// ```
    pub fn from_env() -> Self {
        let vars = std::env::vars_os().filter_map(|(key, value)| {
            let key = normalize_key(key.to_str()?);
            is_relevant(&key).then(|| {
                let value = match value.into_string() {
                    Ok(text) => Value::Text(text),
                    Err(value) => Value::NotUnicode(value),
                };
                (key.into_owned(), value)
            })
        });
        Self::build(vars.collect())
    }

    /// Builds a registry from `(name, value)` pairs, as if they were the
    /// environment.
    ///
    /// Names are case-sensitive, as on Unix; when a name repeats, the last
    /// value wins. Pairs that discovery never reads are dropped.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use svc_discovery::Registry;
    ///
    /// let registry = Registry::from_vars([("AUTH_SVC_URL", "http://auth:8001")]);
    /// assert!(registry.is_configured("auth-svc"));
    ///
    /// let vars: HashMap<String, String> =
    ///     HashMap::from([("CHAT_SVC_URL".to_owned(), "http://chat:8002".to_owned())]);
    /// assert!(Registry::from_vars(vars).is_configured("chat-svc"));
    /// ```
    pub fn from_vars<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let vars = vars.into_iter().filter_map(|(key, value)| {
            let key = key.as_ref();
            is_relevant(key).then(|| (key.to_owned(), Value::Text(value.as_ref().to_owned())))
        });
        Self::build(vars.collect())
    }

    fn build(vars: BTreeMap<String, Value>) -> Self {
        let services: BTreeSet<&str> = vars
            .iter()
            .filter(|(_, value)| value.raw().is_set())
            .filter_map(|(key, _)| {
                key.strip_suffix(URL_SUFFIX)
                    .or_else(|| key.strip_suffix(HOST_SUFFIX))
            })
            .collect();
        let services = services.into_iter().map(str::to_owned).collect();
        Registry { vars, services }
    }

    /// The URL of `service`, or why there is none.
    ///
    /// `service` is any accepted spelling (`auth-svc`, `Auth_Svc`,
    /// `auth.svc`). `{NAME}_URL` wins; without it the Kubernetes variables
    /// `{NAME}_SERVICE_HOST` and `{NAME}_SERVICE_PORT` are used. When
    /// `{NAME}_URL` lists several replicas, the whole list is checked and
    /// the first is returned; [`endpoints`](Registry::endpoints) gives them
    /// all.
    ///
    /// ```
    /// use svc_discovery::Registry;
    ///
    /// let registry = Registry::from_vars([
    ///     ("GW_URL", "https://gw.internal/api/v1"),
    ///     ("AUTH_SVC_SERVICE_HOST", "fd00::7"),
    ///     ("AUTH_SVC_SERVICE_PORT", "8001"),
    /// ]);
    /// assert_eq!(registry.lookup("gw")?.as_str(), "https://gw.internal/api/v1");
    /// assert_eq!(registry.lookup("auth-svc")?.as_str(), "http://[fd00::7]:8001/");
    /// assert!(registry.lookup("chat-svc").unwrap_err().is_not_configured());
    /// # Ok::<(), svc_discovery::Error>(())
    /// ```
    pub fn lookup(&self, service: &str) -> Result<Url, Error> {
        resolve::resolve(self, service)
    }

    /// Every base URL of `service`: one per replica when `{NAME}_URL` lists
    /// several, separated by commas (same scheme and path), else the one
    /// URL [`lookup`](Registry::lookup) finds.
    ///
    /// ```
    /// use svc_discovery::Registry;
    ///
    /// let registry = Registry::from_vars([
    ///     ("AUTH_SVC_URL", "http://10.0.0.7:8001,http://10.0.0.8:8001,http://10.0.0.9:8001"),
    ///     ("CHAT_SVC_URL", "http://chat:8002"),
    /// ]);
    /// let auth = registry.endpoints("auth-svc")?;
    /// assert_eq!(auth.len(), 3);
    /// assert_eq!(auth[2].as_str(), "http://10.0.0.9:8001/");
    /// // `lookup` gives the first replica.
    /// assert_eq!(registry.lookup("auth-svc")?, auth[0]);
    /// assert_eq!(registry.endpoints("chat-svc")?.len(), 1);
    /// # Ok::<(), svc_discovery::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`lookup`](Registry::lookup), and [`Error::InvalidList`] when the
    /// entries of a list do not form one service (an empty or repeated
    /// entry, mixed schemes, different paths).
    pub fn endpoints(&self, service: &str) -> Result<Vec<Url>, Error> {
        resolve::resolve_all(self, service)
    }

    /// Like [`lookup`](Registry::lookup), but an absent service is `Ok(None)`.
    ///
    /// The shape for optional dependencies: absent is fine, misconfigured is
    /// still an error.
    ///
    /// ```
    /// use svc_discovery::Registry;
    ///
    /// let registry = Registry::from_vars([("CHAT_SVC_URL", "chat:8002")]);
    /// assert_eq!(registry.lookup_optional("search-svc"), Ok(None));
    /// assert!(registry.lookup_optional("chat-svc").is_err()); // no scheme
    /// ```
    pub fn lookup_optional(&self, service: &str) -> Result<Option<Url>, Error> {
        optional(self.lookup(service))
    }

    /// The URL of `service`, or `None` if it is absent **or invalid**.
    ///
    /// The seed's `ServiceURL`. Prefer [`lookup`](Registry::lookup) when a
    /// misconfiguration should be reported rather than treated as absence.
    ///
    /// ```
    /// use svc_discovery::Registry;
    ///
    /// let registry = Registry::from_vars([("AUTH_SVC_URL", "http://myproject-auth-svc:8001")]);
    /// let url = registry.service_url("auth-svc").expect("configured");
    /// assert_eq!(url.port(), Some(8001));
    /// assert_eq!(registry.service_url("chat-svc"), None);
    /// ```
    pub fn service_url(&self, service: &str) -> Option<Url> {
        self.lookup(service).ok()
    }

    /// True if `service` resolves to a URL, i.e. [`lookup`](Registry::lookup)
    /// succeeds.
    ///
    /// The seed's `ServiceConfigured`: true means "safe to call". A service
    /// whose variable is set to an invalid value is not configured in this
    /// sense; [`lookup`](Registry::lookup) says why.
    ///
    /// ```
    /// use svc_discovery::Registry;
    ///
    /// let registry = Registry::from_vars([
    ///     ("AUTH_SVC_URL", "http://myproject-auth-svc:8001"),
    ///     ("CHAT_SVC_URL", "not a url"),
    /// ]);
    /// assert!(registry.is_configured("auth-svc"));
    /// assert!(!registry.is_configured("chat-svc"));
    /// assert!(!registry.is_configured("search-svc"));
    /// ```
    pub fn is_configured(&self, service: &str) -> bool {
        self.lookup(service).is_ok()
    }

    /// The raw value of the variable `name`, as [`std::env::var`] answers
    /// for the process environment, but from this snapshot: only the
    /// variables a registry keeps (discovery's `*_URL`, `*_SERVICE_HOST`,
    /// `*_SERVICE_PORT`, and the client [`Setting`](crate::Setting)s) are
    /// there; any other name is [`VarError::NotPresent`]. The value is not
    /// trimmed. For client code that reads the settings
    /// (`svc_client::ClientConfig::from_registry`); services read URLs with
    /// [`lookup`](Registry::lookup).
    ///
    /// ```
    /// use std::env::VarError;
    /// use svc_discovery::{Registry, Setting};
    ///
    /// let registry = Registry::from_vars([
    ///     ("AUTH_SVC_MAX_RETRIES", "2"),
    ///     ("HOME", "/root"),
    /// ]);
    /// assert_eq!(registry.var("AUTH_SVC_MAX_RETRIES"), Ok("2"));
    /// assert_eq!(registry.var(&Setting::Timeout.variable("auth-svc")?), Err(VarError::NotPresent));
    /// assert_eq!(registry.var("HOME"), Err(VarError::NotPresent)); // not kept
    /// # Ok::<(), svc_discovery::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`VarError::NotPresent`] when the variable is not in the snapshot,
    /// [`VarError::NotUnicode`] when its value (from
    /// [`from_env`](Registry::from_env)) is not valid Unicode.
    pub fn var(&self, name: &str) -> Result<&str, VarError> {
        match self.vars.get(normalize_key(name).as_ref()) {
            None => Err(VarError::NotPresent),
            Some(Value::Text(text)) => Ok(text),
            Some(Value::NotUnicode(value)) => Err(VarError::NotUnicode(value.clone())),
        }
    }

    /// Every service with a variable set, sorted by name, with its URL or why
    /// it has none.
    ///
    /// A service is listed when `{NAME}_URL` or `{NAME}_SERVICE_HOST` is set
    /// and not blank. Its name is the variable prefix (`AUTH_SVC`), which
    /// [`lookup`](Registry::lookup) accepts and maps back to the same
    /// variables; there is no way to tell `auth-svc` from `auth_svc` once they
    /// are variables. Invalid entries are listed with their error, so a
    /// startup log can show them: the environment also holds unrelated
    /// `*_URL` variables (`DATABASE_URL=postgres://...`) and, under
    /// Kubernetes, the API server's own `KUBERNETES_SERVICE_HOST`.
    ///
    /// ```
    /// use svc_discovery::Registry;
    ///
    /// let registry = Registry::from_vars([
    ///     ("CHAT_SVC_URL", "http://myproject-chat-svc:8002"),
    ///     ("AUTH_SVC_URL", "http://myproject-auth-svc:8001"),
    ///     ("DATABASE_URL", "postgres://db/app"),
    /// ]);
    /// let services: Vec<_> = registry
    ///     .iter()
    ///     .filter_map(|(name, url)| Some((name, url.ok()?.port()?)))
    ///     .collect();
    /// assert_eq!(services, [("AUTH_SVC", 8001), ("CHAT_SVC", 8002)]);
    /// assert_eq!(registry.iter().len(), 3);
    /// ```
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            registry: self,
            services: self.services.iter(),
        }
    }
}

impl Source for Registry {
    fn get(&self, key: &str) -> Option<Raw<'_>> {
        self.vars.get(key).map(Value::raw)
    }
}

impl Value {
    fn raw(&self) -> Raw<'_> {
        match self {
            Value::Text(text) => Raw::Text(Cow::Borrowed(text)),
            Value::NotUnicode(_) => Raw::NotUnicode,
        }
    }
}

/// `Ok(None)` for an absent service.
pub(crate) fn optional(result: Result<Url, Error>) -> Result<Option<Url>, Error> {
    match result {
        Ok(url) => Ok(Some(url)),
        Err(err) if err.is_not_configured() => Ok(None),
        Err(err) => Err(err),
    }
}

/// A variable discovery or a client setting may read for some service name.
fn is_relevant(key: &str) -> bool {
    [URL_SUFFIX, HOST_SUFFIX, PORT_SUFFIX]
        .iter()
        .any(|suffix| key.strip_suffix(suffix).is_some_and(name::is_prefix))
        || setting::is_setting(key)
}

#[cfg(windows)]
fn normalize_key(key: &str) -> Cow<'_, str> {
    Cow::Owned(key.to_ascii_uppercase())
}

#[cfg(not(windows))]
fn normalize_key(key: &str) -> Cow<'_, str> {
    Cow::Borrowed(key)
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Vars<'a>(&'a BTreeMap<String, Value>);
        struct Shown<'a>(&'a Value);

        impl fmt::Debug for Vars<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.iter().map(|(key, value)| (key, Shown(value))))
                    .finish()
            }
        }
        impl fmt::Debug for Shown<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0 {
                    Value::Text(text) => fmt::Debug::fmt(&redact_str(text), f),
                    Value::NotUnicode(_) => f.write_str("<not unicode>"),
                }
            }
        }

        f.debug_struct("Registry")
            .field("vars", &Vars(&self.vars))
            .finish()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Registry {
    /// Same as [`Registry::from_vars`].
    ///
    /// ```
    /// use svc_discovery::Registry;
    ///
    /// let registry: Registry = [("AUTH_SVC_URL", "http://auth:8001")].into_iter().collect();
    /// assert!(registry.is_configured("auth-svc"));
    /// ```
    fn from_iter<I: IntoIterator<Item = (K, V)>>(vars: I) -> Self {
        Registry::from_vars(vars)
    }
}

impl<'a> IntoIterator for &'a Registry {
    type Item = (&'a str, Result<Url, Error>);
    type IntoIter = Iter<'a>;

    /// Same as [`Registry::iter`].
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

// ===== impl Iter =====

/// Iterator over the services of a [`Registry`]; see [`Registry::iter`].
///
/// Each item is the service's variable prefix (`AUTH_SVC`) and its lookup
/// result. Results are computed as the iterator advances.
///
/// ```
/// use svc_discovery::Registry;
///
/// let registry = Registry::from_vars([("AUTH_SVC_URL", "http://auth:8001")]);
/// let mut iter = registry.iter();
/// let (name, url) = iter.next().unwrap();
/// assert_eq!((name, url.unwrap().as_str()), ("AUTH_SVC", "http://auth:8001/"));
/// assert!(iter.next().is_none());
/// ```
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    registry: &'a Registry,
    services: std::slice::Iter<'a, String>,
}

impl<'a> Iter<'a> {
    fn item(&self, prefix: &'a str) -> (&'a str, Result<Url, Error>) {
        (
            prefix,
            resolve::resolve_prefix(self.registry, prefix, prefix),
        )
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, Result<Url, Error>);

    fn next(&mut self) -> Option<Self::Item> {
        let prefix = self.services.next()?;
        Some(self.item(prefix))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.services.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let prefix = self.services.next_back()?;
        Some(self.item(prefix))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl FusedIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_relevant_variables() {
        let registry = Registry::from_vars([
            ("PATH", "/bin"),
            ("HOME", "/root"),
            ("A_URL", "http://a"),
            ("lower_URL", "http://b"),
            ("_URL", "http://c"),
            ("B_SERVICE_HOST", "10.0.0.1"),
            ("B_SERVICE_PORT", "80"),
            ("C_SERVICE_PORT", "80"),
            ("D_TIMEOUT", "2s"),
            ("D_BREAKER_RESET_TIMEOUT", "2s"),
            ("lower_MAX_RETRIES", "1"),
            ("D_RETRIES", "1"),
        ]);
        let keys: Vec<_> = registry.vars.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "A_URL",
                "B_SERVICE_HOST",
                "B_SERVICE_PORT",
                "C_SERVICE_PORT",
                "D_BREAKER_RESET_TIMEOUT",
                "D_TIMEOUT",
            ]
        );
        assert_eq!(registry.services, ["A", "B"]);
    }

    #[test]
    fn not_unicode_values_are_listed_and_invalid() {
        let mut vars = BTreeMap::new();
        vars.insert("A_URL".to_owned(), Value::NotUnicode(OsString::from("x")));
        vars.insert(
            "B_SERVICE_HOST".to_owned(),
            Value::NotUnicode(OsString::from("x")),
        );
        vars.insert("C_SERVICE_HOST".to_owned(), Value::Text("10.0.0.1".into()));
        vars.insert(
            "C_SERVICE_PORT".to_owned(),
            Value::NotUnicode(OsString::from("x")),
        );
        let registry = Registry::build(vars);
        let items: Vec<_> = registry.iter().collect();
        assert_eq!(items.len(), 3);
        for (name, result) in items {
            let err = result.unwrap_err();
            assert!(
                err.to_string().contains("not valid unicode"),
                "{name}: {err}"
            );
        }
        assert!(format!("{registry:?}").contains("<not unicode>"));
    }
}
