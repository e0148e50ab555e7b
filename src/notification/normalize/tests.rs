use super::*;
use serde_json::json;

#[test]
fn reason_codes_take_their_canonical_form() {
    let cases = [
        ("Busy Here", Some("busy-here")),
        ("caller-disconnected", Some("caller-disconnected")),
        ("Caller-disconnected", Some("caller-disconnected")),
        ("SAVG-disconnected", Some("savg-disconnected")),
        ("Service Unavailable", Some("service-unavailable")),
        ("Temporarily_Unavailable", Some("temporarily-unavailable")),
        ("  Busy   Here ", Some("busy-here")),
        ("Busy - Here", Some("busy-here")),
        ("busy__-__here", Some("busy-here")),
        ("-Busy Here-", Some("busy-here")),
        ("Busy\tHere", Some("busy-here")),
        ("DECLINE", Some("decline")),
        ("", None),
        ("   ", None),
        (" - _ ", None),
    ];
    for (raw, expected) in cases {
        assert_eq!(canonical_reason_code(raw).as_deref(), expected, "{raw:?}");
    }
}

#[test]
fn sip_code_and_text_are_split_from_the_reason() {
    let cases = [
        ("486 Busy Here", Some(486), Some("Busy Here")),
        ("200 OK", Some(200), Some("OK")),
        (
            "503 Service Unavailable",
            Some(503),
            Some("Service Unavailable"),
        ),
        (
            "  480   Temporarily Unavailable  ",
            Some(480),
            Some("Temporarily Unavailable"),
        ),
        ("603", Some(603), None),
        ("100 Trying", Some(100), Some("Trying")),
        ("699 x", Some(699), Some("x")),
        (
            "487-Request Terminated",
            Some(487),
            Some("-Request Terminated"),
        ),
        ("4860 x", None, None),
        ("48 Busy", None, None),
        ("099 x", None, None),
        ("700 x", None, None),
        ("OK", None, None),
        ("SIP 486 Busy Here", None, None),
        ("", None, None),
    ];
    for (reason, code, text) in cases {
        let expected = (code, text.map(str::to_string));
        assert_eq!(split_sip(reason), expected, "{reason:?}");
    }
}

#[test]
fn machine_detection_reads_modes_and_results() {
    let cases = [
        ("disabled", Ok(MachineDetection::Mode(AmdMode::Disabled))),
        ("Detect", Ok(MachineDetection::Mode(AmdMode::Detect))),
        (
            " DISCONNECT ",
            Ok(MachineDetection::Mode(AmdMode::Disconnect)),
        ),
        (
            "amd_human_detected",
            Ok(MachineDetection::Result(AmdResult::HumanDetected)),
        ),
        (
            "AMD_Machine_Detected",
            Ok(MachineDetection::Result(AmdResult::MachineDetected)),
        ),
        (
            "amd_no_speech_detected",
            Ok(MachineDetection::Result(AmdResult::NoSpeechDetected)),
        ),
        (
            "amd_decision_timeout",
            Ok(MachineDetection::Result(AmdResult::DecisionTimeout)),
        ),
        (
            "amd_machine_stopped_speaking",
            Ok(MachineDetection::Result(AmdResult::MachineStoppedSpeaking)),
        ),
        (
            "amd_tone_detected",
            Ok(MachineDetection::Result(AmdResult::ToneDetected)),
        ),
        ("amd_error", Ok(MachineDetection::Result(AmdResult::Error))),
        (
            "amd_stopped",
            Ok(MachineDetection::Result(AmdResult::Stopped)),
        ),
        ("", Ok(MachineDetection::Blank)),
        ("  ", Ok(MachineDetection::Blank)),
        (
            "voicemail",
            Err(
                "unknown machinedetection `voicemail`: stored, but no answering-machine \
                 mode or result was read from it"
                    .to_string(),
            ),
        ),
    ];
    for (raw, expected) in cases {
        assert_eq!(machine_detection(raw), expected, "{raw:?}");
    }
}

#[test]
fn durations_are_whole_seconds() {
    let cases = [
        (json!(14), Ok(Some(14))),
        (json!(0), Ok(Some(0))),
        (json!(14.0), Ok(Some(14))),
        (json!(14.7), Ok(Some(14))),
        (json!(-0.0), Ok(Some(0))),
        (json!("14"), Ok(Some(14))),
        (json!("14.0"), Ok(Some(14))),
        (json!(" 14 "), Ok(Some(14))),
        (json!("14.9"), Ok(Some(14))),
        (json!("+14"), Ok(Some(14))),
        (json!("-0"), Ok(Some(0))),
        (json!(""), Ok(None)),
        (json!("  "), Ok(None)),
        (json!(-5), Err("duration `-5` is negative: ignored")),
        (json!(-0.5), Err("duration `-0.5` is negative: ignored")),
        (json!("-5"), Err("duration `-5` is negative: ignored")),
        (json!("abc"), Err("duration `abc` is not a number: ignored")),
        (json!("1e3"), Err("duration `1e3` is not a number: ignored")),
        (json!("14."), Err("duration `14.` is not a number: ignored")),
        (json!("NaN"), Err("duration `NaN` is not a number: ignored")),
        (json!(true), Err("duration `true` is not a number: ignored")),
        (
            json!(u64::MAX),
            Err("duration `18446744073709551615` is too large: ignored"),
        ),
        (json!(1e30), Err("duration `1e+30` is too large: ignored")),
        (
            json!("99999999999999999999"),
            Err("duration `99999999999999999999` is too large: ignored"),
        ),
    ];
    for (value, expected) in cases {
        let expected = expected.map_err(str::to_string);
        assert_eq!(duration_seconds(&value), expected, "{value}");
    }
}

#[test]
fn duration_derived_from_the_times() {
    let at = |s: i64| DateTime::from_timestamp(1_683_545_569 + s, 0).unwrap();
    assert_eq!(derive_duration(at(0), at(14)), Ok(14));
    assert_eq!(derive_duration(at(0), at(0)), Ok(0));
    let half = at(14) + chrono::Duration::milliseconds(500);
    assert_eq!(derive_duration(at(0), half), Ok(14));
    assert_eq!(
        derive_duration(at(14), at(0)),
        Err(
            "callDisconnectTime (2023-05-08T11:32:49Z) is before callconnecttime \
             (2023-05-08T11:33:03Z): no duration derived"
                .to_string()
        )
    );
}

#[test]
fn decimals_are_plain() {
    let cases = [
        ("12", Some((false, "12", ""))),
        ("-1.50", Some((true, "1", "50"))),
        ("+3", Some((false, "3", ""))),
        (".5", None),
        ("5.", None),
        ("1e3", None),
        ("1 2", None),
        ("", None),
        ("-", None),
    ];
    for (text, expected) in cases {
        let got = Decimal::parse(text).map(|d| (d.negative, d.whole, d.fraction));
        assert_eq!(got, expected, "{text:?}");
    }
}
