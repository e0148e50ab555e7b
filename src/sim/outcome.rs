//! What happens to a simulated call: chosen by weight, or forced by the dial-out request
//! (`metadata.sim_outcome`). Pure.

use serde::Serialize;

/// The metadata key that forces a call's outcome, e.g. `{"sim_outcome": "busy"}`.
pub const FORCE_KEY: &str = "sim_outcome";

/// Who or what answers a simulated call, or why it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SimOutcome {
    /// A person answers.
    Human,
    /// An answering machine answers.
    Machine,
    /// A fax or voicemail beep.
    Tone,
    /// Someone picks up and says nothing.
    NoSpeech,
    /// AMD cannot decide in time.
    DecisionTimeout,
    /// `486 Busy Here`.
    Busy,
    /// `480 Temporarily Unavailable`: declined or rejected.
    Declined,
    /// `408 Request Timeout`: it rings, nobody answers.
    NoAnswer,
    /// `503 Service Unavailable`.
    Unavailable,
}

impl SimOutcome {
    pub const ALL: &'static [SimOutcome] = &[
        Self::Human,
        Self::Machine,
        Self::Tone,
        Self::NoSpeech,
        Self::DecisionTimeout,
        Self::Busy,
        Self::Declined,
        Self::NoAnswer,
        Self::Unavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SimOutcome::Human => "human",
            SimOutcome::Machine => "machine",
            SimOutcome::Tone => "tone",
            SimOutcome::NoSpeech => "no_speech",
            SimOutcome::DecisionTimeout => "decision_timeout",
            SimOutcome::Busy => "busy",
            SimOutcome::Declined => "declined",
            SimOutcome::NoAnswer => "no_answer",
            SimOutcome::Unavailable => "unavailable",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|o| o.as_str() == text.trim())
    }

    /// True when the call is answered (AMD may then run).
    pub fn is_answered(self) -> bool {
        !matches!(
            self,
            Self::Busy | Self::Declined | Self::NoAnswer | Self::Unavailable
        )
    }

    /// Every spelling, for messages.
    pub fn names() -> String {
        Self::ALL
            .iter()
            .map(|o| o.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Relative weights of the outcomes; a random call picks one in proportion.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights(Vec<(SimOutcome, u32)>);

impl Default for Weights {
    /// A plausible campaign: 40% people, 25% machines, the rest unanswered or failed.
    fn default() -> Self {
        Self(vec![
            (SimOutcome::Human, 40),
            (SimOutcome::Machine, 20),
            (SimOutcome::Tone, 3),
            (SimOutcome::NoSpeech, 4),
            (SimOutcome::DecisionTimeout, 3),
            (SimOutcome::Busy, 10),
            (SimOutcome::Declined, 8),
            (SimOutcome::NoAnswer, 8),
            (SimOutcome::Unavailable, 4),
        ])
    }
}

impl Weights {
    /// Reads `human=40,machine=20,busy=10`: the outcomes named, in those proportions; the
    /// others never happen.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut weights = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not OUTCOME=WEIGHT"))?;
            let outcome = SimOutcome::parse(name)
                .ok_or_else(|| format!("`{name}` is not one of {}", SimOutcome::names()))?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("`{weight}` is not a whole number"))?;
            weights.retain(|(o, _)| *o != outcome);
            weights.push((outcome, weight));
        }
        if weights.iter().all(|(_, w)| *w == 0) {
            return Err("at least one outcome needs a weight above 0".into());
        }
        Ok(Self(weights))
    }

    /// The outcome at `point`, a number in `[0, 1)`.
    pub fn choose(&self, point: f64) -> SimOutcome {
        let total: u64 = self.0.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut target = (point.clamp(0.0, 1.0) * total as f64) as u64;
        for (outcome, weight) in &self.0 {
            if target < u64::from(*weight) {
                return *outcome;
            }
            target -= u64::from(*weight);
        }
        self.0
            .iter()
            .rev()
            .find(|(_, w)| *w > 0)
            .map_or(SimOutcome::Human, |(o, _)| *o)
    }
}

/// The outcome a request forces through `metadata.sim_outcome`: `Ok(None)` when it forces
/// none, `Err` for a value that is not an outcome.
pub fn forced(metadata: Option<&serde_json::Value>) -> Result<Option<SimOutcome>, String> {
    match metadata.and_then(|m| m.get(FORCE_KEY)) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(name)) => {
            SimOutcome::parse(name).map(Some).ok_or_else(|| {
                format!(
                    "metadata.{FORCE_KEY}: `{name}` is not one of {}",
                    SimOutcome::names()
                )
            })
        }
        Some(other) => Err(format!(
            "metadata.{FORCE_KEY}: expected a string, got {other}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn choice_follows_the_weights() {
        let weights = Weights::parse("human=1, busy=3").unwrap();
        assert_eq!(weights.choose(0.0), SimOutcome::Human);
        assert_eq!(weights.choose(0.2499), SimOutcome::Human);
        assert_eq!(weights.choose(0.25), SimOutcome::Busy);
        assert_eq!(weights.choose(0.9999), SimOutcome::Busy);
        assert_eq!(weights.choose(1.0), SimOutcome::Busy);
        let mut rng = fastrand::Rng::with_seed(7);
        let busy = (0..10_000)
            .filter(|_| weights.choose(rng.f64()) == SimOutcome::Busy)
            .count();
        assert!((7_000..8_000).contains(&busy), "{busy}");
    }

    #[test]
    fn zero_weights_never_happen_and_bad_weights_are_refused() {
        let weights = Weights::parse("machine=0,declined=5").unwrap();
        assert!((0..100).all(|i| weights.choose(f64::from(i) / 100.0) == SimOutcome::Declined));
        assert!(
            Weights::parse("voicemail=1")
                .unwrap_err()
                .contains("human, machine")
        );
        assert!(Weights::parse("human").is_err());
        assert!(Weights::parse("human=-1").is_err());
        assert!(Weights::parse("human=0").is_err());
        assert!(Weights::parse("").is_err());
    }

    #[test]
    fn the_default_weights_give_every_outcome_a_chance() {
        let weights = Weights::default();
        let mut rng = fastrand::Rng::with_seed(1);
        let seen: std::collections::HashSet<SimOutcome> =
            (0..5_000).map(|_| weights.choose(rng.f64())).collect();
        assert_eq!(seen.len(), SimOutcome::ALL.len());
    }

    #[test]
    fn metadata_can_force_an_outcome() {
        assert_eq!(
            forced(Some(&json!({"sim_outcome": "busy"}))),
            Ok(Some(SimOutcome::Busy))
        );
        assert_eq!(forced(Some(&json!({"campaign": "x"}))), Ok(None));
        assert_eq!(forced(None), Ok(None));
        assert!(forced(Some(&json!({"sim_outcome": "voicemail"}))).is_err());
        assert!(forced(Some(&json!({"sim_outcome": 3}))).is_err());
    }
}
