//! Shared-secret checks for `/notify` tokens and `/v1` API keys.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// A set of accepted secrets, compared in constant time. Empty means "open".
#[derive(Clone)]
pub struct Secrets {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} configured)", self.digests.len())
    }
}

impl Secrets {
    /// Keeps only digests of the secrets.
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Self {
        Self {
            digests: secrets.iter().map(|s| digest(s.as_ref())).collect(),
        }
    }

    /// True when no secret is configured.
    pub fn is_open(&self) -> bool {
        self.digests.is_empty()
    }

    /// True when `candidate` is one of the secrets. Hashing first makes every comparison the
    /// same length, and every configured secret is compared, so timing tells nothing.
    pub fn accepts(&self, candidate: &str) -> bool {
        let candidate = digest(candidate);
        self.digests
            .iter()
            .fold(subtle::Choice::from(0), |found, d| {
                found | d.ct_eq(&candidate)
            })
            .into()
    }
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The token of an `Authorization: Bearer …` value; `None` for any other scheme.
fn bearer(value: &HeaderValue) -> Option<&str> {
    let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The value of a header, if present and text.
pub fn header_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// The credentials a request presents, each to be checked: every `Authorization` header (its
/// `Bearer` token; any other scheme is a credential no secret matches) and every value of the
/// headers `names`. `None` stands for a credential presented that cannot match.
pub fn presented<'a>(headers: &'a HeaderMap, names: &[&str]) -> Vec<Option<&'a str>> {
    let authorization = headers.get_all(header::AUTHORIZATION).iter().map(bearer);
    let named = names.iter().flat_map(|name| {
        headers
            .get_all(*name)
            .iter()
            .map(|value| value.to_str().ok().map(str::trim))
    });
    authorization.chain(named).collect()
}

impl Secrets {
    /// True when at least one credential is presented and every one presented is accepted:
    /// a wrong credential is refused even beside a right one (fail closed).
    pub fn admits(&self, presented: &[Option<&str>]) -> bool {
        // Every credential is compared, so timing does not tell which one was wrong.
        let all = presented.iter().fold(true, |all, credential| {
            let accepted = credential.is_some_and(|c| self.accepts(c));
            all & accepted
        });
        !presented.is_empty() && all
    }
}

/// Middleware for `/v1`: requires one of `api.keys` as `Authorization: Bearer KEY` or
/// `X-Api-Key`, unless none is configured. Every credential presented must be valid.
pub async fn require_api_key(
    State(keys): State<Secrets>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if !keys.is_open() && !keys.admits(&presented(request.headers(), &[API_KEY_HEADER])) {
        return Err(ApiError::Unauthorized("a valid API key is required"));
    }
    Ok(next.run(request).await)
}

/// The header that may carry an API key instead of `Authorization`.
pub const API_KEY_HEADER: &str = "x-api-key";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_configured_secrets() {
        let secrets = Secrets::new(&["alpha", "beta"]);
        assert!(secrets.accepts("alpha"));
        assert!(secrets.accepts("beta"));
        assert!(!secrets.accepts("gamma"));
        assert!(!secrets.accepts(""));
        assert!(!secrets.is_open());
        assert!(Secrets::new::<&str>(&[]).is_open());
    }

    #[test]
    fn reads_bearer_tokens_case_insensitively() {
        assert_eq!(bearer(&"bearer  s3cret".parse().unwrap()), Some("s3cret"));
        assert_eq!(bearer(&"Basic abc".parse().unwrap()), None);
    }

    #[test]
    fn every_credential_presented_must_be_accepted() {
        let secrets = Secrets::new(&["alpha"]);
        let mut headers = HeaderMap::new();
        assert!(!secrets.admits(&presented(&headers, &["x-api-key"])));
        headers.insert("x-api-key", "alpha".parse().unwrap());
        assert!(secrets.admits(&presented(&headers, &["x-api-key"])));
        headers.insert(header::AUTHORIZATION, "Bearer alpha".parse().unwrap());
        assert!(secrets.admits(&presented(&headers, &["x-api-key"])));
        headers.insert(header::AUTHORIZATION, "Bearer wrong".parse().unwrap());
        assert!(!secrets.admits(&presented(&headers, &["x-api-key"])));
        headers.insert(header::AUTHORIZATION, "Basic YWxwaGE6".parse().unwrap());
        assert!(!secrets.admits(&presented(&headers, &["x-api-key"])));
        headers.remove(header::AUTHORIZATION);
        headers.append("x-api-key", "beta".parse().unwrap());
        assert!(!secrets.admits(&presented(&headers, &["x-api-key"])));
    }
}
