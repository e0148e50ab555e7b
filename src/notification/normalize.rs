//! The per-field rules of docs/api.md, "What calltrail makes of a notification": reason code,
//! SIP code, answering-machine detection and duration. Each takes the received value and
//! returns the normalized one, or the warning that explains why it is null.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use super::{AmdMode, AmdResult};

/// The canonical form of a reason code: trimmed, lower-cased, each run of whitespace, `_`
/// and `-` written as one `-`, no `-` at either end; `None` when nothing is left.
///
/// The contract names spaces and underscores; dashes are folded too, in the same spirit, so
/// that `Busy - Here` and `busy--here` mean `busy-here` like `Busy Here` does.
pub fn canonical_reason_code(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut pending_dash = false;
    for c in raw.chars().flat_map(char::to_lowercase) {
        if c.is_whitespace() || c == '_' || c == '-' {
            pending_dash = true;
            continue;
        }
        if pending_dash && !out.is_empty() {
            out.push('-');
        }
        pending_dash = false;
        out.push(c);
    }
    (!out.is_empty()).then_some(out)
}

/// The SIP status code leading `reason` and the text after it: `486 Busy Here` →
/// `(Some(486), Some("Busy Here"))`. The code is exactly three digits in 100..=699, after
/// optional whitespace, followed by the end or a non-digit; otherwise both are `None`.
pub fn split_sip(reason: &str) -> (Option<u16>, Option<String>) {
    let text = reason.trim_start();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits != 3 {
        return (None, None);
    }
    let (code, rest) = text.split_at(3);
    match code.parse::<u16>() {
        Ok(code) if (100..=699).contains(&code) => {
            let rest = rest.trim();
            (Some(code), (!rest.is_empty()).then(|| rest.to_string()))
        }
        _ => (None, None),
    }
}

/// A SIP status code sent on its own (jambonz's `sip_status`, Twilio's `SipResponseCode`):
/// a number or a string holding one, in 100..=699. `Ok(None)` for a blank string; `Err` is
/// the warning for anything else.
pub fn sip_status(field: &str, value: &Value) -> Result<Option<u16>, String> {
    let code = match value {
        Value::String(text) if text.trim().is_empty() => return Ok(None),
        Value::String(text) => text.trim().parse::<u16>().ok(),
        Value::Number(number) => number.as_u64().and_then(|n| u16::try_from(n).ok()),
        _ => None,
    };
    match code {
        Some(code) if (100..=699).contains(&code) => Ok(Some(code)),
        _ => {
            let shown = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_string);
            Err(format!(
                "{field} `{shown}` is not a SIP status code: ignored"
            ))
        }
    }
}

/// What `machinedetection` carried: the gateway sends the AMD *mode* on failed calls and
/// the *result* on answered ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineDetection {
    /// Empty: nothing to read, and nothing to warn about.
    Blank,
    Mode(AmdMode),
    Result(AmdResult),
}

/// Reads `machinedetection`, trimmed and in any case; `Err` is the warning for an unknown
/// value.
pub fn machine_detection(raw: &str) -> Result<MachineDetection, String> {
    if raw.trim().is_empty() {
        Ok(MachineDetection::Blank)
    } else if let Some(mode) = AmdMode::parse(raw) {
        Ok(MachineDetection::Mode(mode))
    } else if let Some(result) = AmdResult::parse(raw) {
        Ok(MachineDetection::Result(result))
    } else {
        Err(format!(
            "unknown machinedetection `{raw}`: stored, but no answering-machine mode or result was read from it"
        ))
    }
}

/// Whole seconds from a `duration` value: an integer, a number (floored), or a string
/// holding one. `Ok(None)` for a blank string, which counts as absent. `Err` is the warning
/// for a negative, non-numeric or out-of-range value.
pub fn duration_seconds(value: &Value) -> Result<Option<i64>, String> {
    whole_number("duration", value)
}

/// A non-negative whole number (floored) from a number or a string holding one, as for
/// [`duration_seconds`]; `field` names the field in the warning.
pub fn whole_number(field: &str, value: &Value) -> Result<Option<i64>, String> {
    let shown = match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let negative = || format!("{field} `{shown}` is negative: ignored");
    let too_large = || format!("{field} `{shown}` is too large: ignored");
    match value {
        Value::Number(number) => {
            if let Some(seconds) = number.as_i64() {
                return if seconds < 0 {
                    Err(negative())
                } else {
                    Ok(Some(seconds))
                };
            }
            if number.is_u64() {
                return Err(too_large());
            }
            let seconds = number.as_f64().unwrap_or(f64::NAN).floor();
            if seconds < 0.0 {
                Err(negative())
            } else if seconds < i64::MAX as f64 {
                Ok(Some(seconds as i64))
            } else {
                Err(too_large())
            }
        }
        Value::String(text) if text.trim().is_empty() => Ok(None),
        Value::String(text) => {
            let decimal = Decimal::parse(text.trim())
                .ok_or_else(|| format!("{field} `{shown}` is not a number: ignored"))?;
            if decimal.is_negative() {
                return Err(negative());
            }
            decimal.whole.parse().map(Some).map_err(|_| too_large())
        }
        _ => Err(format!("{field} `{shown}` is not a number: ignored")),
    }
}

/// The whole seconds between the two times, when the duration was not given.
pub fn derive_duration(connect: DateTime<Utc>, disconnect: DateTime<Utc>) -> Result<i64, String> {
    if disconnect < connect {
        let at = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        return Err(format!(
            "callDisconnectTime ({}) is before callconnecttime ({}): no duration derived",
            at(disconnect),
            at(connect)
        ));
    }
    Ok((disconnect - connect).num_seconds())
}

/// A plain decimal as text: an optional sign, digits, and an optional `.` with digits.
/// No exponents, `inf` or `NaN`, unlike `f64::from_str`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Decimal<'a> {
    pub negative: bool,
    pub whole: &'a str,
    pub fraction: &'a str,
}

impl<'a> Decimal<'a> {
    pub(super) fn parse(text: &'a str) -> Option<Self> {
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (whole, fraction) = match unsigned.split_once('.') {
            Some((_, "")) => return None,
            Some(parts) => parts,
            None => (unsigned, ""),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        (!whole.is_empty() && digits(whole) && digits(fraction)).then_some(Self {
            negative,
            whole,
            fraction,
        })
    }

    /// Below zero; `-0` and `-0.0` are zero.
    pub(super) fn is_negative(&self) -> bool {
        self.negative && (self.whole.bytes().chain(self.fraction.bytes())).any(|b| b != b'0')
    }
}

#[cfg(test)]
mod tests;
