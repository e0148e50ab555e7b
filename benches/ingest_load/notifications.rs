//! A stream of distinct, realistic Kore.ai Voice Gateway notifications for one connection.
//!
//! Calls are answered then completed (with or without an answering-machine result), or
//! failed (busy, unavailable, no answer, 503). Two thirds of the calls send two
//! notifications, and half of those send them in the wrong order (completed first), so a
//! third of all calls arrive reordered. About one notification in ten is a copy of the one
//! before it (a gateway retrying), with its keys in another order. Every connection has its
//! own calls, so that the stream is reproducible and needs no coordination.

use std::collections::VecDeque;

/// The notifications of one connection, one request body at a time.
pub struct Stream {
    connection: usize,
    run: u64,
    calls: u64,
    rng: SplitMix64,
    queued: VecDeque<String>,
}

impl Stream {
    /// The stream of `connection`; `run` makes conversation ids distinct across runs on one
    /// database.
    pub fn new(run: u64, connection: usize) -> Self {
        Self {
            connection,
            run,
            calls: 0,
            rng: SplitMix64(run ^ (connection as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            queued: VecDeque::new(),
        }
    }

    /// The next request body.
    pub fn next_body(&mut self) -> String {
        if self.queued.is_empty() {
            self.queue_call();
        }
        self.queued
            .pop_front()
            .expect("a call queues at least one body")
    }

    fn queue_call(&mut self) {
        self.calls += 1;
        let id = self.conversation_id();
        let rng = &mut self.rng;
        // A time of day in one day, seconds; connect, then 2..120 s of talk.
        let connect = 8 * 3600 + rng.below(10 * 3600);
        let talk = 2 + rng.below(118);
        let bodies: Vec<Body> = match rng.below(3) {
            0 => vec![failed(rng, &id, connect)],
            _ => vec![
                answered(&id, connect),
                completed(rng, &id, connect, connect + talk),
            ],
        };
        let reorder = bodies.len() == 2 && rng.below(2) == 0;
        let mut ordered = bodies;
        if reorder {
            ordered.reverse();
        }
        for body in ordered {
            self.queued.push_back(body.render(false));
            // One copy per nine originals: a tenth of all requests are duplicates.
            if self.rng.below(9) == 0 {
                self.queued.push_back(body.render(true));
            }
        }
    }

    /// A UUID-shaped id, unique per run, connection and call.
    fn conversation_id(&mut self) -> String {
        let random = self.rng.next();
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            (self.run & 0xffff_ffff) as u32,
            self.connection & 0xffff,
            (random >> 52) & 0xfff,
            (random >> 40) & 0xfff,
            self.calls & 0xffff_ffff_ffff
        )
    }
}

/// One notification's fields, in the gateway's wire names.
struct Body(Vec<(&'static str, String)>);

impl Body {
    /// The JSON object; a copy lists the keys in reverse and spaced out, as a resending
    /// client might, which is the same notification all the same.
    fn render(&self, as_copy: bool) -> String {
        let fields: Vec<String> = self
            .0
            .iter()
            .map(|(key, value)| {
                if as_copy {
                    format!("\"{key}\": {value}")
                } else {
                    format!("\"{key}\":{value}")
                }
            })
            .collect();
        if as_copy {
            let reversed: Vec<String> = fields.into_iter().rev().collect();
            format!("{{ {} }}", reversed.join(", "))
        } else {
            format!("{{{}}}", fields.join(","))
        }
    }
}

fn text(value: &str) -> String {
    format!("\"{value}\"")
}

/// The gateway's local time format, `5/8/2023,11:32:49AM`, for a second of May 8th 2023.
fn clock(seconds: u64) -> String {
    let (h, m, s) = ((seconds / 3600) % 24, (seconds / 60) % 60, seconds % 60);
    let (h12, half) = match h {
        0 => (12, "AM"),
        1..=11 => (h, "AM"),
        12 => (12, "PM"),
        _ => (h - 12, "PM"),
    };
    text(&format!("5/8/2023,{h12}:{m:02}:{s:02}{half}"))
}

fn answered(id: &str, connect: u64) -> Body {
    Body(vec![
        ("conversationId", text(id)),
        ("status", text("answered")),
        ("callconnecttime", clock(connect)),
    ])
}

fn completed(rng: &mut SplitMix64, id: &str, connect: u64, disconnect: u64) -> Body {
    const AMD: [&str; 5] = [
        "amd_human_detected",
        "amd_machine_detected",
        "amd_human_detected",
        "disabled",
        "amd_decision_timeout",
    ];
    const BY: [&str; 2] = ["caller-disconnected", "SAVG-disconnected"];
    Body(vec![
        ("conversationId", text(id)),
        ("reasonCode", text(BY[rng.below(2) as usize])),
        ("status", text("completed")),
        ("reason", text("200 OK")),
        ("duration", (disconnect - connect).to_string()),
        ("machinedetection", text(AMD[rng.below(5) as usize])),
        ("callconnecttime", clock(connect)),
        ("callDisconnectTime", clock(disconnect)),
    ])
}

fn failed(rng: &mut SplitMix64, id: &str, at: u64) -> Body {
    const WHY: [(&str, &str); 5] = [
        ("486 Busy Here", "Busy Here"),
        ("480 Temporarily Unavailable", "Temporarily Unavailable"),
        ("503 Service Unavailable", "Service Unavailable"),
        ("487 Request Terminated", "Request Terminated"),
        ("408 Request Timeout", "Request Timeout"),
    ];
    let (reason, code) = WHY[rng.below(5) as usize];
    Body(vec![
        ("conversationId", text(id)),
        ("status", text("failed")),
        ("reason", text(reason)),
        ("machinedetection", text("disconnect")),
        ("callconnecttime", clock(at)),
        ("reasonCode", text(code)),
        ("callDisconnectTime", clock(at)),
    ])
}

/// A small, fast, seedable generator (Steele, Lea and Flood's SplitMix64).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
