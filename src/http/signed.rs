//! Each source's signature (docs/api.md, "Signed notifications"), checked over the raw body
//! before it is parsed. A source with no secret configured is not checked; one with secrets
//! fails closed.

use std::sync::Arc;

use axum::http::{HeaderMap, Uri, header};

use super::auth::header_value;
use crate::config::Settings;
use crate::dialout::Secret;
use crate::notification::Format;
use crate::notification::signature::{
    SignatureError, TWILIO_HEADER, TwilioBody, verify_timestamped, verify_twilio,
};
use crate::notification::twilio::form_pairs;

/// The header Kore.ai signs with.
pub const KORE_HEADER: &str = "SAVG-Signature";
/// The header jambonz signs with.
pub const JAMBONZ_HEADER: &str = "Jambonz-Signature";

/// The configured secrets of every source. `Debug` shows only how many there are.
#[derive(Clone)]
pub struct Signatures {
    kore: Arc<[Secret]>,
    jambonz: Arc<[Secret]>,
    twilio: Arc<[Secret]>,
    /// Without a trailing `/`; empty: `http://` and the request's `Host`.
    twilio_public_url: Arc<str>,
    tolerance_s: u64,
}

impl std::fmt::Debug for Signatures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Signatures(kore: {}, jambonz: {}, twilio: {} configured)",
            self.kore.len(),
            self.jambonz.len(),
            self.twilio.len()
        )
    }
}

impl Signatures {
    pub fn new(settings: &Settings) -> Self {
        Self {
            kore: settings.notify.signing_secrets.clone().into(),
            jambonz: settings.jambonz.signing_secrets.clone().into(),
            twilio: settings.twilio.auth_tokens.clone().into(),
            twilio_public_url: settings
                .twilio
                .public_url
                .trim()
                .trim_end_matches('/')
                .into(),
            tolerance_s: settings.notify.signature_tolerance_s,
        }
    }

    /// Checks the signature `format`'s gateway sends with `body`, when its secrets are set.
    /// `uri` is the request's (path and query), for Twilio's scheme.
    pub fn verify(
        &self,
        format: Format,
        headers: &HeaderMap,
        uri: &Uri,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        let now = chrono::Utc::now().timestamp();
        let timestamped = |name: &'static str, secrets: &[Secret]| {
            if secrets.is_empty() {
                return Ok(());
            }
            let secrets: Vec<&str> = secrets.iter().map(Secret::expose).collect();
            let header = header_value(headers, name);
            verify_timestamped(name, header, body, &secrets, now, self.tolerance_s)
        };
        match format {
            Format::Kore => timestamped(KORE_HEADER, &self.kore),
            Format::Jambonz => timestamped(JAMBONZ_HEADER, &self.jambonz),
            Format::Twilio if self.twilio.is_empty() => Ok(()),
            Format::Twilio => {
                let url = self.twilio_url(headers, uri);
                let tokens: Vec<&str> = self.twilio.iter().map(Secret::expose).collect();
                let pairs;
                let signed = if url.contains("bodySHA256=") {
                    TwilioBody::Raw(body)
                } else {
                    pairs = form_pairs(body);
                    TwilioBody::Form(&pairs)
                };
                verify_twilio(header_value(headers, TWILIO_HEADER), &url, signed, &tokens)
            }
        }
    }

    /// The URL Twilio called: `twilio.public_url` (or `http://` and `Host`) followed by the
    /// request's path and query.
    fn twilio_url(&self, headers: &HeaderMap, uri: &Uri) -> String {
        let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
        if self.twilio_public_url.is_empty() {
            let host = header_value(headers, header::HOST.as_str())
                .or_else(|| uri.authority().map(|a| a.as_str()))
                .unwrap_or_default();
            format!("http://{host}{path}")
        } else {
            format!("{}{path}", self.twilio_public_url)
        }
    }
}
