use chrono::TimeZone;
use proptest::prelude::*;

use super::*;

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_683_545_569 + seconds, 0).unwrap()
}

fn event(status: &str) -> Event {
    Event {
        conversation_id: "c-1".into(),
        source: Format::Kore,
        status: status.into(),
        reason_code: None,
        reason_code_raw: None,
        reason: None,
        sip_code: None,
        sip_reason: None,
        amd_mode: None,
        amd_result: None,
        duration_s: None,
        ring_ms: None,
        connect_ms: None,
        connect_time: None,
        disconnect_time: None,
        warnings: Vec::new(),
    }
}

fn recorded(id: i64, event: Event) -> RecordedEvent {
    RecordedEvent {
        id,
        content_hash: format!("{id:064x}"),
        received_at: at(100 + id),
        event,
    }
}

#[test]
fn outcome_table_rows_in_order() {
    use CallState::*;
    type Row = (
        CallState,
        Option<u16>,
        Option<&'static str>,
        Option<AmdResult>,
        Outcome,
    );
    let cases: &[Row] = &[
        (Failed, Some(486), None, None, Outcome::Busy),
        (Failed, Some(600), None, None, Outcome::Busy),
        (Failed, None, Some("busy-everywhere"), None, Outcome::Busy),
        (Failed, Some(480), None, None, Outcome::Declined),
        (Failed, Some(603), None, None, Outcome::Declined),
        (Failed, None, Some("decline"), None, Outcome::Declined),
        (
            Failed,
            None,
            Some("temporarily-unavailable"),
            None,
            Outcome::Declined,
        ),
        (Failed, Some(408), None, None, Outcome::NoAnswer),
        (Failed, Some(487), None, None, Outcome::NoAnswer),
        (
            Failed,
            None,
            Some("request-terminated"),
            None,
            Outcome::NoAnswer,
        ),
        (Failed, Some(503), None, None, Outcome::Unavailable),
        (Failed, Some(500), None, None, Outcome::Unavailable),
        (
            Failed,
            None,
            Some("service-unavailable"),
            None,
            Outcome::Unavailable,
        ),
        (Failed, Some(404), Some("not-found"), None, Outcome::Failed),
        (
            Failed,
            None,
            None,
            Some(AmdResult::HumanDetected),
            Outcome::Failed,
        ),
        (
            Completed,
            Some(200),
            None,
            Some(AmdResult::HumanDetected),
            Outcome::Human,
        ),
        (
            Completed,
            None,
            None,
            Some(AmdResult::MachineDetected),
            Outcome::Machine,
        ),
        (
            Completed,
            None,
            None,
            Some(AmdResult::MachineStoppedSpeaking),
            Outcome::Machine,
        ),
        (
            InProgress,
            None,
            None,
            Some(AmdResult::ToneDetected),
            Outcome::Machine,
        ),
        (
            Completed,
            None,
            None,
            Some(AmdResult::NoSpeechDetected),
            Outcome::NoSpeech,
        ),
        (
            Completed,
            None,
            None,
            Some(AmdResult::DecisionTimeout),
            Outcome::AmdUndetermined,
        ),
        (
            Completed,
            None,
            None,
            Some(AmdResult::Error),
            Outcome::AmdUndetermined,
        ),
        (
            Completed,
            None,
            None,
            Some(AmdResult::Stopped),
            Outcome::AmdUndetermined,
        ),
        (Completed, Some(200), None, None, Outcome::Connected),
        (InProgress, None, None, None, Outcome::Connected),
        (Unknown, None, None, None, Outcome::Unknown),
        (
            Unknown,
            None,
            None,
            Some(AmdResult::HumanDetected),
            Outcome::Human,
        ),
    ];
    for (state, sip, reason, amd, expected) in cases {
        assert_eq!(
            outcome(*state, None, *sip, *reason, *amd),
            *expected,
            "{state:?} {sip:?} {reason:?} {amd:?}"
        );
    }
}

#[test]
fn statuses_without_sip_codes_decide_failed_outcomes() {
    use CallState::Failed;
    let cases = [
        (Status::Busy, None, Outcome::Busy),
        (Status::NoAnswer, None, Outcome::NoAnswer),
        (Status::Canceled, None, Outcome::NoAnswer),
        (Status::Failed, None, Outcome::Failed),
        // A SIP code that says more, earlier in the table, still wins.
        (Status::NoAnswer, Some(486), Outcome::Busy),
        (Status::Busy, Some(603), Outcome::Busy),
        (Status::Failed, Some(503), Outcome::Unavailable),
    ];
    for (status, sip, expected) in cases {
        assert_eq!(
            outcome(Failed, Some(status), sip, None, None),
            expected,
            "{status} {sip:?}"
        );
    }
    // Status alone says nothing once the call was answered.
    assert_eq!(
        outcome(CallState::Completed, Some(Status::Busy), None, None, None),
        Outcome::Connected
    );
}

#[test]
fn every_source_status_takes_its_stage() {
    let state_of = |status: &str| fold(&[recorded(1, event(status))]).unwrap().state;
    for (status, state) in [
        ("answered", CallState::InProgress),
        ("call-in-progress", CallState::InProgress),
        ("Call_In_Progress", CallState::InProgress),
        ("in progress", CallState::InProgress),
        ("completed", CallState::Completed),
        ("failed", CallState::Failed),
        ("busy", CallState::Failed),
        ("no-answer", CallState::Failed),
        ("canceled", CallState::Failed),
        ("queued", CallState::Unknown),
        ("initiated", CallState::Unknown),
        ("trying", CallState::Unknown),
        ("ringing", CallState::Unknown),
        ("early-media", CallState::Unknown),
        ("transferred", CallState::Unknown),
    ] {
        assert_eq!(state_of(status), state, "{status}");
    }
}

#[test]
fn an_in_progress_amd_result_counts_and_a_busy_call_is_busy() {
    let mut up = event("call-in-progress");
    up.connect_time = Some(at(0));
    up.amd_result = Some(AmdResult::MachineDetected);
    let call = fold(&[recorded(1, up)]).unwrap();
    assert_eq!(
        (call.state, call.outcome, call.connected_at),
        (CallState::InProgress, Outcome::Machine, Some(at(0)))
    );

    let ringing = event("ringing");
    let busy = event("busy");
    let call = fold(&[recorded(1, ringing), recorded(2, busy)]).unwrap();
    assert_eq!(
        (call.state, call.outcome, call.status.as_deref()),
        (CallState::Failed, Outcome::Busy, Some("busy"))
    );
}

#[test]
fn completed_beats_failed_beats_answered() {
    let mut answered = event("answered");
    answered.connect_time = Some(at(0));
    let mut failed = event("failed");
    failed.sip_code = Some(486);
    failed.connect_time = Some(at(5));
    failed.disconnect_time = Some(at(5));
    let mut completed = event("completed");
    completed.connect_time = Some(at(1));
    completed.disconnect_time = Some(at(15));
    completed.duration_s = Some(14);

    let in_progress = fold(&[recorded(1, answered.clone())]).unwrap();
    let failed_call = fold(&[recorded(1, failed.clone())]).unwrap();
    let all = fold(&[
        recorded(1, answered),
        recorded(2, failed),
        recorded(3, completed),
    ])
    .unwrap();

    assert_eq!(
        (in_progress.state, in_progress.outcome),
        (CallState::InProgress, Outcome::Connected)
    );
    assert_eq!(in_progress.connected_at, Some(at(0)));
    assert_eq!(in_progress.ended_at, None);
    assert_eq!(
        (failed_call.state, failed_call.outcome),
        (CallState::Failed, Outcome::Busy)
    );
    assert_eq!(
        failed_call.connected_at, None,
        "a failed call never connected"
    );
    assert_eq!(
        failed_call.occurred_at,
        at(5),
        "occurred_at falls back to ended_at"
    );
    assert_eq!(all.state, CallState::Completed);
    assert_eq!(all.status.as_deref(), Some("completed"));
    assert_eq!(
        all.connected_at,
        Some(at(0)),
        "earliest connect of answered/completed"
    );
    assert_eq!(all.ended_at, Some(at(15)));
    assert_eq!(all.duration_s, Some(14));
    assert_eq!(
        all.sip_code, None,
        "taken from the deciding completed event"
    );
    assert_eq!(all.event_count, 3);
    assert_eq!((all.first_seen_at, all.last_seen_at), (at(101), at(103)));
}

#[test]
fn amd_result_takes_the_highest_precedence() {
    let results = [
        AmdResult::HumanDetected,
        AmdResult::MachineDetected,
        AmdResult::DecisionTimeout,
    ];
    let events: Vec<_> = results
        .iter()
        .enumerate()
        .map(|(i, result)| {
            let mut e = event("completed");
            e.amd_result = Some(*result);
            recorded(i as i64, e)
        })
        .collect();

    let call = fold(&events).unwrap();

    assert_eq!(call.amd_result, Some(AmdResult::MachineDetected));
    assert_eq!(call.outcome, Outcome::Machine);
}

#[test]
fn unknown_statuses_do_not_change_the_state() {
    let call = fold(&[recorded(1, event("ringing"))]).unwrap();
    assert_eq!(
        (call.state, call.outcome),
        (CallState::Unknown, Outcome::Unknown)
    );
    assert_eq!(call.status.as_deref(), Some("ringing"));
    assert_eq!(
        call.occurred_at,
        at(101),
        "occurred_at falls back to first_seen_at"
    );
    assert!(fold(&[]).is_none());
}

fn arb_time() -> impl Strategy<Value = Option<DateTime<Utc>>> {
    prop::option::of((0i64..5).prop_map(at))
}

fn arb_event() -> impl Strategy<Value = Event> {
    let status = prop::sample::select(vec![
        "answered",
        "completed",
        "failed",
        "ringing",
        "call-in-progress",
        "in-progress",
        "busy",
        "no-answer",
    ]);
    let sip = prop::option::of(prop::sample::select(vec![200u16, 486, 480, 503, 408, 404]));
    let reason = prop::option::of(prop::sample::select(vec![
        "busy-here",
        "caller-disconnected",
        "decline",
    ]));
    let amd_result = prop::option::of(prop::sample::select(AmdResult::ALL.to_vec()));
    let amd_mode = prop::option::of(prop::sample::select(AmdMode::ALL.to_vec()));
    (
        status,
        sip,
        reason,
        amd_result,
        amd_mode,
        arb_time(),
        arb_time(),
        prop::option::of(0i64..60),
        prop::option::of(0i64..9000),
        prop::option::of(0i64..9000),
    )
        .prop_map(
            |(
                status,
                sip_code,
                reason_code,
                amd_result,
                amd_mode,
                connect_time,
                disconnect_time,
                duration_s,
                ring_ms,
                connect_ms,
            )| Event {
                sip_code,
                reason_code: reason_code.map(str::to_owned),
                amd_result,
                amd_mode,
                connect_time,
                disconnect_time,
                duration_s,
                ring_ms,
                connect_ms,
                ..event(status)
            },
        )
}

proptest! {
    /// The call depends only on the set of events: shuffling which event arrived when
    /// (ids and received times follow arrival) never changes the record.
    #[test]
    fn every_arrival_order_gives_the_same_call(
        events in prop::collection::vec(arb_event(), 1..6),
        order in Just(()).prop_perturb(|_, mut rng| rng.random::<u64>()),
    ) {
        let arrive = |sequence: &[&Event]| -> (Call, RingAndConnect) {
            let recorded: Vec<RecordedEvent> = sequence
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let mut r = recorded(i as i64, (*e).clone());
                    // The identity of a notification is its content, not its arrival.
                    r.content_hash = format!("{:?}", e);
                    r
                })
                .collect();
            (fold(&recorded).unwrap(), ring_and_connect(&recorded))
        };
        let original: Vec<&Event> = events.iter().collect();
        let expected = arrive(&original);
        for permutation in permutations(&original, order) {
            prop_assert_eq!(&arrive(&permutation), &expected);
        }
    }
}

/// Every permutation for small sets; for larger ones a seeded sample of them.
fn permutations<'a>(items: &[&'a Event], seed: u64) -> Vec<Vec<&'a Event>> {
    let mut all = vec![Vec::new()];
    for item in items {
        let mut next = Vec::new();
        for partial in &all {
            for position in 0..=partial.len() {
                let mut p: Vec<&Event> = partial.clone();
                p.insert(position, *item);
                next.push(p);
            }
        }
        all = next;
    }
    let step = (all.len() / 24).max(1);
    let offset = (seed as usize) % step;
    all.into_iter().skip(offset).step_by(step).collect()
}

#[test]
fn ring_and_connect_come_from_the_terminal_event_else_the_earliest() {
    let with = |status: &str, ring: Option<i64>, connect: Option<i64>, seconds: i64| Event {
        ring_ms: ring,
        connect_ms: connect,
        connect_time: Some(at(seconds)),
        ..event(status)
    };
    let durations = |events: Vec<Event>| {
        let recorded: Vec<_> = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| recorded(i as i64, e))
            .collect();
        ring_and_connect(&recorded)
    };
    let both = |ring_ms, connect_ms| RingAndConnect {
        ring_ms,
        connect_ms,
    };
    // The completed event's own values win over the answered one's.
    assert_eq!(
        durations(vec![
            with("answered", Some(4000), Some(5000), 0),
            with("completed", Some(4100), Some(5100), 1),
        ]),
        both(Some(4100), Some(5100))
    );
    // The terminal event lacks them: the earliest event that has each.
    assert_eq!(
        durations(vec![
            with("completed", None, None, 9),
            with("call-in-progress", Some(4200), None, 2),
            with("answered", Some(4000), Some(5000), 1),
        ]),
        both(Some(4000), Some(5000))
    );
    // A failed call: the failed event's ring time.
    assert_eq!(
        durations(vec![with("failed", Some(3900), None, 0)]),
        both(Some(3900), None)
    );
    assert_eq!(durations(vec![event("ringing")]), both(None, None));
}

#[test]
fn a_call_takes_its_source_and_ring_times_from_its_events_in_any_order() {
    let ringing = Event {
        source: Format::Jambonz,
        ..event("ringing")
    };
    let completed = Event {
        source: Format::Twilio,
        ring_ms: Some(3200),
        connect_ms: Some(4100),
        ..event("completed")
    };
    let forward = fold(&[recorded(1, ringing.clone()), recorded(2, completed.clone())]).unwrap();
    let backward = fold(&[recorded(2, completed), recorded(1, ringing.clone())]).unwrap();
    assert_eq!(forward, backward);
    // The event that decided the state says where the call came from.
    assert_eq!(
        (forward.source, forward.ring_ms, forward.connect_ms),
        (Format::Twilio, Some(3200), Some(4100))
    );
    // Only unknown statuses: the one the tie-break picks.
    let alone = fold(&[recorded(1, ringing)]).unwrap();
    assert_eq!((alone.source, alone.ring_ms), (Format::Jambonz, None));
}

#[test]
fn a_call_ends_once_when_it_first_becomes_terminal() {
    let call_of = |id: &str, statuses: &[(&str, Option<AmdResult>)]| {
        let events: Vec<RecordedEvent> = statuses
            .iter()
            .enumerate()
            .map(|(i, (status, amd))| {
                let mut e = event(status);
                e.conversation_id = id.into();
                e.amd_result = *amd;
                recorded(i as i64 + 1, e)
            })
            .collect();
        fold(&events).unwrap()
    };
    let human = Some(AmdResult::HumanDetected);
    let machine = Some(AmdResult::MachineDetected);
    let ringing = call_of("a", &[("answered", None)]);
    let done = call_of("a", &[("answered", None), ("completed", human)]);
    let later = call_of(
        "a",
        &[
            ("answered", None),
            ("completed", human),
            ("completed", machine),
        ],
    );
    let busy = call_of("b", &[("busy", None)]);
    let ended_as = |old: &[&Call], new: &[&Call]| -> Vec<&'static str> {
        ended(old.iter().copied(), new.iter().copied())
            .iter()
            .map(|e| e.outcome.as_str())
            .collect()
    };

    // (old records, new records) → outcomes of the calls that ended
    assert_eq!(ended_as(&[], &[&ringing]), Vec::<&str>::new());
    assert_eq!(ended_as(&[&ringing], &[&done]), ["human"]);
    assert_eq!(ended_as(&[], &[&done, &busy]), ["human", "busy"]);
    assert_eq!(ended_as(&[&done], &[&later]), Vec::<&str>::new());
    assert_eq!(ended_as(&[&done], &[&later, &busy]), ["busy"]);
    assert_eq!(later.outcome, Outcome::Machine);
    assert_eq!(ended([], [&busy])[0].source, Format::Kore);
}
