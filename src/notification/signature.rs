//! Signed notifications (docs/api.md, "Signed notifications"): checking that a body came from
//! the gateway that holds the shared secret, over the raw bytes, before anything parses it.
//!
//! Two schemes:
//! - `t=<unix seconds>,v1=<hex>` (Kore.ai's `SAVG-Signature`, jambonz's `Jambonz-Signature`):
//!   HMAC-SHA256 keyed by the secret over `<t>.<raw body>`, lower-case hex; the header may
//!   carry several `v1` values and several secrets may be configured (rotation); `t` must be
//!   within a tolerance of now, in both directions, so that an old body cannot be replayed.
//! - Twilio's `X-Twilio-Signature`: base64 HMAC-SHA1 keyed by the auth token over the full
//!   URL followed by each form parameter's name and value, names sorted; a JSON body is
//!   signed through the `bodySHA256` query parameter instead.
//!
//! Pure: the caller passes the current time and the URL the request was made to. Every
//! comparison of a MAC is constant-time ([`Mac::verify_slice`], [`subtle`]).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;
type HmacSha1 = Hmac<Sha1>;

/// The default of `notify.signature_tolerance_s`: how far `t` may be from now, in seconds.
pub const DEFAULT_TOLERANCE_S: u64 = 300;

/// Why a signature was refused. The messages name no secret and no expected value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header is absent or blank.
    #[error("the {0} header is missing")]
    Missing(&'static str),
    /// The header cannot be read.
    #[error("the {header} header is malformed: {reason}")]
    Malformed {
        header: &'static str,
        reason: &'static str,
    },
    /// No configured secret gives any of the signatures sent.
    #[error("the {0} header does not match the body")]
    Mismatch(&'static str),
    /// The signature matches, but its timestamp is too far from now: an old body replayed,
    /// or a clock far off.
    #[error("the {header} timestamp is {age_s} s from now, more than the {tolerance_s} s allowed")]
    Stale {
        header: &'static str,
        age_s: u64,
        tolerance_s: u64,
    },
}

/// A parsed `t=…,v1=…` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampedSignature {
    /// Unix seconds, as sent.
    pub timestamp: i64,
    /// The `t` value as sent: the MAC covers these exact characters.
    timestamp_text: String,
    /// Every `v1` value that decoded as hex; others cannot match anything.
    signatures: Vec<Vec<u8>>,
}

impl TimestampedSignature {
    /// Reads `t=<seconds>,v1=<hex>[,v1=<hex>…]`; parts may be in any order, other schemes
    /// (`v0=…`) are ignored, whitespace around parts is allowed.
    pub fn parse(header_name: &'static str, value: &str) -> Result<Self, SignatureError> {
        let malformed = |reason| SignatureError::Malformed {
            header: header_name,
            reason,
        };
        let mut timestamp = None;
        let mut signatures = Vec::new();
        let mut any_v1 = false;
        for part in value.split(',') {
            let Some((key, item)) = part.trim().split_once('=') else {
                continue;
            };
            match key.trim() {
                "t" => {
                    if timestamp.is_some() {
                        return Err(malformed("`t` is given twice"));
                    }
                    let text = item.trim();
                    let seconds = text
                        .parse::<i64>()
                        .ok()
                        .filter(|_| !text.starts_with('+'))
                        .ok_or(malformed("`t` is not a whole number of seconds"))?;
                    timestamp = Some((seconds, text.to_string()));
                }
                "v1" => {
                    any_v1 = true;
                    if let Ok(bytes) = hex::decode(item.trim()) {
                        signatures.push(bytes);
                    }
                }
                _ => {}
            }
        }
        let (timestamp, timestamp_text) = timestamp.ok_or(malformed("it has no `t=` part"))?;
        if !any_v1 {
            return Err(malformed("it has no `v1=` part"));
        }
        Ok(Self {
            timestamp,
            timestamp_text,
            signatures,
        })
    }
}

/// Checks a `t=…,v1=…` header (`header_name` is for messages) against `body`: some secret
/// must give some `v1`, and `t` must be within `tolerance_s` of `now` (Unix seconds).
pub fn verify_timestamped<S: AsRef<str>>(
    header_name: &'static str,
    header: Option<&str>,
    body: &[u8],
    secrets: &[S],
    now: i64,
    tolerance_s: u64,
) -> Result<(), SignatureError> {
    let header = header
        .filter(|h| !h.trim().is_empty())
        .ok_or(SignatureError::Missing(header_name))?;
    let parsed = TimestampedSignature::parse(header_name, header)?;
    let matches = secrets.iter().any(|secret| {
        parsed.signatures.iter().any(|signature| {
            timestamped_mac(secret.as_ref(), &parsed.timestamp_text, body)
                .verify_slice(signature)
                .is_ok()
        })
    });
    if !matches {
        return Err(SignatureError::Mismatch(header_name));
    }
    let age_s = now.abs_diff(parsed.timestamp);
    if age_s > tolerance_s {
        return Err(SignatureError::Stale {
            header: header_name,
            age_s,
            tolerance_s,
        });
    }
    Ok(())
}

/// The `t=…,v1=…` header value a gateway holding `secret` sends with `body` at `timestamp`.
pub fn sign_timestamped(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mac = timestamped_mac(secret, &timestamp.to_string(), body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

fn timestamped_mac(secret: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header Twilio signs with.
pub const TWILIO_HEADER: &str = "X-Twilio-Signature";

/// What Twilio signed besides the URL.
#[derive(Debug, Clone, Copy)]
pub enum TwilioBody<'a> {
    /// A form-encoded body, as its decoded name/value pairs.
    Form(&'a [(String, String)]),
    /// Any other body (JSON): its SHA-256 must be the URL's `bodySHA256`.
    Raw(&'a [u8]),
}

/// Checks an `X-Twilio-Signature` against the URL the request was made to (`url`, the full
/// `scheme://host[:port]/path?query`) and the body, for any of `auth_tokens`. The URL is
/// tried as given, without its port and with the scheme's default port, as Twilio's own
/// request validators do (the port Twilio signs with varies).
pub fn verify_twilio<S: AsRef<str>>(
    header: Option<&str>,
    url: &str,
    body: TwilioBody<'_>,
    auth_tokens: &[S],
) -> Result<(), SignatureError> {
    let header = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(SignatureError::Missing(TWILIO_HEADER))?;
    let signature = BASE64
        .decode(header)
        .map_err(|_| SignatureError::Malformed {
            header: TWILIO_HEADER,
            reason: "it is not base64",
        })?;
    let params: &[(String, String)] = match body {
        TwilioBody::Form(params) => params,
        TwilioBody::Raw(raw) => {
            let declared =
                query_value(url, "bodySHA256").ok_or(SignatureError::Mismatch(TWILIO_HEADER))?;
            let actual = hex::encode(Sha256::digest(raw));
            if !bool::from(
                actual
                    .as_bytes()
                    .ct_eq(declared.to_ascii_lowercase().as_bytes()),
            ) {
                return Err(SignatureError::Mismatch(TWILIO_HEADER));
            }
            &[]
        }
    };
    let urls = url_variants(url);
    let matches = auth_tokens.iter().any(|token| {
        urls.iter().any(|url| {
            twilio_mac(token.as_ref(), url, params)
                .verify_slice(&signature)
                .is_ok()
        })
    });
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch(TWILIO_HEADER))
    }
}

/// The `X-Twilio-Signature` Twilio sends for `url` and `params` with `auth_token`.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    BASE64.encode(twilio_mac(auth_token, url, params).finalize().into_bytes())
}

/// The URL, then each distinct name in sorted order followed by each of its distinct values
/// in sorted order (Twilio's RequestValidator).
fn twilio_mac(auth_token: &str, url: &str, params: &[(String, String)]) -> HmacSha1 {
    let mut mac = HmacSha1::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key");
    mac.update(url.as_bytes());
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    for (name, value) in pairs {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// `url` as given, without its port, and with the scheme's default port when it has none.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return variants;
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    // Userinfo and IPv6 literals are not what Twilio calls back; their ports are left alone.
    if authority.contains('@') || authority.contains('[') {
        return variants;
    }
    match authority.rsplit_once(':') {
        Some((host, _port)) => variants.push(format!("{scheme}://{host}{tail}")),
        None => {
            let port = if scheme.eq_ignore_ascii_case("https") {
                443
            } else {
                80
            };
            variants.push(format!("{scheme}://{authority}:{port}{tail}"));
        }
    }
    variants
}

/// The first value of `name` in the URL's query, percent-decoded.
fn query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

#[cfg(test)]
mod tests;
