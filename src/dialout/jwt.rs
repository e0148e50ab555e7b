//! The gateway's `auth` header, as Kore.ai does it: a JWT signed HS256 with the app's client
//! secret, payload `{"appId": client id, "sub": …, "iat": …, "exp": …}`.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::Secret;

/// The `sub` calltrail signs with.
pub const SUBJECT: &str = "calltrail";
/// How long a token is valid: each request to the gateway signs a fresh one.
pub const LIFETIME_SECS: i64 = 300;

/// The token's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(rename = "appId")]
    pub app_id: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("the token is invalid: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("the token's appId `{0}` is not the configured client id")]
    WrongApp(String),
}

/// A token for `client_id`, issued at `now`.
pub fn sign(client_id: &str, secret: &Secret, now: DateTime<Utc>) -> Result<String, JwtError> {
    let claims = Claims {
        app_id: client_id.to_owned(),
        sub: SUBJECT.to_owned(),
        iat: now.timestamp(),
        exp: now.timestamp() + LIFETIME_SECS,
    };
    let key = EncodingKey::from_secret(secret.expose().as_bytes());
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &key,
    )?)
}

/// Checks a token as the gateway does: HS256 with `secret`, not expired, issued for
/// `client_id`. Returns its claims.
pub fn verify(token: &str, client_id: &str, secret: &Secret) -> Result<Claims, JwtError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "sub"]);
    validation.leeway = 30;
    let key = DecodingKey::from_secret(secret.expose().as_bytes());
    let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)?.claims;
    if claims.app_id != client_id {
        return Err(JwtError::WrongApp(claims.app_id));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    #[test]
    fn a_signed_token_verifies_with_the_secret_and_carries_the_claims() {
        let secret = Secret::new("cs-5ecret");
        let now = Utc::now();

        let token = sign("cs-client", &secret, now).unwrap();

        let claims = verify(&token, "cs-client", &secret).unwrap();
        assert_eq!(claims.app_id, "cs-client");
        assert_eq!(claims.sub, SUBJECT);
        assert_eq!(claims.iat, now.timestamp());
        assert_eq!(claims.exp, now.timestamp() + LIFETIME_SECS);
        // HS256, and the payload's names are Kore.ai's.
        let mut parts = token.split('.');
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap())
                .unwrap();
        assert_eq!(header["alg"], "HS256");
        let payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap())
                .unwrap();
        let mut keys: Vec<&str> = payload
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        assert_eq!(keys, ["appId", "exp", "iat", "sub"]);
    }

    #[test]
    fn a_wrong_secret_an_expired_token_or_another_app_is_refused() {
        let secret = Secret::new("right");
        let token = sign("app", &secret, Utc::now()).unwrap();
        assert!(verify(&token, "app", &Secret::new("wrong")).is_err());
        assert!(matches!(
            verify(&token, "other-app", &secret),
            Err(JwtError::WrongApp(_))
        ));
        let old = sign("app", &secret, Utc::now() - chrono::TimeDelta::hours(1)).unwrap();
        assert!(verify(&old, "app", &secret).is_err());
        assert!(verify("not.a.token", "app", &secret).is_err());
    }
}
