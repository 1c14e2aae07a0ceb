//! Turning a response into a typed value: the seed's `DecodeResponse[T]`.
//!
//! Three things go wrong when decoding a sibling's response, and each gets
//! an error that says what happened without a debugger:
//!
//! - **A non-2xx status.** An HTTP status is never an `Err` by itself (the
//!   caller decides what a 404 means), so decoding is where a status turns
//!   into an error. The error carries the status and the start of the body,
//!   which usually says why.
//! - **A body too large.** A misbehaving service must not make us buffer
//!   gigabytes. A `Content-Length` over the limit fails before reading; a
//!   body without one is read chunk by chunk and fails as soon as it passes
//!   the limit, so at most `limit` bytes are ever held.
//! - **Not the expected JSON.** An HTML error page from a proxy, a changed
//!   schema: the error carries the content type and the first ~200 bytes of
//!   the body (lossy UTF-8, never cut inside a character) next to the JSON
//!   error in its source.

use serde::de::DeserializeOwned;
use url::Url;

use crate::Response;
use crate::error::{DecodeError, DecodeProblem, Error, Kind};

/// The default body size limit of [`decode_response`]: 16 MiB.
pub const DEFAULT_DECODE_LIMIT: u64 = 16 * 1024 * 1024;

/// How many bytes of the body an error shows.
const SNIPPET_BYTES: usize = 200;

/// Checks that `resp` is a 2xx, reads its body (at most
/// [`DEFAULT_DECODE_LIMIT`] bytes) and deserialises it as JSON.
///
/// An empty body decodes as JSON `null`, so `()` and `Option<T>` accept a
/// `204 No Content`.
///
/// # Errors
///
/// [`Error::is_decode`] is true for every failure, and the error carries the
/// [`status`](Error::status), the [`content_type`](Error::content_type) and
/// a [`body_snippet`](Error::body_snippet):
///
/// - a status outside 200–299;
/// - a body larger than the limit (checked against `Content-Length` first,
///   then while reading);
/// - a body that could not be read;
/// - a body that is not JSON of type `T` (the `serde_json` error is the
///   [`source`](std::error::Error::source)).
///
/// # Example
///
/// ```no_run
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct User {
///     id: String,
///     name: String,
/// }
///
/// # async fn run(auth_client: svc_client::Client) -> Result<(), svc_client::Error> {
/// let resp = auth_client.get("/users/123").await?;
/// let user: User = svc_client::decode_response(resp).await?;
/// println!("{} is {}", user.id, user.name);
/// # Ok(())
/// # }
/// ```
pub async fn decode_response<T: DeserializeOwned>(resp: Response) -> Result<T, Error> {
    decode_response_with_limit(resp, DEFAULT_DECODE_LIMIT).await
}

/// [`decode_response`] with a body size limit of `limit` bytes.
///
/// # Example
///
/// ```no_run
/// # async fn run(client: svc_client::Client) -> Result<(), svc_client::Error> {
/// // A health check returns a few bytes; refuse anything larger than 4 KiB.
/// let resp = client.get("/healthz").await?;
/// let health: serde_json::Value = svc_client::decode_response_with_limit(resp, 4096).await?;
/// # let _ = health;
/// # Ok(())
/// # }
/// ```
pub async fn decode_response_with_limit<T: DeserializeOwned>(
    mut resp: Response,
    limit: u64,
) -> Result<T, Error> {
    let mut failure = Failure {
        status: resp.status(),
        url: svc_discovery::strip_userinfo(resp.url()).into_owned(),
        content_type: resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
    };

    if !failure.status.is_success() {
        // The start of the body usually says why; a read error only costs
        // the snippet.
        let head = read_head(&mut resp, SNIPPET_BYTES + 1).await;
        return Err(failure.error(DecodeProblem::Status, &head, None));
    }

    if resp.content_length().is_some_and(|len| len > limit) {
        return Err(failure.error(DecodeProblem::TooLarge { limit }, &[], None));
    }

    let capacity = resp.content_length().unwrap_or(0).min(limit);
    let mut body = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if (body.len() + chunk.len()) as u64 > limit {
                    let room = SNIPPET_BYTES.saturating_sub(body.len()).min(chunk.len());
                    body.extend_from_slice(&chunk[..room]);
                    return Err(failure.error(DecodeProblem::TooLarge { limit }, &body, None));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(err) => {
                return Err(failure.error(
                    DecodeProblem::Body,
                    &body,
                    Some(Box::new(err.without_url())),
                ));
            }
        }
    }

    failure.json(&body)
}

/// The facade's `bytes()`, `text()` and `decode()`: a buffered response
/// (its body read within the attempt) that must be a 2xx, as
/// [`decode_response`] checks it.
pub(crate) fn buffered_success(
    resp: http::Response<bytes::Bytes>,
) -> Result<(Failure, bytes::Bytes), Error> {
    let mut failure = Failure {
        status: resp.status(),
        url: resp
            .extensions()
            .get::<Url>()
            .map(|url| svc_discovery::strip_userinfo(url).into_owned())
            .unwrap_or_else(|| Url::parse("http://unknown.invalid/").expect("a valid URL")),
        content_type: resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
    };
    let body = resp.into_body();
    if !failure.status.is_success() {
        return Err(failure.error(DecodeProblem::Status, &body, None));
    }
    Ok((failure, body))
}

/// Decodes a buffered 2xx response as JSON (see [`buffered_success`]).
pub(crate) fn decode_buffered<T: DeserializeOwned>(
    resp: http::Response<bytes::Bytes>,
) -> Result<T, Error> {
    let (mut failure, body) = buffered_success(resp)?;
    failure.json(&body)
}

/// Reads up to about `max` bytes of the body, ignoring errors.
async fn read_head(resp: &mut Response, max: usize) -> Vec<u8> {
    let mut head = Vec::new();
    while head.len() < max {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = (max - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..room]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    head
}

pub(crate) struct Failure {
    status: http::StatusCode,
    url: Url,
    content_type: Option<String>,
}

impl Failure {
    /// Decodes a whole 2xx body as JSON; a blank body is JSON `null`.
    fn json<T: DeserializeOwned>(&mut self, body: &[u8]) -> Result<T, Error> {
        let json: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"null"
        } else {
            body
        };
        serde_json::from_slice(json)
            .map_err(|err| self.error(DecodeProblem::Json, body, Some(Box::new(err))))
    }

    fn error(
        &mut self,
        problem: DecodeProblem,
        body: &[u8],
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error::new(Kind::Decode(DecodeError {
            problem,
            status: self.status,
            url: self.url.clone(),
            content_type: self.content_type.take(),
            snippet: snippet(body),
            source,
        }))
    }
}

/// The first [`SNIPPET_BYTES`] bytes of `body` as lossy UTF-8, without a
/// character cut in half at the end, and `…` when truncated.
pub(crate) fn snippet(body: &[u8]) -> String {
    let truncated = body.len() > SNIPPET_BYTES;
    let cut = &body[..body.len().min(SNIPPET_BYTES)];
    let mut out = String::with_capacity(cut.len() + 3);
    let mut chunks = cut.utf8_chunks().peekable();
    while let Some(chunk) = chunks.next() {
        out.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            // An incomplete character at the cut is the cut's fault, not the
            // body's: drop it rather than show a replacement character.
            let cut_mid_char = truncated && chunks.peek().is_none();
            if !cut_mid_char {
                out.push(char::REPLACEMENT_CHARACTER);
            }
        }
    }
    if truncated {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_keeps_short_bodies() {
        assert_eq!(snippet(b""), "");
        assert_eq!(snippet(b"{\"error\":\"nope\"}"), "{\"error\":\"nope\"}");
    }

    #[test]
    fn snippet_truncates_at_200_bytes() {
        let body = vec![b'a'; 1000];
        let s = snippet(&body);
        assert_eq!(s.len(), 200 + '…'.len_utf8());
        assert!(s.ends_with('…'));
    }

    #[test]
    fn snippet_never_cuts_a_character_in_half() {
        // 199 ASCII bytes, then a 3-byte character straddling the cut.
        for pad in 195..=200 {
            let mut body = vec![b'x'; pad];
            for _ in 0..10 {
                body.extend_from_slice("€".as_bytes());
            }
            let s = snippet(&body);
            assert!(!s.contains(char::REPLACEMENT_CHARACTER), "pad {pad}: {s}");
            assert!(s.trim_end_matches('…').len() <= 200);
        }
    }

    #[test]
    fn snippet_marks_invalid_utf8() {
        assert_eq!(snippet(b"ab\xffcd"), "ab\u{fffd}cd");
        assert_eq!(snippet(b"ab\xe2\x82"), "ab\u{fffd}");
    }
}
