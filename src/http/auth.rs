//! Shared-secret checks for `/notify` tokens and `/v1` API keys.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
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

/// The value of `Authorization: Bearer …`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The value of a header, if present and text.
pub fn header_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// Middleware for `/v1`: requires one of `api.keys` as `Authorization: Bearer KEY` or
/// `X-Api-Key`, unless none is configured.
pub async fn require_api_key(
    State(keys): State<Secrets>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if !keys.is_open() {
        let headers = request.headers();
        let presented = bearer(headers).or_else(|| header_value(headers, "x-api-key"));
        if !presented.is_some_and(|key| keys.accepts(key)) {
            return Err(ApiError::Unauthorized("a valid API key is required"));
        }
    }
    Ok(next.run(request).await)
}

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
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "bearer  s3cret".parse().unwrap());
        assert_eq!(bearer(&headers), Some("s3cret"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }
}
