//! The settings of the gateways besides Kore.ai (docs/configuration.md, "Sources"), and the
//! signature settings every source shares.

use serde::Deserialize;

use super::ConfigError;
use crate::dialout::Secret;

/// `[jambonz]`: `POST /jambonz/notify`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JambonzSettings {
    /// The account's webhook secrets; when any is set, every webhook must carry a valid
    /// `Jambonz-Signature`. Several: rotation. Never logged.
    pub signing_secrets: Vec<Secret>,
}

/// `[twilio]`: `POST /twilio/notify`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioSettings {
    /// The account's auth tokens; when any is set, every callback must carry a valid
    /// `X-Twilio-Signature`. Several: rotation. Never logged.
    pub auth_tokens: Vec<Secret>,
    /// calltrail's base URL as Twilio calls it (`https://calltrail.example.com`), which
    /// Twilio's signature covers; empty: `http://` and the request's `Host`.
    pub public_url: String,
}

impl TwilioSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let url = self.public_url.trim();
        let parsed = reqwest::Url::parse(url);
        let usable = parsed.is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.query().is_none()
                && u.fragment().is_none()
        });
        if !url.is_empty() && !usable {
            return Err(ConfigError::Invalid {
                key: "twilio.public_url",
                message: format!(
                    "`{url}` is not an http(s) base URL without query (calltrail's URL as Twilio calls it)"
                ),
            });
        }
        Ok(())
    }
}

/// Refuses an empty secret in a list: it would sign with an empty key.
pub(super) fn no_empty_secrets(key: &'static str, secrets: &[Secret]) -> Result<(), ConfigError> {
    if secrets.iter().any(|s| s.expose().trim().is_empty()) {
        return Err(ConfigError::Invalid {
            key,
            message: "secrets must not be empty strings".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Settings;
    use super::*;

    fn signed() -> Settings {
        let mut settings = Settings::default();
        settings.notify.signing_secrets = vec![Secret::new("k0re-s3cret")];
        settings.jambonz.signing_secrets = vec![Secret::new("jamb0nz-s3cret")];
        settings.twilio.auth_tokens = vec![Secret::new("tw1lio-t0ken")];
        settings.twilio.public_url = "https://calltrail.example.com/base".into();
        settings
    }

    #[test]
    fn signing_settings_are_off_by_default_with_a_300_s_tolerance() {
        let settings = Settings::default();
        assert!(settings.notify.signing_secrets.is_empty());
        assert!(settings.jambonz.signing_secrets.is_empty());
        assert!(settings.twilio.auth_tokens.is_empty());
        assert_eq!(settings.notify.signature_tolerance_s, 300);
        assert!(signed().validate().is_ok());
    }

    #[test]
    fn bad_signing_settings_name_their_key() {
        type Spoil = fn(&mut Settings);
        let cases: [(&str, Spoil); 6] = [
            ("notify.signing_secrets", |s| {
                s.notify.signing_secrets.push(Secret::new(" "))
            }),
            ("jambonz.signing_secrets", |s| {
                s.jambonz.signing_secrets.push(Secret::new(""))
            }),
            ("twilio.auth_tokens", |s| {
                s.twilio.auth_tokens.push(Secret::new(""))
            }),
            ("twilio.public_url", |s| {
                s.twilio.public_url = "calltrail.example.com".into()
            }),
            ("twilio.public_url", |s| {
                s.twilio.public_url = "https://c.example/?a=1".into()
            }),
            ("notify.signature_tolerance_s", |s| {
                s.notify.signature_tolerance_s = 0
            }),
        ];
        for (key, spoil) in cases {
            let mut settings = signed();
            spoil(&mut settings);
            let err = settings.validate().unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { key: k, .. } if *k == key),
                "{key}: {err}"
            );
        }
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let shown = format!("{:?}", signed());
        for secret in ["k0re-s3cret", "jamb0nz-s3cret", "tw1lio-t0ken"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
