//! The seed's rules for a dial-out's parameters, shared by calltrail (which answers `422`
//! naming the field) and the simulator (which answers `400` with a message, as the gateway
//! would). Pure.

use serde_json::Value;

use crate::notification::AmdMode;

/// The gateway's timer defaults, in milliseconds (the seed's "Timers Configuration").
pub const NO_SPEECH_TIMEOUT_MS: u32 = 5_000;
pub const DECISION_TIMEOUT_MS: u32 = 15_000;
pub const TONE_TIMEOUT_MS: u32 = 20_000;
pub const GREETING_COMPLETION_TIMEOUT_MS: u32 = 2_000;

/// The longest timer accepted: one hour.
pub const MAX_TIMER_MS: u32 = 3_600_000;
/// The largest `thresholdWordCount` accepted.
pub const MAX_THRESHOLD_WORD_COUNT: u32 = 1_000;
/// The longest `caller` and `trunk`.
pub const MAX_TEXT: usize = 128;
/// The most digits of a `tel:` target (E.164 allows 15; some trunks add a prefix).
pub const MAX_TEL_DIGITS: usize = 20;

/// A `target`: `tel:` and digits with an optional leading `+` (`tel:911234567890`), or
/// `sip:user@host[:port]` (`sip:1234567890@1.23.345.678:1234`). The scheme is read in any
/// case and written in lower case.
pub fn target(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let (scheme, rest) = raw
        .split_once(':')
        .ok_or_else(|| format!("`{raw}` is neither tel:DIGITS nor sip:user@host[:port]"))?;
    match scheme.to_ascii_lowercase().as_str() {
        "tel" => {
            let digits = rest.strip_prefix('+').unwrap_or(rest);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "`{raw}`: a tel: target is digits with an optional leading +, e.g. tel:911234567890"
                ));
            }
            if digits.len() > MAX_TEL_DIGITS {
                return Err(format!(
                    "`{raw}`: a tel: target has at most {MAX_TEL_DIGITS} digits"
                ));
            }
            Ok(format!("tel:{rest}"))
        }
        "sip" => {
            sip_address(rest).map_err(|why| format!("`{raw}`: {why}"))?;
            Ok(format!("sip:{rest}"))
        }
        _ => Err(format!(
            "`{raw}` is neither tel:DIGITS nor sip:user@host[:port]"
        )),
    }
}

/// `user@host[:port]`: a user without `@`, whitespace or control characters; a host name,
/// IPv4 address or `[IPv6]` literal; a port from 1 to 65535.
fn sip_address(address: &str) -> Result<(), String> {
    let (user, host_port) = address
        .split_once('@')
        .ok_or("a sip: target is sip:user@host[:port]")?;
    if user.is_empty()
        || user
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '@')
    {
        return Err("the user part of a sip: target must be non-empty, without spaces or @".into());
    }
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (inside, after) = v6
            .split_once(']')
            .ok_or("an IPv6 host is written [address]")?;
        if inside.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`[{inside}]` is not an IPv6 address"));
        }
        match after {
            "" => (inside, None),
            port => (
                inside,
                Some(
                    port.strip_prefix(':')
                        .ok_or("a port follows the host after `:`")?,
                ),
            ),
        }
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    let host_ok = !host.is_empty()
        && (host_port.starts_with('[')
            || host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }));
    if !host_ok {
        return Err(format!("`{host}` is not a host name or IP address"));
    }
    if let Some(port) = port {
        if !port.parse::<u16>().is_ok_and(|p| p > 0) {
            return Err(format!("`{port}` is not a port from 1 to 65535"));
        }
    }
    Ok(())
}

/// `caller`: the user part of the caller id, e.g. `+127061657882`; required.
pub fn caller(raw: &str) -> Result<String, String> {
    short_text(raw, "the caller id")
}

/// `trunk`: a carrier name, when given.
pub fn trunk(raw: &str) -> Result<String, String> {
    short_text(raw, "a trunk")
}

fn short_text(raw: &str, what: &str) -> Result<String, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if text.chars().count() > MAX_TEXT {
        return Err(format!("{what} has at most {MAX_TEXT} characters"));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("{what} must not hold control characters"));
    }
    Ok(text.to_owned())
}

/// `machineDetection`: `disconnect`, `detect` or `disabled`.
pub fn machine_detection(raw: &str) -> Result<AmdMode, String> {
    match raw {
        "disconnect" => Ok(AmdMode::Disconnect),
        "detect" => Ok(AmdMode::Detect),
        "disabled" => Ok(AmdMode::Disabled),
        other => Err(format!(
            "`{other}` is not one of disconnect, detect, disabled"
        )),
    }
}

/// A positive whole number up to `max` (a JSON integer; `5000.0` is accepted, `5000.5` not).
pub fn positive(value: &Value, max: u32) -> Result<u32, String> {
    let number = match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }),
        _ => {
            return Err(format!(
                "must be a positive whole number, got {}",
                kind(value)
            ));
        }
    };
    match number {
        Some(n) if n >= 1 && n <= u64::from(max) => Ok(n as u32),
        _ => Err(format!(
            "must be a whole number from 1 to {max}, got {value}"
        )),
    }
}

/// A timer in milliseconds.
pub fn timer(value: &Value) -> Result<u32, String> {
    positive(value, MAX_TIMER_MS)
}

/// `thresholdWordCount`.
pub fn threshold_word_count(value: &Value) -> Result<u32, String> {
    positive(value, MAX_THRESHOLD_WORD_COUNT)
}

/// `notifyurl`: an absolute http(s) URL.
pub fn notify_url(raw: &str) -> Result<String, String> {
    match reqwest::Url::parse(raw.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(raw.trim().to_owned())
        }
        _ => Err(format!("`{raw}` is not an absolute http(s) URL")),
    }
}

/// The JSON type of `value`, for messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn targets_follow_the_seed() {
        for (raw, expected) in [
            ("tel:911234567890", "tel:911234567890"),
            ("tel:+127061657882", "tel:+127061657882"),
            ("TEL:+1", "tel:+1"),
            (
                " sip:1234567890@1.23.345.678:1234 ",
                "sip:1234567890@1.23.345.678:1234",
            ),
            ("sip:alice@pbx.example.com", "sip:alice@pbx.example.com"),
            ("sip:bob@[2001:db8::1]:5060", "sip:bob@[2001:db8::1]:5060"),
        ] {
            assert_eq!(target(raw).as_deref(), Ok(expected), "{raw}");
        }
        for raw in [
            "",
            "911234567890",
            "tel:",
            "tel:+",
            "tel:12-34",
            "tel:++1",
            "tel:1 2",
            "tel:123456789012345678901",
            "sip:",
            "sip:host.example",
            "sip:@host",
            "sip:a b@host",
            "sip:alice@",
            "sip:alice@host:0",
            "sip:alice@host:70000",
            "sip:alice@host:port",
            "sip:alice@ho_st",
            "sip:alice@[zz]",
            "mailto:a@b",
            "http://x",
        ] {
            assert!(target(raw).is_err(), "{raw:?} accepted");
        }
    }

    #[test]
    fn callers_and_trunks_are_short_printable_text() {
        assert_eq!(caller(" +127061657882 ").as_deref(), Ok("+127061657882"));
        assert!(caller("").is_err());
        assert!(caller("   ").is_err());
        assert!(caller("a\u{7}b").is_err());
        assert!(caller(&"9".repeat(MAX_TEXT + 1)).is_err());
        assert_eq!(trunk("TRUNK").as_deref(), Ok("TRUNK"));
    }

    #[test]
    fn machine_detection_is_one_of_three_modes() {
        assert_eq!(machine_detection("detect"), Ok(AmdMode::Detect));
        assert_eq!(machine_detection("disconnect"), Ok(AmdMode::Disconnect));
        assert_eq!(machine_detection("disabled"), Ok(AmdMode::Disabled));
        assert!(
            machine_detection("enabled")
                .unwrap_err()
                .contains("disconnect, detect, disabled")
        );
        assert!(machine_detection("Detect").is_err());
    }

    #[test]
    fn timers_and_thresholds_are_positive_whole_numbers() {
        assert_eq!(timer(&json!(12000)), Ok(12000));
        assert_eq!(timer(&json!(5000.0)), Ok(5000));
        for bad in [
            json!(0),
            json!(-1),
            json!(1.5),
            json!("5000"),
            json!(null),
            json!(MAX_TIMER_MS + 1),
        ] {
            assert!(timer(&bad).is_err(), "{bad}");
        }
        assert_eq!(threshold_word_count(&json!(4)), Ok(4));
        assert!(threshold_word_count(&json!(0)).is_err());
    }

    #[test]
    fn notify_urls_are_absolute_http() {
        assert!(notify_url("https://de8a.ngrok-free.app/notify").is_ok());
        assert!(notify_url("/notify").is_err());
        assert!(notify_url("ftp://x/notify").is_err());
    }
}
