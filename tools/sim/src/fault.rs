//! Transport fault injection for the simulated host, decided per request with a seeded PRNG.
//!
//! A [`FaultPlan`] is a list of `(kind, probability)` rules, usually parsed from the CLI:
//!
//! ```text
//! plan  := ""                      no faults
//!        | rule ( "," rule )*      whitespace around rules is ignored
//! rule  := kind [ ":" prob ]       prob defaults to 1
//!        | "delay:" dur [ ":" prob ]
//! kind  := drop | close | garbage | truncate | duplicate | late | bad-mac | wrong-stan
//!          (case-insensitive; "-" and "_" may be left out or swapped: badmac, wrong_stan)
//! dur   := digits ( "ms" | "s" )   e.g. 500ms, 2s; at most one hour
//! prob  := decimal number in [0, 1], e.g. 0.1
//! ```
//!
//! Examples: `drop:0.1`, `delay:2s:0.5`, `delay:500ms`, `late,bad-mac:0.2`.
//!
//! Per request the [`FaultPicker`] makes the same number of PRNG draws whatever it decides, so
//! the same seed and the same sequence of requests give the same faults:
//! - **Transport faults** (all kinds except `bad-mac` / `wrong-stan`): at most one per request.
//!   One draw `u` in `[0, 1)` walks the transport rules in plan order, each taking a slice of
//!   width equal to its probability; `u` beyond the last slice means no transport fault. When
//!   the probabilities add up to more than 1 they are scaled down proportionally.
//! - **Message-level faults** (`bad-mac`, `wrong-stan`): one independent draw per rule. They
//!   are not applied here but handed to the [`crate::net::FrameHandler`] in
//!   [`crate::net::ConnInfo::faults`], because only the acquirer logic knows the message layout.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The longest delay a plan may ask for; longer values are almost surely typos.
pub const MAX_DELAY: Duration = Duration::from_secs(3600);

/// One kind of fault the simulated host can inject into its answer to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultKind {
    /// Read the request (the handler still processes it) and never answer.
    Drop,
    /// Answer normally, but only after this delay.
    Delay(Duration),
    /// Close the connection without answering (the handler still processes the request).
    Close,
    /// Answer with random bytes (same length as the real answer) in a valid frame.
    Garbage,
    /// Write a frame header promising the answer's length, only part of the body, then close.
    Truncate,
    /// Message-level: the handler should answer with a wrong MAC.
    BadMac,
    /// Message-level: the handler should answer with a STAN that does not match the request.
    WrongStan,
    /// Send each answer twice.
    Duplicate,
    /// Hold the answer back and deliver it when the next request arrives on the same
    /// connection, before that request's own answer.
    Late,
}

impl FaultKind {
    /// Whether this fault acts on the transport (bytes on the socket) rather than on the
    /// message content; at most one transport fault is injected per request.
    pub fn is_transport(&self) -> bool {
        !matches!(self, FaultKind::BadMac | FaultKind::WrongStan)
    }

    /// The canonical name used in the plan grammar (without the delay's duration).
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Drop => "drop",
            FaultKind::Delay(_) => "delay",
            FaultKind::Close => "close",
            FaultKind::Garbage => "garbage",
            FaultKind::Truncate => "truncate",
            FaultKind::BadMac => "bad-mac",
            FaultKind::WrongStan => "wrong-stan",
            FaultKind::Duplicate => "duplicate",
            FaultKind::Late => "late",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::Delay(d) => write!(f, "delay:{}", format_duration(*d)),
            other => f.write_str(other.name()),
        }
    }
}

/// Why a fault plan string was rejected. The texts quoted come from the command line and hold
/// no secrets.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FaultParseError {
    /// A rule between commas was empty (e.g. `drop,,late`).
    #[error("empty fault rule")]
    EmptyRule,
    /// The kind name is not one of the grammar's kinds.
    #[error("unknown fault kind `{kind}`")]
    UnknownKind {
        /// The name as written.
        kind: String,
    },
    /// `delay` without a duration.
    #[error("`delay` needs a duration, e.g. delay:500ms or delay:2s")]
    MissingDuration,
    /// The duration is not `<digits>ms` / `<digits>s`, or exceeds [`MAX_DELAY`].
    #[error("bad duration `{text}` (expected e.g. 500ms or 2s, at most 1 hour)")]
    BadDuration {
        /// The duration as written.
        text: String,
    },
    /// The probability is not a number in `[0, 1]`.
    #[error("bad probability `{text}` (expected a number from 0 to 1)")]
    BadProbability {
        /// The probability as written.
        text: String,
    },
    /// The rule has more `:`-separated parts than its kind takes.
    #[error("too many `:` parts in fault rule `{rule}`")]
    TooManyParts {
        /// The whole rule as written.
        rule: String,
    },
}

/// The faults to inject: `(kind, probability)` rules, see the module docs for the grammar and
/// how one request's faults are picked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultPlan {
    /// The rules in plan order; probabilities are in `[0, 1]`.
    pub rules: Vec<(FaultKind, f64)>,
}

impl FaultPlan {
    /// A plan that injects nothing.
    pub fn none() -> FaultPlan {
        FaultPlan { rules: Vec::new() }
    }

    /// A plan that always injects `kind` (probability 1).
    pub fn always(kind: FaultKind) -> FaultPlan {
        FaultPlan {
            rules: vec![(kind, 1.0)],
        }
    }

    /// Whether the plan has no rule with a non-zero probability.
    pub fn is_empty(&self) -> bool {
        self.rules.iter().all(|(_, p)| *p <= 0.0)
    }

    /// Parses a comma-separated plan (`drop:0.1,delay:2s:0.5`); the empty string is no faults.
    pub fn parse(spec: &str) -> Result<FaultPlan, FaultParseError> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Ok(FaultPlan::none());
        }
        let rules = spec
            .split(',')
            .map(parse_rule)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FaultPlan { rules })
    }
}

impl FromStr for FaultPlan {
    type Err = FaultParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultPlan::parse(s)
    }
}

impl fmt::Display for FaultPlan {
    /// Writes the plan in the grammar it is parsed from (canonical names, `:P` always shown).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (kind, p)) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{kind}:{p}")?;
        }
        Ok(())
    }
}

/// Parses one `KIND[:P]` / `delay:DUR[:P]` rule.
fn parse_rule(rule: &str) -> Result<(FaultKind, f64), FaultParseError> {
    let rule = rule.trim();
    if rule.is_empty() {
        return Err(FaultParseError::EmptyRule);
    }
    let mut parts = rule.split(':').map(str::trim);
    let name = parts.next().unwrap_or_default();
    let normalized: String = name
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let kind = match normalized.as_str() {
        "drop" => FaultKind::Drop,
        "delay" => {
            let text = parts.next().ok_or(FaultParseError::MissingDuration)?;
            FaultKind::Delay(parse_duration(text)?)
        }
        "close" => FaultKind::Close,
        "garbage" => FaultKind::Garbage,
        "truncate" => FaultKind::Truncate,
        "badmac" => FaultKind::BadMac,
        "wrongstan" => FaultKind::WrongStan,
        "duplicate" => FaultKind::Duplicate,
        "late" => FaultKind::Late,
        _ => {
            return Err(FaultParseError::UnknownKind {
                kind: name.to_owned(),
            });
        }
    };
    let probability = match parts.next() {
        None => 1.0,
        Some(text) => parse_probability(text)?,
    };
    if parts.next().is_some() {
        return Err(FaultParseError::TooManyParts {
            rule: rule.to_owned(),
        });
    }
    Ok((kind, probability))
}

/// Parses `<digits>ms` or `<digits>s`, at most [`MAX_DELAY`].
pub fn parse_duration(text: &str) -> Result<Duration, FaultParseError> {
    let bad = || FaultParseError::BadDuration {
        text: text.to_owned(),
    };
    let (digits, millis_per_unit) = if let Some(d) = text.strip_suffix("ms") {
        (d, 1u64)
    } else if let Some(d) = text.strip_suffix('s') {
        (d, 1000u64)
    } else {
        return Err(bad());
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let value: u64 = digits.parse().map_err(|_| bad())?;
    let millis = value.checked_mul(millis_per_unit).ok_or_else(bad)?;
    let duration = Duration::from_millis(millis);
    if duration > MAX_DELAY {
        return Err(bad());
    }
    Ok(duration)
}

fn parse_probability(text: &str) -> Result<f64, FaultParseError> {
    match text.parse::<f64>() {
        Ok(p) if p.is_finite() && (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(FaultParseError::BadProbability {
            text: text.to_owned(),
        }),
    }
}

/// Formats a duration the way the grammar reads it: whole seconds as `Ns`, else `Nms`.
fn format_duration(d: Duration) -> String {
    let millis = d.as_millis();
    if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
}

/// The faults picked for one request: at most one transport fault plus message-level flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultSet {
    /// The transport fault to apply to this request's answer, if any (never `BadMac` or
    /// `WrongStan`).
    pub transport: Option<FaultKind>,
    /// The handler should corrupt the MAC of its answer.
    pub bad_mac: bool,
    /// The handler should answer with a STAN that does not match the request.
    pub wrong_stan: bool,
}

impl FaultSet {
    /// No fault at all.
    pub fn none() -> FaultSet {
        FaultSet::default()
    }

    /// Whether nothing is to be injected.
    pub fn is_empty(&self) -> bool {
        self.transport.is_none() && !self.bad_mac && !self.wrong_stan
    }

    /// Whether `kind` is part of this set (for `Delay`, the duration must match too).
    pub fn contains(&self, kind: FaultKind) -> bool {
        match kind {
            FaultKind::BadMac => self.bad_mac,
            FaultKind::WrongStan => self.wrong_stan,
            other => self.transport == Some(other),
        }
    }
}

/// SplitMix64, the small PRNG used for fault decisions and garbage bytes. Not cryptographic;
/// chosen because it is tiny, fast and fully determined by its 64-bit seed.
///
/// Algorithm and constants: G. Steele, D. Lea, C. Flood, "Fast splittable pseudorandom number
/// generators", OOPSLA 2014 (the public-domain `splitmix64.c` by S. Vigna uses the same ones).
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose whole output is determined by `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in `[0, 1)` (53 random bits).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Fills `out` with pseudo-random bytes.
    pub fn fill_bytes(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

/// Picks the faults of each request from a [`FaultPlan`] with a [`SplitMix64`] seeded once.
#[derive(Debug, Clone)]
pub struct FaultPicker {
    /// Transport rules, probabilities already scaled so that they add up to at most 1.
    transport: Vec<(FaultKind, f64)>,
    /// Message-level rules, each drawn independently.
    message: Vec<(FaultKind, f64)>,
    rng: SplitMix64,
}

impl FaultPicker {
    /// A picker for `plan` whose decisions are determined by `seed`.
    pub fn new(plan: &FaultPlan, seed: u64) -> FaultPicker {
        let valid = |p: f64| {
            if p.is_finite() {
                p.clamp(0.0, 1.0)
            } else {
                0.0
            }
        };
        let mut transport: Vec<(FaultKind, f64)> = plan
            .rules
            .iter()
            .filter(|(k, _)| k.is_transport())
            .map(|(k, p)| (*k, valid(*p)))
            .collect();
        let total: f64 = transport.iter().map(|(_, p)| p).sum();
        if total > 1.0 {
            for (_, p) in &mut transport {
                *p /= total;
            }
        }
        let message = plan
            .rules
            .iter()
            .filter(|(k, _)| !k.is_transport())
            .map(|(k, p)| (*k, valid(*p)))
            .collect();
        FaultPicker {
            transport,
            message,
            rng: SplitMix64::new(seed),
        }
    }

    /// The faults for the next request. Always makes `1 + number of message-level rules` draws,
    /// so decisions do not shift when an earlier outcome differs.
    pub fn pick(&mut self) -> FaultSet {
        let mut set = FaultSet::none();
        let u = self.rng.next_f64();
        let mut edge = 0.0;
        for (kind, p) in &self.transport {
            edge += p;
            if *p > 0.0 && u < edge {
                set.transport = Some(*kind);
                break;
            }
        }
        for (kind, p) in &self.message {
            let hit = self.rng.next_f64() < *p;
            match kind {
                FaultKind::BadMac => set.bad_mac |= hit,
                FaultKind::WrongStan => set.wrong_stan |= hit,
                _ => {}
            }
        }
        set
    }

    /// Raw PRNG output for things a fault needs besides the decision (garbage bytes).
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_with_default_probability() {
        let plan = FaultPlan::parse(
            "drop,close,garbage,truncate,duplicate,late,bad-mac,wrong-stan,delay:250ms",
        )
        .unwrap();
        let kinds: Vec<FaultKind> = plan.rules.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            vec![
                FaultKind::Drop,
                FaultKind::Close,
                FaultKind::Garbage,
                FaultKind::Truncate,
                FaultKind::Duplicate,
                FaultKind::Late,
                FaultKind::BadMac,
                FaultKind::WrongStan,
                FaultKind::Delay(Duration::from_millis(250)),
            ]
        );
        assert!(plan.rules.iter().all(|(_, p)| *p == 1.0));
    }

    #[test]
    fn parses_probabilities_durations_and_aliases() {
        let plan = FaultPlan::parse(" drop:0.1 , delay:2s:0.5, BadMac:0, wrong_stan:1 ").unwrap();
        assert_eq!(
            plan.rules,
            vec![
                (FaultKind::Drop, 0.1),
                (FaultKind::Delay(Duration::from_secs(2)), 0.5),
                (FaultKind::BadMac, 0.0),
                (FaultKind::WrongStan, 1.0),
            ]
        );
        assert_eq!(FaultPlan::parse("").unwrap(), FaultPlan::none());
        assert_eq!(
            "late".parse::<FaultPlan>().unwrap(),
            FaultPlan::always(FaultKind::Late)
        );
    }

    #[test]
    fn rejects_malformed_plans() {
        let err = |s: &str| FaultPlan::parse(s).unwrap_err();
        assert_eq!(err("drop,,late"), FaultParseError::EmptyRule);
        assert_eq!(
            err("explode"),
            FaultParseError::UnknownKind {
                kind: "explode".into()
            }
        );
        assert_eq!(err("delay"), FaultParseError::MissingDuration);
        for bad in [
            "delay:2",
            "delay:s",
            "delay:-1s",
            "delay:1.5s",
            "delay:3601s",
            "delay:99999999999999999999ms",
        ] {
            assert!(
                matches!(err(bad), FaultParseError::BadDuration { .. }),
                "{bad}"
            );
        }
        for bad in ["drop:1.5", "drop:-0.1", "drop:NaN", "drop:x", "drop:inf"] {
            assert!(
                matches!(err(bad), FaultParseError::BadProbability { .. }),
                "{bad}"
            );
        }
        assert_eq!(
            err("drop:0.5:1"),
            FaultParseError::TooManyParts {
                rule: "drop:0.5:1".into()
            }
        );
        assert!(matches!(
            err("delay:1s:0.5:1"),
            FaultParseError::TooManyParts { .. }
        ));
    }

    #[test]
    fn display_round_trips() {
        let plan = FaultPlan::parse("delay:1500ms:0.25,delay:3s,bad-mac:0.5,late").unwrap();
        let text = plan.to_string();
        assert_eq!(text, "delay:1500ms:0.25,delay:3s:1,bad-mac:0.5,late:1");
        assert_eq!(FaultPlan::parse(&text).unwrap(), plan);
    }

    #[test]
    fn splitmix64_matches_reference_output() {
        // First outputs of the reference splitmix64.c (S. Vigna, prng.di.unimi.it) for state 0;
        // they are also the published default seeds of xoshiro256 implementations.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(rng.next_u64(), 0x06C4_5D18_8009_454F);
        assert_eq!(rng.next_u64(), 0xF88B_B8A8_724C_81EC);
        let mut bytes = [0u8; 11];
        SplitMix64::new(0).fill_bytes(&mut bytes);
        assert_eq!(bytes[..8], 0xE220_A839_7B1D_CDAF_u64.to_le_bytes());
        assert_eq!(bytes[8..], 0x6E78_9E6A_A1B9_65F4_u64.to_le_bytes()[..3]);
    }

    #[test]
    fn next_f64_is_in_unit_interval() {
        let mut rng = SplitMix64::new(7);
        for _ in 0..10_000 {
            let x = rng.next_f64();
            assert!((0.0..1.0).contains(&x));
        }
    }

    #[test]
    fn same_seed_same_decisions_and_other_seed_differs() {
        let plan = FaultPlan::parse("drop:0.2,late:0.2,bad-mac:0.5").unwrap();
        let run = |seed| {
            let mut p = FaultPicker::new(&plan, seed);
            (0..200).map(|_| p.pick()).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn frequencies_follow_probabilities() {
        let plan = FaultPlan::parse("drop:0.1,close:0.3,wrong-stan:0.5").unwrap();
        let mut picker = FaultPicker::new(&plan, 99);
        let n = 20_000;
        let (mut drop, mut close, mut stan) = (0, 0, 0);
        for _ in 0..n {
            let set = picker.pick();
            drop += usize::from(set.transport == Some(FaultKind::Drop));
            close += usize::from(set.transport == Some(FaultKind::Close));
            stan += usize::from(set.wrong_stan);
            assert!(!set.bad_mac);
        }
        let share = |c: usize| c as f64 / n as f64;
        assert!((share(drop) - 0.1).abs() < 0.02, "drop {}", share(drop));
        assert!((share(close) - 0.3).abs() < 0.02, "close {}", share(close));
        assert!((share(stan) - 0.5).abs() < 0.02, "stan {}", share(stan));
    }

    #[test]
    fn transport_probabilities_above_one_are_scaled_and_exclusive() {
        let plan = FaultPlan::parse("drop,close").unwrap();
        let mut picker = FaultPicker::new(&plan, 5);
        let mut drops = 0;
        for _ in 0..10_000 {
            let set = picker.pick();
            assert!(
                set.transport.is_some(),
                "every request gets exactly one fault"
            );
            drops += usize::from(set.transport == Some(FaultKind::Drop));
        }
        assert!((4_500..5_500).contains(&drops), "{drops}");
    }

    #[test]
    fn empty_plan_never_injects() {
        let mut picker = FaultPicker::new(&FaultPlan::none(), 1);
        assert!((0..1000).all(|_| picker.pick().is_empty()));
        assert!(FaultPlan::parse("drop:0").unwrap().is_empty());
    }

    #[test]
    fn fault_set_contains() {
        let set = FaultSet {
            transport: Some(FaultKind::Delay(Duration::from_millis(5))),
            bad_mac: true,
            wrong_stan: false,
        };
        assert!(set.contains(FaultKind::BadMac));
        assert!(!set.contains(FaultKind::WrongStan));
        assert!(set.contains(FaultKind::Delay(Duration::from_millis(5))));
        assert!(!set.contains(FaultKind::Delay(Duration::from_millis(6))));
        assert!(!set.contains(FaultKind::Drop));
        assert!(!set.is_empty());
    }
}
