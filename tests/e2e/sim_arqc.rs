//! The simulated cards' ARQCs are what `tests/oracles/testdata/sim_arqc.json` records, so that
//! `tests/oracles/emv_oracle.py` can recompute them independently from the keys and the
//! derivation in `docs/simulated-cards.md`.

use smartpos_sim::card::{CardProfile, SimCard};
use smartpos_types::hex;

const VECTORS: &str = include_str!("../oracles/testdata/sim_arqc.json");

/// `"key": "value"` of the first line holding `"key":` after `from`.
fn value<'a>(text: &'a str, from: usize, key: &str) -> (&'a str, usize) {
    let needle = format!("\"{key}\": \"");
    let at = text[from..].find(&needle).unwrap() + from + needle.len();
    let end = text[at..].find('"').unwrap() + at;
    (&text[at..end], end)
}

#[test]
fn simulated_cards_answer_the_recorded_arqcs() {
    for (name, profile) in [
        ("visa", CardProfile::Visa),
        ("unionpay", CardProfile::UnionPay),
    ] {
        let start = VECTORS.find(&format!("\"card\": \"{name}\"")).unwrap();
        let (select, at) = value(VECTORS, start, "select");
        let (gpo, at) = value(VECTORS, at, "gpo");
        let (response, _) = value(VECTORS, at, "response");
        let mut card = SimCard::new(profile).unwrap();
        let selected = card.transceive(&hex::decode(select).unwrap()).unwrap();
        assert_eq!(
            selected[selected.len() - 2..],
            [0x90, 0x00],
            "{name} select"
        );
        let got = card.transceive(&hex::decode(gpo).unwrap()).unwrap();
        assert_eq!(
            hex::encode(&got),
            response,
            "{name}: the GPO answer changed"
        );
    }
}
