//! The command line of the `demo` binary: run the services itself, or
//! attach to running ones.

use std::path::PathBuf;
use std::time::Duration;

/// The command line of the `demo` binary.
pub const USAGE: &str = "\
demo [--quick] [--out-dir DIR]
demo [--quick] [--out-dir DIR] --profile-url URL --auth-url URL --chat-url URL [--breaker-reset-ms MS]

Starts auth-svc (three replicas), chat-svc and profile-svc on free ports of
127.0.0.1, drives load on profile-svc through a failure scenario (healthy,
one auth replica down, chat down, auth failing, auth recovered), prints one
line per second, checks every
expectation and writes DIR/summary.txt, DIR/timeline.svg and DIR/logs/.
Given the three URLs, it starts nothing and drives services already running
elsewhere (a cluster: see deploy/kubernetes/README.md) instead.

Options:
  --quick                the whole scenario in about 30 s (CI runs this)
  --out-dir DIR          where to write results (default: target/demo)
  --profile-url URL      profile-svc to drive (with --auth-url and --chat-url)
  --auth-url URL[,URL..] auth-svc (its replicas) whose faults and stats the driver uses
  --chat-url URL         chat-svc whose faults and stats the driver uses
  --breaker-reset-ms MS  profile-svc's AUTH_SVC_BREAKER_RESET_TIMEOUT, in ms,
                         when attached (default 5000, as in deploy/kubernetes)
  -h, --help             print this help

Exit status: 0 when every expectation held, 1 when one did not (each is
named), 2 on a usage or startup error, 130 when interrupted.";

/// What the driver was asked to do.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// The short scenario.
    pub quick: bool,
    /// Where results go.
    pub out_dir: PathBuf,
    /// Where the service binaries are (next to the driver by default).
    pub bin_dir: PathBuf,
    /// Services already running elsewhere, to drive instead of starting them.
    pub attach: Option<Attach>,
}

/// The base URLs of services the driver attaches to instead of starting.
#[derive(Clone, Debug, PartialEq)]
pub struct Attach {
    /// profile-svc.
    pub profile: String,
    /// The auth-svc replicas (`--auth-url` takes a comma-separated list).
    pub auth: Vec<String>,
    /// chat-svc.
    pub chat: String,
    /// profile-svc's breaker reset timeout (`AUTH_SVC_BREAKER_RESET_TIMEOUT`).
    pub breaker_reset: Duration,
}

impl Options {
    /// Parses the arguments (without the program name). `Ok(None)` for `--help`.
    ///
    /// # Errors
    ///
    /// An unknown option or a missing value, named.
    ///
    /// ```
    /// use svc_demo::driver::Options;
    ///
    /// let o = Options::parse(["--quick".to_owned()], "bin".into()).unwrap().unwrap();
    /// assert!(o.quick);
    /// assert!(Options::parse(["--help".to_owned()], "bin".into()).unwrap().is_none());
    /// assert!(Options::parse(["--fast".to_owned()], "bin".into()).unwrap_err().contains("--fast"));
    /// ```
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        bin_dir: PathBuf,
    ) -> Result<Option<Options>, String> {
        let mut options = Options {
            quick: false,
            out_dir: PathBuf::from("target/demo"),
            bin_dir,
            attach: None,
        };
        let (mut profile, mut auth, mut chat, mut reset) = (None, None, None, None);
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |what: &str| args.next().ok_or(format!("{arg} needs {what}"));
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--out-dir" => options.out_dir = value("a directory")?.into(),
                "--profile-url" => profile = Some(base_url(&arg, value("a URL")?)?),
                "--auth-url" => {
                    let list = value("a URL")?;
                    auth = Some(
                        list.split(',')
                            .map(|url| base_url(&arg, url.trim().to_owned()))
                            .collect::<Result<Vec<_>, _>>()?,
                    );
                }
                "--chat-url" => chat = Some(base_url(&arg, value("a URL")?)?),
                "--breaker-reset-ms" => {
                    let ms = value("milliseconds")?;
                    let ms: u64 = ms
                        .parse()
                        .map_err(|_| format!("--breaker-reset-ms: not a number: `{ms}`"))?;
                    reset = Some(Duration::from_millis(ms));
                }
                "-h" | "--help" => return Ok(None),
                other => return Err(format!("unknown option `{other}`")),
            }
        }
        options.attach = match (profile, auth, chat) {
            (Some(profile), Some(auth), Some(chat)) => Some(Attach {
                profile,
                auth,
                chat,
                breaker_reset: reset.unwrap_or(Duration::from_secs(5)),
            }),
            (None, None, None) if reset.is_none() => None,
            _ => {
                return Err(
                    "attaching needs --profile-url, --auth-url and --chat-url together \
                     (--breaker-reset-ms only with them)"
                        .to_owned(),
                );
            }
        };
        Ok(Some(options))
    }
}

/// `URL` without its trailing slashes, if it is an http(s) URL.
fn base_url(option: &str, url: String) -> Result<String, String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("{option}: not an http(s) URL: `{url}`"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse() {
        let parse = |args: &[&str]| Options::parse(args.iter().map(|s| s.to_string()), "b".into());
        let o = parse(&["--out-dir", "x/y"]).unwrap().unwrap();
        assert_eq!(o.out_dir, PathBuf::from("x/y"));
        assert!(!o.quick);
        assert!(parse(&["--out-dir"]).unwrap_err().contains("--out-dir"));
        assert!(parse(&["-h"]).unwrap().is_none());
        assert!(o.attach.is_none());

        let o = parse(&[
            "--profile-url",
            "http://localhost:8000/",
            "--auth-url",
            "http://localhost:8001",
            "--chat-url",
            "https://chat.example",
            "--breaker-reset-ms",
            "10000",
        ])
        .unwrap()
        .unwrap();
        let attach = o.attach.unwrap();
        assert_eq!(attach.profile, "http://localhost:8000");
        assert_eq!(attach.chat, "https://chat.example");
        assert_eq!(attach.breaker_reset, Duration::from_secs(10));
        let partial = parse(&["--profile-url", "http://p"]).unwrap_err();
        assert!(partial.contains("--auth-url"), "{partial}");
        assert!(
            parse(&["--auth-url", "localhost:8001"])
                .unwrap_err()
                .contains("--auth-url")
        );
        assert!(parse(&["--breaker-reset-ms", "5"]).is_err());
    }
}
