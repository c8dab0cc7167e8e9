//! The simulated device kernel (`SimCertifiedKernel`) against the SDK's acceptance rules and
//! the host simulator: chip reads whose ARQCs the host verifies, the card's final decision,
//! issuer scripts, swipes and fallback, and the host's TC upload and script result advice.

use smartpos_crypto::TdesKey;
use smartpos_emv::certified::{
    CardDecision, CardRefusal, CertifiedKernel, EntryMode, HostAnswer, KernelBridgeError,
    KernelCard, KernelRequest, Verification, accept, icc_tag,
};
use smartpos_emv::kernel::{CryptogramType, FIELD55_TAGS, IccData, issuer_response};
use smartpos_emv::tlv;
use smartpos_iso8583::{Message, Mti};
use smartpos_sim::acquirer::{
    Acquirer, AcquirerConfig, HostStatus, ISSUER_SCRIPT_72, LedgerEntry, TEST_TMK_HEX,
};
use smartpos_sim::card::{TEST_IMK_AC, verify_arqc};
use smartpos_sim::certified::{
    CHIP_UNREADABLE, ERR_BAD_REQUEST, ERR_NOT_FOR_ENTRY_MODE, ERR_NOTHING_TO_COMPLETE, MAX_SCRIPTS,
    Presentation, SimBehaviour, SimCertifiedKernel, SimScheme, verify_final_cryptogram,
};
use smartpos_sim::fault::FaultSet;
use smartpos_txn::profile::Profile;
use smartpos_txn::proto;
use smartpos_types::hex::{decode, encode};

const TID: &str = "SIMTID01";
const MID: &str = "123456789012345";

fn request(amount: u64) -> KernelRequest {
    KernelRequest {
        txn_type: 0x00,
        amount,
        other_amount: 0,
        currency: 156,
        country: 156,
        date: "250101".into(),
        time: "120000".into(),
        unpredictable_number: [0x12, 0x34, 0x56, 0x78],
        allowed: Vec::new(),
        aids: Vec::new(),
    }
}

fn kernel(scheme: SimScheme, via: Presentation, behaviour: SimBehaviour) -> SimCertifiedKernel {
    SimCertifiedKernel::new(scheme, via, behaviour).unwrap()
}

fn behaviour(names: &str) -> SimBehaviour {
    names.parse().unwrap()
}

/// The host simulator with one signed-in terminal, and the terminal's MAC key.
struct Host {
    acquirer: Acquirer,
    profile: Profile,
    mak: TdesKey,
    stan: u32,
}

impl Host {
    fn new() -> Host {
        let tmk = TdesKey::new(&decode(TEST_TMK_HEX).unwrap()).unwrap();
        let acquirer = Acquirer::new(AcquirerConfig {
            dialect: "cup".into(),
            tmk: tmk.clone(),
            ledger_file: None,
        })
        .unwrap();
        let profile = Profile::by_name("cup").unwrap();
        let mut sign_in = Message::new(Mti::NETWORK);
        sign_in.set(11, b"000001".to_vec());
        sign_in.set(41, TID.as_bytes().to_vec());
        sign_in.set(42, MID.as_bytes().to_vec());
        sign_in.set(60, b"00000001003".to_vec());
        let raw = proto::seal(&profile, None, &sign_in, false).unwrap();
        let answer = acquirer.handle_request(FaultSet::none(), &raw).unwrap();
        let answer = profile.dialect.unpack(&answer).unwrap();
        assert_eq!(answer.text(39), Some("00"));
        let block = profile
            .decode_key_block(answer.get(profile.keys.field).unwrap())
            .unwrap();
        let keys = profile.keys.unwrap(&tmk, &block).unwrap();
        Host {
            acquirer,
            profile,
            mak: keys.mak,
            stan: 1,
        }
    }

    fn next_stan(&mut self) -> String {
        self.stan += 1;
        format!("{:06}", self.stan)
    }

    /// Sends a request with a MAC; the answer, whose MAC must verify.
    fn exchange(&self, msg: &Message) -> Message {
        let raw = proto::seal(&self.profile, Some(&self.mak), msg, true).unwrap();
        let answer = self
            .acquirer
            .handle_request(FaultSet::none(), &raw)
            .unwrap();
        let decoded = self.profile.dialect.unpack(&answer).unwrap();
        assert!(
            proto::verify_mac(&self.profile, &self.mak, &answer, &decoded),
            "answer {} carries a good MAC",
            decoded.mti
        );
        decoded
    }

    /// A chip sale (0200, 60.1 = 22) for a card the kernel read.
    fn sale(&mut self, card: &KernelCard, amount: u64) -> Message {
        let mut m = Message::new(Mti::FINANCIAL_REQUEST);
        m.set(2, card.pan.expose().as_bytes().to_vec());
        m.set(3, b"000000".to_vec());
        m.set(4, format!("{amount:012}").into_bytes());
        m.set(11, self.next_stan().into_bytes());
        m.set(12, b"120000".to_vec());
        m.set(13, b"0101".to_vec());
        if let Some(e) = &card.expiry {
            m.set(14, e.as_bytes().to_vec());
        }
        m.set(
            22,
            card.entry_mode.pos_entry_mode(false).as_bytes().to_vec(),
        );
        if let Some(psn) = card.pan_seq {
            m.set(23, format!("{psn:03}").into_bytes());
        }
        m.set(25, b"00".to_vec());
        m.set(41, TID.as_bytes().to_vec());
        m.set(42, MID.as_bytes().to_vec());
        m.set(49, b"156".to_vec());
        if !card.icc_data.as_bytes().is_empty() {
            m.set(55, card.icc_data.as_bytes().to_vec());
        }
        m.set(60, b"22000001000".to_vec());
        self.exchange(&m)
    }

    /// An advice about the transaction with `rrn`: MTI, 60.3 and field 55.
    fn advice(&mut self, mti: u16, nmic: &str, rrn: &str, f55: &[u8]) -> Message {
        let mut m = Message::new(Mti(mti));
        m.set(3, b"000000".to_vec());
        m.set(11, self.next_stan().into_bytes());
        m.set(13, b"0101".to_vec());
        m.set(37, rrn.as_bytes().to_vec());
        m.set(41, TID.as_bytes().to_vec());
        m.set(42, MID.as_bytes().to_vec());
        m.set(55, f55.to_vec());
        m.set(60, format!("00000001{nmic}").into_bytes());
        self.exchange(&m)
    }

    fn entry(&self, rrn: &str) -> LedgerEntry {
        self.acquirer
            .ledger()
            .transactions
            .into_iter()
            .find(|e| e.rrn == rrn)
            .unwrap()
    }
}

/// What the SDK hands the card after the host's answer to `sale`.
fn host_answer(answer: &Message) -> HostAnswer {
    let code = answer.text(39).unwrap_or_default().to_owned();
    let issuer = answer
        .get(55)
        .map(|f| issuer_response(f).unwrap())
        .unwrap_or_default();
    let mut scripts = issuer.scripts_71;
    scripts.extend(issuer.scripts_72);
    HostAnswer {
        online: true,
        approved: proto::is_approval(&code),
        response_code: code,
        auth_code: answer.text(38).map(str::to_owned),
        issuer_auth_data: issuer.arpc,
        scripts,
    }
}

fn offline() -> HostAnswer {
    HostAnswer {
        online: false,
        response_code: String::new(),
        approved: false,
        auth_code: None,
        issuer_auth_data: None,
        scripts: Vec::new(),
    }
}

fn tag(icc: &IccData, t: u32) -> Vec<u8> {
    icc_tag(icc, t).unwrap_or_else(|| panic!("tag {t:X} in field 55"))
}

/// Checks the final cryptogram by the simulator's convention; its type.
fn final_type(k: &SimCertifiedKernel, d: &CardDecision) -> CryptogramType {
    let (kind, ac) =
        verify_final_cryptogram(&TEST_IMK_AC, k.pan(), k.psn(), d.icc_data.as_bytes()).unwrap();
    assert_eq!(kind, d.cryptogram_type);
    assert_eq!(ac.to_vec(), d.cryptogram);
    assert_eq!(tag(&d.icc_data, 0x9F26), d.cryptogram);
    kind
}

/// Reads the inserted card, sends the sale, completes with the host's answer.
fn chip_sale(
    host: &mut Host,
    k: &mut SimCertifiedKernel,
    amount: u64,
) -> (KernelCard, Message, CardDecision) {
    let card = k.read(&request(amount)).unwrap();
    let answer = host.sale(&card, amount);
    let decision = k.complete(&host_answer(&answer)).unwrap();
    (card, answer, decision)
}

#[test]
fn chip_and_tap_reads_carry_an_arqc_the_host_verifies() {
    for scheme in SimScheme::ALL {
        for via in [Presentation::Chip, Presentation::Tap] {
            let mut k = kernel(scheme, via, SimBehaviour::APPROVE);
            let first = k.read(&request(1234)).unwrap();
            let atc = k.atc();
            let card = k.read(&request(1234)).unwrap();
            assert_eq!(k.atc(), atc + 1, "{scheme:?} {via:?}: ATC per read");
            assert_ne!(first.icc_data, card.icc_data);
            let arqc = verify_arqc(&TEST_IMK_AC, &card.pan, card.pan_seq.unwrap(), {
                card.icc_data.as_bytes()
            })
            .unwrap();
            assert_eq!(arqc.to_vec(), tag(&card.icc_data, 0x9F26));
            assert_eq!(card.cryptogram_type(), Some(CryptogramType::Arqc));
            assert_eq!(
                tag(&card.icc_data, 0x9F36),
                atc.wrapping_add(1).to_be_bytes()
            );
            assert_eq!(tag(&card.icc_data, 0x9F02), [0, 0, 0, 0, 0x12, 0x34]);
            assert_eq!(tag(&card.icc_data, 0x9F37), [0x12, 0x34, 0x56, 0x78]);
            assert_eq!(tag(&card.icc_data, 0x84), card.aid);
            // Every tag of the list but the UnionPay product id, in the list's order.
            let order: Vec<u32> = tlv::parse(card.icc_data.as_bytes())
                .unwrap()
                .iter()
                .map(|t| t.tag.0)
                .collect();
            let want: Vec<u32> = FIELD55_TAGS
                .iter()
                .copied()
                .filter(|t| *t != 0x9F63)
                .collect();
            assert_eq!(order, want);
            assert!(card.icc_data.as_bytes().len() <= 255);
            assert_eq!(card.entry_mode, via.entry_mode());
            assert_eq!(accept(&card, &[]), Ok(via.entry_mode()));
            assert_eq!(card.expiry.as_deref(), Some("3012"));
            let t2 = card.track2.as_ref().unwrap();
            assert_eq!(t2.service_code(), Some(scheme.service_code()));
            assert_eq!(t2.pan().as_ref(), Some(&card.pan));
            assert_eq!(card.service_code.as_deref(), Some(scheme.service_code()));
            assert!(!card.app_label.is_empty());
            assert!(!card.chip_failed);
            let (want_verification, cvm) = match via {
                Presentation::Tap => (Verification::NoCvm, [0x1F, 0x03, 0x02]),
                _ => (Verification::Signature, [0x1E, 0x03, 0x00]),
            };
            assert_eq!(card.verification, want_verification);
            assert_eq!(tag(&card.icc_data, 0x9F34), cvm);
            assert_eq!(k.reads(), 2);
        }
    }
    let visa = kernel(SimScheme::Visa, Presentation::Chip, SimBehaviour::APPROVE);
    assert_eq!(visa.pan().expose(), "4761739001010010");
    let up = kernel(
        SimScheme::UnionPay,
        Presentation::Chip,
        SimBehaviour::APPROVE,
    );
    assert_eq!(up.pan().expose(), "6228480402564890018");
}

#[test]
fn chip_sale_approved_by_the_host_ends_in_a_tc_uploaded_to_the_host() {
    let mut host = Host::new();
    for scheme in SimScheme::ALL {
        let mut k = kernel(scheme, Presentation::Chip, SimBehaviour::APPROVE);
        let (card, answer, decision) = chip_sale(&mut host, &mut k, 1234);
        assert_eq!(answer.text(39), Some("00"), "{scheme:?}");
        assert!(answer.get(55).is_some(), "{scheme:?}: ARPC");
        assert_eq!(decision.cryptogram_type, CryptogramType::Tc, "{scheme:?}");
        assert_eq!(final_type(&k, &decision), CryptogramType::Tc);
        assert_eq!(tag(&decision.icc_data, 0x9F27), [0x40]);
        assert_eq!(tag(&decision.icc_data, 0x8A), b"00");
        assert_eq!(tag(&decision.icc_data, 0x95), [0; 5]);
        assert_ne!(tag(&decision.icc_data, 0x9F26), tag(&card.icc_data, 0x9F26));
        assert!(decision.script_results.is_empty());
        assert_eq!(k.completions(), 1);
        assert_eq!(k.last_decision(), Some(CryptogramType::Tc));
        assert!(!k.awaiting_completion());

        let rrn = answer.text(37).unwrap().to_owned();
        let ack = host.advice(320, "203", &rrn, decision.icc_data.as_bytes());
        assert_eq!(ack.mti, Mti(330));
        assert_eq!(ack.text(39), Some("00"));
        let entry = host.entry(&rrn);
        assert_eq!(entry.tc, Some(encode(&decision.cryptogram)));
        assert_eq!(entry.status, HostStatus::Approved);
        assert_eq!(entry.script_results, None);
    }
}

#[test]
fn host_decline_or_no_host_gives_an_aac() {
    let mut host = Host::new();
    for scheme in SimScheme::ALL {
        let mut k = kernel(scheme, Presentation::Chip, SimBehaviour::APPROVE);
        let (_, answer, decision) = chip_sale(&mut host, &mut k, 1051);
        assert_eq!(answer.text(39), Some("51"));
        assert_eq!(decision.cryptogram_type, CryptogramType::Aac, "{scheme:?}");
        assert_eq!(final_type(&k, &decision), CryptogramType::Aac);
        assert_eq!(tag(&decision.icc_data, 0x9F27), [0x00]);
        assert_eq!(tag(&decision.icc_data, 0x8A), b"51");

        k.read(&request(1234)).unwrap();
        let d = k.complete(&offline()).unwrap();
        assert_eq!(d.cryptogram_type, CryptogramType::Aac);
        assert_eq!(tag(&d.icc_data, 0x8A), b"Z3");
        assert_eq!(final_type(&k, &d), CryptogramType::Aac);
    }
}

#[test]
fn card_declines_at_the_second_generate_ac_although_the_host_approved() {
    let mut host = Host::new();
    for scheme in SimScheme::ALL {
        let mut k = kernel(scheme, Presentation::Chip, behaviour("decline"));
        let (_, answer, decision) = chip_sale(&mut host, &mut k, 1234);
        assert_eq!(answer.text(39), Some("00"));
        assert_eq!(decision.cryptogram_type, CryptogramType::Aac, "{scheme:?}");
        assert_eq!(final_type(&k, &decision), CryptogramType::Aac);
        assert_eq!(tag(&decision.icc_data, 0x8A), b"00");
    }
}

#[test]
fn an_arpc_that_does_not_verify_makes_the_card_decline() {
    let mut host = Host::new();
    for scheme in SimScheme::ALL {
        let mut k = kernel(scheme, Presentation::Chip, SimBehaviour::APPROVE);
        let card = k.read(&request(1234)).unwrap();
        let answer = host_answer(&host.sale(&card, 1234));
        let good = answer.issuer_auth_data.clone().unwrap();
        assert_eq!(good.len(), 10);
        let mut bad_arpc = good.clone();
        bad_arpc[0] ^= 1;
        let mut bad_arc = good.clone();
        bad_arc[9] ^= 1;
        let forgeries = [
            bad_arpc,
            bad_arc,
            good[..8].to_vec(),
            Vec::new(),
            vec![0; 16],
        ];
        for forged in forgeries {
            k.read(&request(1234)).unwrap();
            let d = k
                .complete(&HostAnswer {
                    issuer_auth_data: Some(forged.clone()),
                    ..answer.clone()
                })
                .unwrap();
            assert_eq!(
                d.cryptogram_type,
                CryptogramType::Aac,
                "{scheme:?} {forged:?}"
            );
            assert_eq!(tag(&d.icc_data, 0x95)[4] & 0x40, 0x40, "issuer auth failed");
            assert_eq!(final_type(&k, &d), CryptogramType::Aac);
        }
        // The genuine ARPC, for a newer read, belongs to another ATC: it fails too.
        k.read(&request(1234)).unwrap();
        let d = k.complete(&answer).unwrap();
        assert_eq!(d.cryptogram_type, CryptogramType::Aac);
        // Without 91 the card does not insist.
        k.read(&request(1234)).unwrap();
        let d = k
            .complete(&HostAnswer {
                issuer_auth_data: None,
                ..answer.clone()
            })
            .unwrap();
        assert_eq!(d.cryptogram_type, CryptogramType::Tc);
    }
}

#[test]
fn host_sends_an_issuer_script_for_amounts_ending_in_72_and_takes_the_results() {
    let mut host = Host::new();
    for scheme in SimScheme::ALL {
        let mut k = kernel(scheme, Presentation::Chip, SimBehaviour::APPROVE);
        let (_, answer, decision) = chip_sale(&mut host, &mut k, 1072);
        assert_eq!(answer.text(39), Some("00"));
        let issuer = issuer_response(answer.get(55).unwrap()).unwrap();
        assert!(issuer.arpc_method1().is_some());
        assert_eq!(issuer.scripts_72, vec![ISSUER_SCRIPT_72.to_vec()]);
        assert!(issuer.scripts_71.is_empty());
        assert_eq!(decision.cryptogram_type, CryptogramType::Tc, "{scheme:?}");
        assert_eq!(decision.script_results, [0x20, 0, 0, 0, 1]);
        assert_eq!(k.script_commands(), 1);
        assert!(!k.blocked());

        let rrn = answer.text(37).unwrap().to_owned();
        let mut results = vec![0x9F, 0x5B, 0x05];
        results.extend_from_slice(&decision.script_results);
        let ack = host.advice(620, "951", &rrn, &results);
        assert_eq!(ack.mti, Mti(630));
        assert_eq!(ack.text(39), Some("00"));
        assert_eq!(
            host.entry(&rrn).script_results.as_deref(),
            Some("2000000001")
        );
        // DF31 works as well.
        results[..2].copy_from_slice(&[0xDF, 0x31]);
        let ack = host.advice(620, "951", &rrn, &results);
        assert_eq!(ack.text(39), Some("00"));
    }
    // No script for other amounts, nor for a declined one.
    let mut k = kernel(SimScheme::Visa, Presentation::Chip, SimBehaviour::APPROVE);
    let (_, answer, _) = chip_sale(&mut host, &mut k, 1073);
    assert!(
        issuer_response(answer.get(55).unwrap())
            .unwrap()
            .scripts_72
            .is_empty()
    );
    let (_, answer, _) = chip_sale(&mut host, &mut k, 990_072);
    assert_eq!(answer.text(39), Some("72"));
    assert!(
        issuer_response(answer.get(55).unwrap())
            .unwrap()
            .scripts_72
            .is_empty()
    );
}

#[test]
fn advices_for_unknown_transactions_or_without_the_tag_are_refused() {
    let mut host = Host::new();
    let mut k = kernel(
        SimScheme::UnionPay,
        Presentation::Chip,
        SimBehaviour::APPROVE,
    );
    let (_, answer, decision) = chip_sale(&mut host, &mut k, 1234);
    let rrn = answer.text(37).unwrap().to_owned();
    let tc = decision.icc_data.as_bytes();
    assert_eq!(
        host.advice(320, "203", "999999999999", tc).text(39),
        Some("25")
    );
    assert_eq!(
        host.advice(320, "203", &rrn, &[0x8A, 0x02, 0x30, 0x30])
            .text(39),
        Some("30")
    );
    assert_eq!(
        host.advice(320, "203", &rrn, &[0xFF, 0xFF]).text(39),
        Some("30")
    );
    assert_eq!(host.advice(620, "951", &rrn, tc).text(39), Some("30"));
    assert_eq!(host.advice(620, "952", &rrn, tc).text(39), Some("12"));
    assert_eq!(host.entry(&rrn).tc, None);
    // The original STAN in 61.2 finds it when 37 is absent.
    let stan = host.entry(&rrn).stan;
    let mut m = Message::new(Mti(320));
    m.set(11, host.next_stan().into_bytes());
    m.set(13, b"0101".to_vec());
    m.set(41, TID.as_bytes().to_vec());
    m.set(42, MID.as_bytes().to_vec());
    m.set(55, tc.to_vec());
    m.set(60, b"00000001203".to_vec());
    m.set(61, format!("000001{stan:06}0101").into_bytes());
    assert_eq!(host.exchange(&m).text(39), Some("00"));
    assert_eq!(host.entry(&rrn).tc, Some(encode(&decision.cryptogram)));
}

fn script(tag: u8, id: Option<[u8; 4]>, commands: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    if let Some(id) = id {
        body.extend_from_slice(&[0x9F, 0x18, 0x04]);
        body.extend_from_slice(&id);
    }
    for c in commands {
        body.push(0x86);
        body.push(u8::try_from(c.len()).unwrap());
        body.extend_from_slice(c);
    }
    let mut out = vec![tag, u8::try_from(body.len()).unwrap()];
    out.extend_from_slice(&body);
    out
}

const PUT_DATA: &[u8] = &[0x04, 0xDA, 0x9F, 0x58, 0x05, 0x03, 1, 2, 3, 4];
const APPLICATION_BLOCK: &[u8] = &[0x84, 0x1E, 0x00, 0x00, 0x04, 1, 2, 3, 4];

fn approved(scripts: Vec<Vec<u8>>) -> HostAnswer {
    HostAnswer {
        online: true,
        response_code: "00".into(),
        approved: true,
        auth_code: Some("123456".into()),
        issuer_auth_data: None,
        scripts,
    }
}

#[test]
fn script_results_give_a_result_byte_and_the_identifier_per_script() {
    for scheme in SimScheme::ALL {
        let mut k = kernel(scheme, Presentation::Chip, SimBehaviour::APPROVE);
        k.read(&request(100)).unwrap();
        let scripts = vec![
            script(0x71, None, &[PUT_DATA]),
            script(
                0x72,
                Some([0xA1, 0xA2, 0xA3, 0xA4]),
                &[PUT_DATA, &[0x00, 0xB2, 1, 0x0C]],
            ),
            vec![0x9F, 0x18, 0x00],
            script(0x72, Some([0, 0, 0, 7]), &[PUT_DATA, PUT_DATA]),
        ];
        let d = k.complete(&approved(scripts)).unwrap();
        assert_eq!(
            d.script_results,
            [
                0x20, 0, 0, 0, 0, // 71 without an identifier: done
                0x12, 0xA1, 0xA2, 0xA3, 0xA4, // second command refused
                0x10, 0, 0, 0, 0, // not a script
                0x20, 0, 0, 0, 7,
            ],
            "{scheme:?}"
        );
        assert_eq!(d.cryptogram_type, CryptogramType::Tc);
        assert_eq!(tag(&d.icc_data, 0x95), [0; 5]);
        assert_eq!(k.script_commands(), 4);

        // A failing 71 script marks the TVR, which the final cryptogram covers.
        let mut k = kernel(scheme, Presentation::Chip, behaviour("script-fail"));
        k.read(&request(100)).unwrap();
        let d = k
            .complete(&approved(vec![
                script(0x71, Some([0, 0, 0, 2]), &[PUT_DATA]),
                script(0x72, None, &[PUT_DATA]),
            ]))
            .unwrap();
        assert_eq!(d.script_results, [0x11, 0, 0, 0, 2, 0x11, 0, 0, 0, 0]);
        assert_eq!(tag(&d.icc_data, 0x95)[4], 0x20);
        assert_eq!(d.cryptogram_type, CryptogramType::Tc);
        assert_eq!(final_type(&k, &d), CryptogramType::Tc);
        assert_eq!(k.script_commands(), 0);
    }
}

#[test]
fn an_application_block_script_blocks_the_card() {
    let mut k = kernel(SimScheme::Visa, Presentation::Chip, SimBehaviour::APPROVE);
    k.read(&request(100)).unwrap();
    // Before the final GENERATE AC: the blocked card declines.
    let d = k
        .complete(&approved(vec![script(0x71, None, &[APPLICATION_BLOCK])]))
        .unwrap();
    assert_eq!(d.script_results, [0x20, 0, 0, 0, 0]);
    assert_eq!(d.cryptogram_type, CryptogramType::Aac);
    assert!(k.blocked());
    assert!(matches!(
        k.read(&request(100)),
        Err(KernelBridgeError::NotAccepted { .. })
    ));
    // The magnetic stripe still swipes.
    k.present(Presentation::Swipe);
    assert!(k.read(&request(100)).is_ok());
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.next() % (max as u64 + 1)) as usize;
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn hostile_host_answers_never_panic() {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let crafted: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0x71],
        vec![0x72, 0x81],
        vec![0x72, 0x84, 0xFF, 0xFF, 0xFF, 0xFF],
        vec![0x71, 0x80, 0x00, 0x00],
        vec![0x72, 0x02, 0x86, 0x05],
        vec![0x72, 0x03, 0x86, 0x01, 0x04],
        vec![0x72, 0x06, 0x9F, 0x18, 0x03, 1, 2, 3],
        vec![0x72, 0x04, 0xE1, 0x02, 0x86, 0x00],
        vec![0x71, 0x00],
        vec![0x71, 0x00, 0x00],
        vec![0x31, 0x00],
        // Deep nesting.
        {
            let mut v = Vec::new();
            for _ in 0..100 {
                v.extend_from_slice(&[0x72, 0x81]);
            }
            v
        },
        script(0x72, None, &[&[0x84, 0x1E, 0, 0, 0x09, 1]]),
        // Lc 0 followed by data.
        script(0x72, None, &[&[0x84, 0x1E, 0, 0, 0x00, 0x01, 0x02]]),
        script(0x72, None, &[&[0x84, 0x1E]]),
        script(0x72, None, &[&[]]),
    ];
    for scheme in SimScheme::ALL {
        let mut k = kernel(scheme, Presentation::Chip, SimBehaviour::APPROVE);
        k.read(&request(100)).unwrap();
        // Only the first MAX_SCRIPTS run.
        let d = k.complete(&approved(crafted.clone())).unwrap();
        let firsts: Vec<u8> = d.script_results.chunks(5).map(|r| r[0]).collect();
        assert_eq!(firsts.len(), MAX_SCRIPTS);
        assert_eq!(
            firsts,
            [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x11, 0x10, 0x10, 0x20]
        );
        k.read(&request(100)).unwrap();
        let d = k.complete(&approved(crafted[10..].to_vec())).unwrap();
        let firsts: Vec<u8> = d.script_results.chunks(5).map(|r| r[0]).collect();
        assert_eq!(firsts, [0x10, 0x10, 0x10, 0x11, 0x11, 0x11, 0x11]);
        assert_eq!(k.script_commands(), 0);
        for _ in 0..200 {
            let mut k = kernel(scheme, Presentation::Chip, SimBehaviour::APPROVE);
            if k.read(&request(100)).is_err() {
                continue;
            }
            let mut scripts = Vec::new();
            for _ in 0..(rng.next() % 12) {
                let mut s = rng.bytes(40);
                if let Some(first) = s.first_mut() {
                    *first = [0x71, 0x72, *first][(rng.next() % 3) as usize];
                }
                scripts.push(s);
            }
            let answer = HostAnswer {
                online: !rng.next().is_multiple_of(4),
                response_code: String::from_utf8_lossy(&rng.bytes(3)).into_owned(),
                approved: rng.next().is_multiple_of(2),
                auth_code: None,
                issuer_auth_data: rng.next().is_multiple_of(2).then(|| rng.bytes(20)),
                scripts,
            };
            let d = k.complete(&answer).unwrap();
            assert!(matches!(
                d.cryptogram_type,
                CryptogramType::Tc | CryptogramType::Aac
            ));
            assert_eq!(d.script_results.len() % 5, 0);
            assert!(d.script_results.len() <= 5 * MAX_SCRIPTS);
            final_type(&k, &d);
        }
    }
}

#[test]
fn a_swiped_chip_card_is_refused_unless_its_chip_failed() {
    for scheme in SimScheme::ALL {
        let mut k = kernel(scheme, Presentation::Swipe, SimBehaviour::APPROVE);
        let card = k.read(&request(100)).unwrap();
        assert_eq!(card.entry_mode, EntryMode::Magstripe);
        let t2 = card.track2.as_ref().unwrap();
        assert_eq!(t2.service_code(), Some(scheme.service_code()));
        assert_eq!(t2.expiry(), Some("3012"));
        assert_eq!(t2.pan().as_ref(), Some(k.pan()));
        assert!(t2.expose().len() <= 37);
        assert!(card.icc_data.as_bytes().is_empty());
        assert_eq!(card.verification, Verification::Signature);
        assert!(!card.chip_failed);
        assert_eq!(accept(&card, &[]), Err(CardRefusal::ChipCardSwiped));

        let mut k = kernel(scheme, Presentation::Swipe, behaviour("chip-error"));
        let card = k.read(&request(100)).unwrap();
        assert!(card.chip_failed);
        assert_eq!(accept(&card, &[]), Ok(EntryMode::FallbackMagstripe));

        let mut k = kernel(scheme, Presentation::Swipe, behaviour("magstripe-only"));
        let card = k.read(&request(100)).unwrap();
        assert_eq!(card.service_code.as_deref(), Some("101"));
        assert_eq!(card.track2.as_ref().unwrap().service_code(), Some("101"));
        assert_eq!(accept(&card, &[]), Ok(EntryMode::Magstripe));
    }
    assert_eq!(SimScheme::Visa.service_code(), "201");
    assert_eq!(SimScheme::Mastercard.service_code(), "201");
    assert_eq!(SimScheme::UnionPay.service_code(), "220");
}

#[test]
fn an_unreadable_chip_fails_the_read_and_the_swipe_falls_back() {
    for scheme in SimScheme::ALL {
        for via in [Presentation::Chip, Presentation::Tap] {
            let mut k = kernel(scheme, via, behaviour("chip-error"));
            assert_eq!(
                k.read(&request(100)),
                Err(KernelBridgeError::NotAccepted {
                    reason: CHIP_UNREADABLE.into()
                })
            );
            k.present(Presentation::Swipe);
            let card = k.read(&request(100)).unwrap();
            assert!(card.chip_failed);
            assert_eq!(accept(&card, &[]), Ok(EntryMode::FallbackMagstripe));
        }
        // A card without a chip answers nothing when inserted or tapped.
        for via in [Presentation::Chip, Presentation::Tap] {
            let mut k = kernel(scheme, via, behaviour("magstripe-only"));
            assert!(matches!(
                k.read(&request(100)),
                Err(KernelBridgeError::NotAccepted { .. })
            ));
        }
    }
}

#[test]
fn pin_on_the_pin_pad_leaves_the_pin_entry_to_the_sdk() {
    let mut host = Host::new();
    for scheme in SimScheme::ALL {
        for via in Presentation::ALL {
            let mut k = kernel(scheme, via, behaviour("pin"));
            let card = k.read(&request(100)).unwrap();
            assert_eq!(card.verification, Verification::OnlinePin { block: None });
            if via == Presentation::Swipe {
                continue;
            }
            assert_eq!(tag(&card.icc_data, 0x9F34), [0x42, 0x03, 0x00]);
            assert_eq!(tag(&card.icc_data, 0x95), [0, 0, 0x04, 0, 0]);
            let answer = host.sale(&card, 100);
            assert_eq!(answer.text(39), Some("00"), "{scheme:?} {via:?}");
            if via == Presentation::Chip {
                let d = k.complete(&host_answer(&answer)).unwrap();
                assert_eq!(d.cryptogram_type, CryptogramType::Tc);
                assert_eq!(final_type(&k, &d), CryptogramType::Tc);
            }
        }
    }
}

#[test]
fn every_behaviour_with_every_card() {
    let mut host = Host::new();
    // (behaviour, presentation) -> what the sale ends in: card refused by the SDK, read
    // failed, or the final cryptogram (None: no completion, a tap).
    for scheme in SimScheme::ALL {
        for names in [
            "approve",
            "decline",
            "chip-error",
            "script-fail",
            "pin",
            "magstripe-only",
        ] {
            for via in Presentation::ALL {
                let b = behaviour(names);
                let mut k = kernel(scheme, via, b);
                let card = match k.read(&request(1072)) {
                    Ok(card) => card,
                    Err(KernelBridgeError::NotAccepted { .. }) => {
                        assert!(
                            (b.chip_unreadable || b.magstripe_only) && via != Presentation::Swipe,
                            "{scheme:?} {names} {via:?}"
                        );
                        continue;
                    }
                    Err(e) => panic!("{scheme:?} {names} {via:?}: {e}"),
                };
                let accepted = accept(&card, &[]);
                if via == Presentation::Swipe {
                    let want = if b.magstripe_only {
                        Ok(EntryMode::Magstripe)
                    } else if b.chip_unreadable {
                        Ok(EntryMode::FallbackMagstripe)
                    } else {
                        Err(CardRefusal::ChipCardSwiped)
                    };
                    assert_eq!(accepted, want, "{scheme:?} {names}");
                    assert!(matches!(
                        k.complete(&offline()),
                        Err(KernelBridgeError::Kernel {
                            code: ERR_NOT_FOR_ENTRY_MODE,
                            ..
                        })
                    ));
                    continue;
                }
                assert_eq!(accepted, Ok(via.entry_mode()));
                let answer = host.sale(&card, 1072);
                assert_eq!(answer.text(39), Some("00"), "{scheme:?} {names} {via:?}");
                if via == Presentation::Tap {
                    assert!(matches!(
                        k.complete(&host_answer(&answer)),
                        Err(KernelBridgeError::Kernel {
                            code: ERR_NOT_FOR_ENTRY_MODE,
                            ..
                        })
                    ));
                    continue;
                }
                let d = k.complete(&host_answer(&answer)).unwrap();
                let want = if b.decline_at_second_ac {
                    CryptogramType::Aac
                } else {
                    CryptogramType::Tc
                };
                assert_eq!(d.cryptogram_type, want, "{scheme:?} {names}");
                assert_eq!(final_type(&k, &d), want);
                let result = if b.failing_scripts { 0x11 } else { 0x20 };
                assert_eq!(d.script_results, [result, 0, 0, 0, 1], "{scheme:?} {names}");
            }
        }
    }
}

#[test]
fn completion_is_only_for_an_inserted_card_that_was_read() {
    let mut k = kernel(
        SimScheme::Mastercard,
        Presentation::Chip,
        SimBehaviour::APPROVE,
    );
    let nothing = |r: Result<CardDecision, KernelBridgeError>| {
        matches!(
            r,
            Err(KernelBridgeError::Kernel {
                code: ERR_NOTHING_TO_COMPLETE,
                ..
            })
        )
    };
    assert!(nothing(k.complete(&approved(Vec::new()))));
    k.read(&request(100)).unwrap();
    assert!(k.awaiting_completion());
    k.abort();
    assert!(k.aborted());
    assert_eq!(k.aborts(), 1);
    assert!(nothing(k.complete(&approved(Vec::new()))));
    k.read(&request(100)).unwrap();
    assert!(k.complete(&approved(Vec::new())).is_ok());
    assert!(nothing(k.complete(&approved(Vec::new()))));
    assert_eq!(k.completions(), 1);

    let mut tap = kernel(SimScheme::Visa, Presentation::Tap, SimBehaviour::APPROVE);
    tap.read(&request(100)).unwrap();
    assert!(!tap.awaiting_completion());
    match tap.complete(&approved(Vec::new())) {
        Err(KernelBridgeError::Kernel { code, reason }) => {
            assert_eq!(code, ERR_NOT_FOR_ENTRY_MODE);
            assert!(reason.contains("contactless"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn requests_the_card_cannot_serve_are_errors() {
    let mut k = kernel(
        SimScheme::UnionPay,
        Presentation::Chip,
        SimBehaviour::APPROVE,
    );
    for bad in [
        KernelRequest {
            amount: 1_000_000_000_000,
            ..request(0)
        },
        KernelRequest {
            currency: 1000,
            ..request(100)
        },
        KernelRequest {
            country: 9999,
            ..request(100)
        },
        KernelRequest {
            date: "2501".into(),
            ..request(100)
        },
        KernelRequest {
            date: "25010x".into(),
            ..request(100)
        },
    ] {
        assert!(matches!(
            k.read(&bad),
            Err(KernelBridgeError::Kernel {
                code: ERR_BAD_REQUEST,
                ..
            })
        ));
    }
    // The terminal accepts only Visa: the UnionPay card has no application for it.
    let visa_only = KernelRequest {
        aids: vec![vec![0xA0, 0, 0, 0, 0x03, 0x10, 0x10]],
        ..request(100)
    };
    assert!(matches!(
        k.read(&visa_only),
        Err(KernelBridgeError::NotAccepted { .. })
    ));
    // A prefix of its AID selects it.
    let unionpay = KernelRequest {
        aids: vec![vec![0xA0, 0, 0, 0x03, 0x33]],
        ..request(100)
    };
    assert!(k.read(&unionpay).is_ok());
}

#[test]
fn a_card_of_another_issuer_is_declined_by_the_host() {
    let mut host = Host::new();
    let mut k = SimCertifiedKernel::with_imk(
        SimScheme::Visa,
        Presentation::Chip,
        SimBehaviour::APPROVE,
        &[0x11; 16],
    )
    .unwrap();
    let (_, answer, decision) = chip_sale(&mut host, &mut k, 1234);
    assert_eq!(answer.text(39), Some("05"));
    assert!(answer.get(55).is_none());
    assert_eq!(decision.cryptogram_type, CryptogramType::Aac);
    assert!(
        verify_final_cryptogram(&TEST_IMK_AC, k.pan(), k.psn(), decision.icc_data.as_bytes())
            .is_err()
    );
}
