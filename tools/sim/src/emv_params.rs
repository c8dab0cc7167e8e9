//! The host side of the EMV parameter download (UnionPay 60.3 372/370/371 for CA public keys,
//! 382/380/381 for IC card parameters; layouts in `docs/messages.md`) and the built-in TEST
//! parameter set the simulator serves.
//!
//! TEST data only. The AIDs are the schemes' real application identifiers with typical limits
//! for a CNY terminal; the CA keys are the Visa **test** keys 92 and 94 (RID A000000003), as
//! published with the Visa VSDC test key set and republished in many public terminal SDK
//! samples. Their checksums are recomputed (SHA-1 over RID, index, modulus, exponent) by the
//! tests, so a wrong digit cannot go unnoticed. They authenticate nothing in production.

use smartpos_txn::params::{
    AidParams, CaPublicKey, ListStatus, ListedKey, TerminalParams, aid_request_tlv, parse_aid_list,
    parse_key_list, parse_query_field62,
};
use smartpos_types::hex;

/// Entries per query answer: deliberately small, so that every download against the simulator
/// exercises the "more follow" continuation (status `2`).
pub const QUERY_PAGE: usize = 2;

/// Visa test CA key 92 (1408 bits, exponent 3): modulus.
const VISA_92_MODULUS: &str = "996AF56F569187D09293C14810450ED8EE3357397B18A2458EFAA92DA3B6DF6514EC060195318FD43BE9B8F0CC669E3F844057CBDDF8BDA191BB64473BC8DC9A730DB8F6B4EDE3924186FFD9B8C7735789C23A36BA0B8AF65372EB57EA5D89E7D14E9C7B6B557460F10885DA16AC923F15AF3758F0F03EBD3C5C2C949CBA306DB44E6A2C076C5F67E281D7EF56785DC4D75945E491F01918800A9E2DC66F60080566CE0DAF8D17EAD46AD8E30A247C9F";
/// Visa test CA key 92: published checksum.
const VISA_92_CHECKSUM: &str = "429C954A3859CEF91295F663C963E582ED6EB253";
/// Visa test CA key 94 (1984 bits, exponent 3): modulus.
const VISA_94_MODULUS: &str = "ACD2B12302EE644F3F835ABD1FC7A6F62CCE48FFEC622AA8EF062BEF6FB8BA8BC68BBF6AB5870EED579BC3973E121303D34841A796D6DCBC41DBF9E52C4609795C0CCF7EE86FA1D5CB041071ED2C51D2202F63F1156C58A92D38BC60BDF424E1776E2BC9648078A03B36FB554375FC53D57C73F5160EA59F3AFC5398EC7B67758D65C9BFF7828B6B82D4BE124A416AB7301914311EA462C19F771F31B3B57336000DFF732D3B83DE07052D730354D297BEC72871DCCF0E193F171ABA27EE464C6A97690943D59BDABB2A27EB71CEEBDAFA1176046478FD62FEC452D5CA393296530AA3F41927ADFE434A2DF2AE3054F8840657A26E0FC617";
/// Visa test CA key 94: published checksum.
const VISA_94_CHECKSUM: &str = "C4A3C43CCF87327D136B804160E47D43B60E6E0F";

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_default()
}

/// One AID with the limits the simulator serves. `cl_cvm` 100000 is 1000.00 CNY, UnionPay
/// QuickPass's no-CVM limit; `cl_txn` 1000000 is 10000.00; contactless offline floor 0 (every
/// contactless transaction goes online on a smart POS).
fn aid(aid: &str, version: &str, tacs: [&str; 3], ec_limit: Option<u64>) -> AidParams {
    let [default, denial, online] = tacs;
    AidParams {
        aid: h(aid),
        asi: 0,
        app_version: Some(h(version)),
        tac_default: Some(h(default)),
        tac_denial: Some(h(denial)),
        tac_online: Some(h(online)),
        floor_limit: Some(0),
        threshold: Some(0),
        max_target_percent: Some(0),
        target_percent: Some(0),
        default_ddol: Some(h("9F3704")),
        default_tdol: None,
        online_pin: Some(true),
        ec_limit,
        contactless_floor_limit: Some(0),
        contactless_txn_limit: Some(1_000_000),
        contactless_cvm_limit: Some(100_000),
    }
}

fn key(index: u8, modulus: &str, checksum: &str) -> CaPublicKey {
    CaPublicKey {
        rid: h("A000000003"),
        index,
        expiry: "20491231".into(),
        hash_alg: 1,
        pk_alg: 1,
        modulus: h(modulus),
        exponent: vec![3],
        checksum: Some(h(checksum)),
    }
}

/// The TEST parameter set: Visa credit/debit, Mastercard credit/debit, UnionPay debit and
/// credit; Visa test CA keys 92 and 94.
pub fn test_params() -> TerminalParams {
    let visa_tacs = ["DC4000A800", "0010000000", "DC4004F800"];
    let mc_tacs = ["FC50BCA000", "0000000000", "FC50BCF800"];
    let cup_tacs = ["D84000A800", "0010000000", "D84004F800"];
    TerminalParams {
        aids: vec![
            aid("A0000000031010", "008C", visa_tacs, None),
            aid("A0000000041010", "0002", mc_tacs, None),
            aid("A000000333010101", "0030", cup_tacs, Some(100_000)),
            aid("A000000333010102", "0030", cup_tacs, Some(100_000)),
        ],
        ca_keys: vec![
            key(0x92, VISA_92_MODULUS, VISA_92_CHECKSUM),
            key(0x94, VISA_94_MODULUS, VISA_94_CHECKSUM),
        ],
    }
}

/// Field 62 of the answer to a network-management request with 60.3 `nmic` and field 62
/// `request`; `None` when `nmic` is not a parameter query or download (end messages and
/// everything else carry no field 62). Malformed requests are answered with status `0`.
pub fn answer(params: &TerminalParams, nmic: &str, request: Option<&[u8]>) -> Option<Vec<u8>> {
    let req = request.unwrap_or_default();
    let none = || vec![ListStatus::None.byte()];
    match nmic {
        "372" => {
            let entries = params
                .ca_keys
                .iter()
                .map(|k| {
                    ListedKey {
                        rid: k.rid.clone(),
                        index: k.index,
                        expiry: Some(k.expiry.clone()),
                    }
                    .to_tlv()
                })
                .collect();
            Some(page(entries, req))
        }
        "382" => Some(page(
            params
                .aids
                .iter()
                .map(|a| aid_request_tlv(&a.aid))
                .collect(),
            req,
        )),
        "370" => Some(
            parse_key_list(req)
                .ok()
                .and_then(|l| {
                    l.first()
                        .and_then(|k| params.ca_key(&k.rid, k.index))
                        .cloned()
                })
                .map_or_else(none, |k| {
                    [vec![ListStatus::Last.byte()], k.to_tlv()].concat()
                }),
        ),
        "380" => Some(
            parse_aid_list(req)
                .ok()
                .and_then(|l| {
                    l.first()
                        .and_then(|a| params.aids.iter().find(|p| &p.aid == a))
                        .cloned()
                })
                .map_or_else(none, |a| {
                    [vec![ListStatus::Last.byte()], a.to_tlv()].concat()
                }),
        ),
        _ => None,
    }
}

/// One page of a query answer: the entries after the count the terminal sent.
fn page(entries: Vec<Vec<u8>>, request: &[u8]) -> Vec<u8> {
    let Some(from) = parse_query_field62(request) else {
        return vec![ListStatus::None.byte()];
    };
    let rest: Vec<Vec<u8>> = entries.into_iter().skip(from).collect();
    let status = match rest.len() {
        0 => ListStatus::None,
        n if n > QUERY_PAGE => ListStatus::More,
        _ => ListStatus::Last,
    };
    let mut out = vec![status.byte()];
    for e in rest.iter().take(QUERY_PAGE) {
        out.extend_from_slice(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_set_is_valid_and_published_checksums_match() {
        let p = test_params();
        assert_eq!(p.validate(), Ok(()));
        for k in &p.ca_keys {
            assert_eq!(
                Some(k.compute_checksum().to_vec()),
                k.checksum,
                "{}",
                k.id()
            );
        }
        assert_eq!(
            p.contactless_limits_for(&h("A000000333010101")),
            Some((0, 1_000_000, 100_000))
        );
    }

    #[test]
    fn answers_page_and_download() {
        let p = test_params();
        let first = answer(&p, "382", Some(b"100")).unwrap();
        assert_eq!(first.first(), Some(&b'2'));
        assert_eq!(parse_aid_list(&first[1..]).unwrap().len(), 2);
        let second = answer(&p, "382", Some(b"102")).unwrap();
        assert_eq!(second.first(), Some(&b'1'));
        assert_eq!(answer(&p, "382", Some(b"104")), Some(b"0".to_vec()));
        assert_eq!(answer(&p, "382", Some(b"x")), Some(b"0".to_vec()));
        let k = answer(
            &p,
            "370",
            Some(
                &ListedKey {
                    rid: h("A000000003"),
                    index: 0x94,
                    expiry: None,
                }
                .request_tlv(),
            ),
        )
        .unwrap();
        assert_eq!(CaPublicKey::from_tlv(&k[1..]).as_ref(), Ok(&p.ca_keys[1]));
        assert_eq!(answer(&p, "380", Some(&h("9F0601A0"))), Some(b"0".to_vec()));
        assert_eq!(answer(&p, "371", None), None);
    }
}
