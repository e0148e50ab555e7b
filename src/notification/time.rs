//! The timestamp formats of docs/api.md, "What calltrail makes of a notification".
//!
//! In order of trial: Unix time (a JSON number, or a string of digits), RFC 3339 / ISO 8601
//! with or without an offset, and the gateway's own `M/D/YYYY,h:mm:ssAM`. Times without an
//! offset are local times in [`NormalizeSettings::timezone`].

use chrono::{
    DateTime, Datelike, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone,
    Utc,
};
use serde_json::Value;

use super::normalize::Decimal;
use super::{DateOrder, NormalizeSettings};

/// Unix times at or above this are milliseconds, below it seconds (docs/api.md, "What calltrail
/// makes of a notification").
const MILLIS_THRESHOLD: u64 = 1_000_000_000_000;

/// Reads one timestamp field. `Err` holds a warning naming the value, e.g.
/// ``"`yesterday` is not a recognised time"``.
pub fn parse_timestamp(
    value: &Value,
    settings: &NormalizeSettings,
) -> Result<DateTime<Utc>, String> {
    let instant = match value {
        Value::Number(number) => from_json_number(number),
        Value::String(text) => parse_text(text.trim(), settings),
        other => Err(format!("`{other}` is not a recognised time")),
    }?;
    // Both stores keep four-digit years; anything beyond is a garbled value, not a call.
    if !(1..=9999).contains(&instant.year()) {
        let shown = value
            .as_str()
            .map_or_else(|| value.to_string(), |s| s.trim().to_owned());
        return Err(format!("`{shown}` is outside the years 1 to 9999"));
    }
    Ok(instant)
}

fn parse_text(text: &str, settings: &NormalizeSettings) -> Result<DateTime<Utc>, String> {
    if let Some(decimal) = Decimal::parse(text) {
        return from_unix(decimal, text);
    }
    if let Some(instant) = parse_iso_with_offset(text) {
        return Ok(instant);
    }
    let local = parse_iso_local(text).or_else(|| parse_gateway(text, settings.date_order));
    match local {
        Some(local) => to_utc(local, settings.timezone, text),
        None => Err(format!("`{text}` is not a recognised time")),
    }
}

fn from_json_number(number: &serde_json::Number) -> Result<DateTime<Utc>, String> {
    let shown = number.to_string();
    if number.is_u64() {
        return from_unix(Decimal::parse(&shown).expect("an integer"), &shown);
    }
    match number.as_f64() {
        Some(value) if value >= 0.0 => {
            // Written out in fixed notation (serde_json may print `1e+21`), so that the
            // decimal path reads its whole and fractional parts.
            let fixed = format!("{value:.9}");
            from_unix(Decimal::parse(&fixed).expect("fixed notation"), &shown)
        }
        _ => Err(format!("`{shown}` is a negative Unix time")),
    }
}

fn from_unix(decimal: Decimal<'_>, shown: &str) -> Result<DateTime<Utc>, String> {
    if decimal.is_negative() {
        return Err(format!("`{shown}` is a negative Unix time"));
    }
    let out_of_range = || format!("`{shown}` is out of range for a Unix time");
    let whole: u64 = decimal.whole.parse().map_err(|_| out_of_range())?;
    let (seconds, nanos) = if whole >= MILLIS_THRESHOLD {
        let sub_milli = fraction_digits(decimal.fraction, 6);
        (whole / 1000, (whole % 1000) as u32 * 1_000_000 + sub_milli)
    } else {
        (whole, fraction_digits(decimal.fraction, 9))
    };
    let seconds = i64::try_from(seconds).map_err(|_| out_of_range())?;
    DateTime::from_timestamp(seconds, nanos).ok_or_else(out_of_range)
}

/// The first `width` digits of a fraction as an integer (`"5"`, 9 → 500_000_000).
fn fraction_digits(fraction: &str, width: usize) -> u32 {
    fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(width)
        .fold(0, |acc, digit| acc * 10 + u32::from(digit - b'0'))
}

/// `2023-05-08T11:32:49Z`, `…+05:30`, `…+0530`, with optional fraction, `T` or a space.
fn parse_iso_with_offset(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Some(instant.to_utc());
    }
    let text = with_t_separator(text)?;
    ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z"]
        .into_iter()
        .find_map(|format| DateTime::<FixedOffset>::parse_from_str(&text, format).ok())
        .map(|instant| instant.to_utc())
}

/// `2023-05-08T11:32:49`, with optional fraction, `T` or a space: a local time.
fn parse_iso_local(text: &str) -> Option<NaiveDateTime> {
    let text = with_t_separator(text)?;
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .into_iter()
        .find_map(|format| NaiveDateTime::parse_from_str(&text, format).ok())
}

/// The text with its date/time separator written `T`, if it looks like `YYYY-MM-DD?…`.
fn with_t_separator(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    if bytes.len() < 11 || bytes[4] != b'-' || !matches!(bytes[10], b'T' | b't' | b' ') {
        return None;
    }
    Some(format!("{}T{}", &text[..10], &text[11..]))
}

/// The gateway's `M/D/YYYY,h:mm:ssAM`, tolerant of spaces around the comma and before
/// AM/PM, of a missing comma, and of a 24-hour clock without AM/PM.
fn parse_gateway(text: &str, order: DateOrder) -> Option<NaiveDateTime> {
    let date_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '/'))
        .unwrap_or(text.len());
    let (date, rest) = text.split_at(date_end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    let date = parse_gateway_date(date, order)?;
    let time = parse_clock(rest)?;
    Some(date.and_time(time))
}

fn parse_gateway_date(date: &str, order: DateOrder) -> Option<NaiveDate> {
    let mut parts = date.split('/');
    let (first, second, year) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || year.len() != 4 {
        return None;
    }
    let (month, day) = match order {
        DateOrder::Mdy => (first, second),
        DateOrder::Dmy => (second, first),
    };
    NaiveDate::from_ymd_opt(number(year)?, number(month)?, number(day)?)
}

/// `h:mm:ss` or `h:mm`, then optionally `AM`/`PM` in any case, with or without a space.
fn parse_clock(clock: &str) -> Option<NaiveTime> {
    let upper = clock.to_ascii_uppercase();
    let (digits, meridiem) = match (upper.strip_suffix("AM"), upper.strip_suffix("PM")) {
        (Some(digits), _) => (digits.trim_end(), Some(false)),
        (_, Some(digits)) => (digits.trim_end(), Some(true)),
        _ => (upper.as_str(), None),
    };
    let mut parts = digits.split(':');
    let hour = number(parts.next()?)?;
    let minute = number(parts.next()?)?;
    let second = parts.next().map_or(Some(0), number)?;
    if parts.next().is_some() {
        return None;
    }
    let hour = match meridiem {
        None => hour,
        Some(_) if !(1..=12).contains(&hour) => return None,
        // 12AM is midnight, 12PM noon.
        Some(pm) => hour % 12 + if pm { 12 } else { 0 },
    };
    NaiveTime::from_hms_opt(hour, minute, second)
}

/// A small unsigned number written with 1 to 4 ASCII digits.
fn number<T: std::str::FromStr>(text: &str) -> Option<T> {
    let ok = (1..=4).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    if ok { text.parse().ok() } else { None }
}

/// A local time in `zone` as an instant: at a DST overlap the earlier of the two instants;
/// in a DST gap, a warning.
fn to_utc(local: NaiveDateTime, zone: chrono_tz::Tz, shown: &str) -> Result<DateTime<Utc>, String> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(instant) => Ok(instant.to_utc()),
        LocalResult::Ambiguous(first, second) => Ok(first.to_utc().min(second.to_utc())),
        LocalResult::None => Err(format!(
            "`{shown}` is a local time that does not exist in {zone} (skipped by a daylight-saving change)"
        )),
    }
}

#[cfg(test)]
mod tests;
