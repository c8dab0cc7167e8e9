//! The bodies of the SmartPOS fuzz targets, kept in a library so the same code runs three ways:
//! under libFuzzer (`fuzz_targets/*.rs`, nightly, `scripts/fuzz.sh`), over the seed corpora and
//! seeded random mutations as ordinary tests on stable (`cargo test` in this directory), and
//! from the corpus writer (`write_seed_corpus`, an ignored test).
//!
//! Every function must return normally for every input: a panic (or an overflow, or an
//! out-of-bounds index) is a bug in the core. Where a cheap invariant exists it is asserted too:
//! re-packing a decoded ISO 8583 message reaches a fixpoint, a parsed TLV re-encodes to a
//! parseable TLV, an engine never approves a sale for an amount it did not ask for.
//!
//! Input layouts (first byte = mode flags where noted):
//! - [`iso8583`]: the frame body as the dialect's `unpack` receives it.
//! - [`tlv_dol`]: byte 0 selects TLV (even) or DOL (odd); the rest is the data.
//! - [`kernel_card`]: a sequence of R-APDUs, each `len:u8` then `len` bytes, answered to the
//!   kernel's commands in order; when the input runs out the card "leaves the field".
//! - [`reader_link`]: byte 0 picks the error-detection code; the rest is a sequence of BLE
//!   chunks from the reader, each `len:u8` then `len` bytes, fed after the terminal sent one
//!   APDU; between chunks the link's timers fire when the flags byte says so.
//! - [`engine_host_frame`]: byte 0 = flags (bit 0: re-seal the frame with the right MAC, so
//!   mutations get past MAC verification; bit 1: deliver it twice; bit 2: answer every later
//!   request, such as a reversal, correctly), then the frame body.

use smartpos_crypto::keys::{TdesKey, set_odd_parity, wrap_working_key};
use smartpos_emv::kernel::{Kernel, KernelConfig, KernelTxn, TransportError};
use smartpos_reader::{Edc, Frame, LinkConfig, LinkEngine, Reassembler};
use smartpos_iso8583::{Dialect, Message};
use smartpos_txn::engine::{CardVerdict, Event, Outcome, Output, TxnRequest};
use smartpos_txn::journal::Restored;
use smartpos_txn::model::{LocalDateTime, Now, TxnKind};
use smartpos_txn::proto::{self, CardData, Identity, Profile};
use smartpos_txn::{Engine, EngineConfig};
use smartpos_types::Pan;

/// TEST TMK (the simulator's documented test key, `smartpos_sim::acquirer::TEST_TMK_HEX`).
const TMK: [u8; 16] = [
    0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10,
];
/// Fixed working keys for the engine target (made-up test values; parity fixed at use).
const PIK: [u8; 16] = [0x11; 16];
const MAK: [u8; 16] = [
    0x2A, 0x4C, 0x6E, 0x80, 0x13, 0x35, 0x57, 0x79, 0x9B, 0xBD, 0xDF, 0xF1, 0x02, 0x24, 0x46, 0x68,
];
const TDK: [u8; 16] = [0x3E; 16];
/// The sale amount the engine target asks for.
pub const SALE_AMOUNT: u64 = 1234;
const TID: &str = "12345678";
const MID: &str = "123456789012345";

fn key(bytes: &[u8; 16]) -> TdesKey {
    let mut b = *bytes;
    set_odd_parity(&mut b);
    TdesKey::from_double(&b)
}

/// Decodes `data` with `dialect`; a decoded message must pack, and packing what that packs to
/// must give the same bytes again (one round trip reaches a fixpoint). Also exercises the
/// frame decoder, MAC-input extraction and the masked dump.
pub fn iso8583(dialect: &Dialect, data: &[u8]) {
    let _ = smartpos_iso8583::frame::decode(data);
    let _ = dialect.mac_input(data);
    let Ok(msg) = dialect.unpack(data) else {
        return;
    };
    let _ = dialect.dump(&msg);
    let Ok(packed) = dialect.pack(&msg) else {
        return;
    };
    let again = dialect
        .unpack(&packed)
        .unwrap_or_else(|e| panic!("re-decoding a packed message failed: {e}"));
    let packed2 = dialect
        .pack(&again)
        .unwrap_or_else(|e| panic!("re-packing a decoded message failed: {e}"));
    assert_eq!(packed, packed2, "pack/unpack does not reach a fixpoint");
}

/// BER-TLV (even first byte) or DOL (odd first byte) parsing.
pub fn tlv_dol(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    if sel % 2 == 0 {
        let _ = smartpos_emv::parse_one(rest);
        if let Ok(objects) = smartpos_emv::parse(rest) {
            for o in &objects {
                let _ = format!("{o:?} {o}");
                let enc = o.encode();
                let back = smartpos_emv::parse(&enc)
                    .unwrap_or_else(|e| panic!("re-parsing an encoded TLV failed: {e}"));
                assert_eq!(back.len(), 1, "one object re-encodes to one object");
            }
        }
    } else if let Ok(dol) = smartpos_emv::parse_dol(rest) {
        // Fill the DOL from the TLV objects of the same bytes (usually none), as a kernel would.
        let source = smartpos_emv::parse(rest).unwrap_or_default();
        let out = smartpos_emv::build_dol_data(&dol, source.as_slice());
        let want: usize = dol.iter().map(|e| e.len).sum();
        assert_eq!(out.len(), want, "DOL data has the requested length");
    }
}

/// Card responses through the contactless kernel.
pub fn kernel_card(data: &[u8]) {
    let txn = KernelTxn {
        amount: 1_000,
        other_amount: 0,
        currency: 156,
        country: 156,
        txn_type: 0x00,
        date: "261122".into(),
        unpredictable_number: [0x12, 0x34, 0x56, 0x78],
        now_ms: 0,
    };
    let mut k = Kernel::new(KernelConfig::default(), txn);
    let mut rest = data;
    let mut now = 0u64;
    for _ in 0..64 {
        let Some(_command) = k.poll_command() else {
            break;
        };
        now += 5;
        match rest.split_first() {
            None => {
                k.handle_transport_error(now, TransportError::CardRemoved);
            }
            Some((&len, tail)) => {
                let n = usize::from(len).min(tail.len());
                let (rapdu, next) = tail.split_at(n);
                rest = next;
                k.handle_response(now, rapdu);
            }
        }
    }
    if let Some(Ok(outcome)) = k.poll_outcome() {
        let _ = format!("{outcome:?}");
    }
}

/// Reader-link frames: the frame decoder and the reassembler on the raw bytes, then the
/// terminal-side link engine fed the bytes as reader notifications after it sent an APDU.
pub fn reader_link(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let edc = match sel % 3 {
        0 => Edc::Lrc,
        1 => Edc::Crc16X25,
        _ => Edc::Crc16CcittFalse,
    };
    let _ = Frame::check(rest, edc);
    if let Ok((f, used)) = Frame::decode(rest, edc) {
        assert!(used <= rest.len());
        if let Ok(again) = f.encode(edc) {
            let back = Frame::decode(&again, edc)
                .unwrap_or_else(|e| panic!("re-decoding an encoded frame failed: {e}"));
            assert_eq!(back.0, f, "frame round trip");
        }
    }
    let mut r = Reassembler::new(smartpos_reader::NAD_TO_TERMINAL, edc);
    r.push(rest);
    for _ in 0..64 {
        if r.next_frame().is_none() {
            break;
        }
    }
    let Ok(mut link) = LinkEngine::new(LinkConfig {
        edc,
        ..LinkConfig::default()
    }) else {
        return;
    };
    let mut now = 0u64;
    if link
        .send_apdu(now, &[0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00, 0x00])
        .is_err()
    {
        return;
    }
    let mut chunks = rest;
    for step in 0..256u32 {
        while link.poll_transmit().is_some() {}
        while let Some(ev) = link.poll_event() {
            let _ = format!("{ev:?}");
        }
        match chunks.split_first() {
            Some((&len, tail)) => {
                let n = usize::from(len).min(tail.len());
                let (chunk, next) = tail.split_at(n);
                chunks = next;
                now += 1;
                link.handle_chunk(now, chunk);
                if sel & 0x80 != 0
                    && step % 3 == 2
                    && let Some(t) = link.poll_timeout()
                {
                    now = now.max(t);
                    link.handle_timeout(now);
                }
            }
            None => match link.poll_timeout() {
                Some(t) => {
                    now = now.max(t);
                    link.handle_timeout(now);
                }
                None => break,
            },
        }
    }
}

/// The engine configuration of the engine target.
fn engine_config() -> EngineConfig {
    let profile = Profile::by_name("cup").unwrap_or_else(|| panic!("cup profile"));
    EngineConfig::new(
        Identity {
            tid: TID.into(),
            mid: MID.into(),
            currency: smartpos_types::Currency::CNY,
        },
        profile,
    )
}

fn now(mono_ms: u64) -> Now {
    let unix_ms = 1_795_315_266_000i64;
    Now {
        mono_ms,
        unix_ms,
        local: LocalDateTime::from_unix_ms_utc(unix_ms),
    }
}

/// An engine signed in with the fixed keys that has just sent a sale; returns it with the sale
/// request bytes.
pub fn engine_waiting_for_sale() -> (Engine, Vec<u8>) {
    engine_waiting_for_sale_with(false)
}

/// [`engine_waiting_for_sale`] with a card that decides after the host (`card_decides`: a
/// contact chip card, second GENERATE AC).
pub fn engine_waiting_for_sale_with(card_decides: bool) -> (Engine, Vec<u8>) {
    let tmk = key(&TMK);
    let mut block = Vec::with_capacity(60);
    for k in [&PIK, &MAK, &TDK] {
        let (enc, cv) = wrap_working_key(&tmk, &key(k));
        block.extend_from_slice(&enc);
        block.extend_from_slice(&cv);
    }
    let restored = Restored {
        wrapped_keys: Some(block),
        ..Restored::default()
    };
    let module = std::sync::Arc::new(smartpos_crypto::SoftwareModule::new(tmk));
    let mut e = Engine::restore(engine_config(), module, restored);
    e.start_txn(
        now(1_000),
        TxnRequest {
            kind: TxnKind::Sale,
            amount: SALE_AMOUNT,
            card: Some(CardData {
                pan: Pan::new("6222021234567890128").ok(),
                expiry: Some("3012".into()),
                entry_mode: "012".into(),
                card_decides,
                ..CardData::default()
            }),
            original: None,
            original_used: 0,
            idempotency_key: None,
            operator: None,
        },
    );
    for _ in 0..16 {
        match e.poll() {
            Some(Output::Commit(c)) => e.commit_done(c.id),
            Some(Output::Transmit(req)) => return (e, req),
            Some(Output::Event(_) | Output::CompleteCard(_)) => {}
            None => break,
        }
    }
    panic!("the engine did not send the sale");
}

/// Seals `msg` as the host would (MAC under the fixed MAK, except network management).
pub fn seal(msg: &Message) -> Option<Vec<u8>> {
    let profile = engine_config().profile;
    let with_mac = !matches!(msg.mti.0, 800..=899);
    proto::seal(&profile, Some(&key(&MAK)), msg, with_mac).ok()
}

/// A well-formed host answer to `request` with response code `code`.
pub fn answer(request: &[u8], code: &str) -> Option<Vec<u8>> {
    let cup = Dialect::cup();
    let req = cup.unpack(request).ok()?;
    let mut r = Message::new(req.mti.response()?);
    r.header = req.header.clone();
    for f in [3u8, 4, 11, 12, 13, 25, 41, 42, 49, 60, 61] {
        if let Some(v) = req.get(f) {
            r.set(f, v.to_vec());
        }
    }
    r.set_text(37, "000000123456");
    if code == "00" {
        r.set_text(38, "654321");
    }
    r.set_text(39, code);
    seal(&r)
}

/// Feeds a host frame (and what the flags ask for) to an engine waiting for a sale answer,
/// then drives it on virtual time until the command finishes.
pub fn engine_host_frame(data: &[u8]) {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    // Bit 16: the card decides after the host; bit 8: it declines (else it accepts).
    let (mut e, _request) = engine_waiting_for_sale_with(flags & 16 != 0);
    let frame = if flags & 1 != 0 {
        Dialect::cup()
            .unpack(body)
            .ok()
            .and_then(|m| seal(&m))
            .unwrap_or_else(|| body.to_vec())
    } else {
        body.to_vec()
    };
    let mut inbox = vec![frame.clone()];
    if flags & 2 != 0 {
        inbox.push(frame);
    }
    inbox.reverse();
    let mut t = 1_010u64;
    let mut finished = false;
    for _ in 0..128 {
        while let Some(o) = e.poll() {
            match o {
                Output::Commit(c) => e.commit_done(c.id),
                Output::Transmit(req) => {
                    if flags & 4 != 0
                        && let Some(a) = answer(&req, "00")
                    {
                        inbox.insert(0, a);
                    }
                }
                Output::Event(Event::Finished(f)) => {
                    finished = true;
                    if let Ok(Outcome::Txn { record, .. }) = &f.result {
                        assert_eq!(record.kind, TxnKind::Sale);
                        assert_eq!(record.amount, SALE_AMOUNT, "approved another amount");
                    }
                    let _ = format!("{f:?}");
                }
                Output::Event(_) => {}
                Output::CompleteCard(_) => {
                    let verdict = if flags & 8 != 0 {
                        CardVerdict::Declined {
                            script_results: Vec::new(),
                        }
                    } else {
                        CardVerdict::Accepted {
                            icc: vec![0x9F, 0x27, 0x01, 0x40],
                            script_results: Vec::new(),
                        }
                    };
                    e.handle_card_decision(now(t), verdict);
                }
            }
        }
        if finished && inbox.is_empty() {
            break;
        }
        if let Some(f) = inbox.pop() {
            t += 3;
            e.handle_host_frame(now(t), &f);
        } else if let Some(deadline) = e.poll_timeout() {
            t = t.max(deadline);
            e.handle_timeout(now(t));
        } else {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    //! The targets as ordinary tests: every seed corpus file, then seeded random mutations
    //! of them (bit flips, truncations, byte insertions), through every target.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use std::path::{Path, PathBuf};

    fn corpus_dir(target: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .join(target)
    }

    fn corpus(target: &str) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(corpus_dir(target)) {
            for e in rd.flatten() {
                if let Ok(b) = std::fs::read(e.path()) {
                    out.push(b);
                }
            }
        }
        out
    }

    /// SplitMix64 (Steele, Lea, Flood, OOPSLA 2014).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..1 + rng.below(4) {
            match rng.below(4) {
                0 if !v.is_empty() => {
                    let i = rng.below(v.len());
                    v[i] ^= 1 << rng.below(8);
                }
                1 if !v.is_empty() => {
                    let i = rng.below(v.len());
                    v[i] = rng.next() as u8;
                }
                2 => v.truncate(rng.below(v.len() + 1)),
                _ => {
                    let i = rng.below(v.len() + 1);
                    v.insert(i, rng.next() as u8);
                }
            }
        }
        v
    }

    fn run(target: &str, f: impl Fn(&[u8]), n: usize) -> usize {
        let seeds = corpus(target);
        assert!(!seeds.is_empty(), "no seed corpus for {target}");
        let mut rng = Rng(0xF022_5EED);
        for s in &seeds {
            f(s);
        }
        for _ in 0..n {
            let s = &seeds[rng.below(seeds.len())];
            f(&mutate(&mut rng, s));
        }
        seeds.len() + n
    }

    #[test]
    fn iso8583_targets_survive_corpus_and_mutations() {
        run("iso8583_cup", |d| iso8583(Dialect::cup(), d), 20_000);
        run("iso8583_iso87b", |d| iso8583(Dialect::iso87b(), d), 20_000);
        run("iso8583_iso87a", |d| iso8583(Dialect::iso87a(), d), 20_000);
    }

    #[test]
    fn tlv_dol_target_survives_corpus_and_mutations() {
        run("tlv_dol", tlv_dol, 50_000);
    }

    #[test]
    fn kernel_target_survives_corpus_and_mutations() {
        run("kernel_card", kernel_card, 10_000);
    }

    #[test]
    fn reader_target_survives_corpus_and_mutations() {
        run("reader_link", reader_link, 10_000);
    }

    #[test]
    fn engine_target_survives_corpus_and_mutations() {
        run("engine_host_frame", engine_host_frame, 3_000);
    }

    #[test]
    fn engine_target_reaches_an_approval() {
        // The harness is not vacuous: a correct answer approves the sale.
        let (mut e, req) = engine_waiting_for_sale();
        let a = answer(&req, "00").unwrap();
        e.handle_host_frame(now(1_010), &a);
        let mut approved = false;
        while let Some(o) = e.poll() {
            match o {
                Output::Commit(c) => e.commit_done(c.id),
                Output::Event(Event::Finished(f)) => {
                    approved = matches!(f.result, Ok(Outcome::Txn { ref record, .. })
                        if record.state == smartpos_txn::model::TxnState::Approved);
                }
                _ => {}
            }
        }
        assert!(approved);
    }

    fn hex_file(name: &str) -> Vec<u8> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../pure/emv/testdata")
            .join(name);
        let text = std::fs::read_to_string(p).unwrap();
        smartpos_types::hex::decode(text.trim()).unwrap()
    }

    /// Writes the seed corpora (run once: `cargo test -- --ignored write_seed_corpus`).
    #[test]
    #[ignore = "writes fuzz/corpus; run by hand when the seeds change"]
    fn write_seed_corpus() {
        let write = |target: &str, name: &str, bytes: &[u8]| {
            let d = corpus_dir(target);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(name), bytes).unwrap();
        };
        use smartpos_iso8583::reference;
        let cup = Dialect::cup();
        let b87 = Dialect::iso87b();
        let a87 = Dialect::iso87a();
        write(
            "iso8583_cup",
            "sale",
            &cup.pack(&reference::cup_sale()).unwrap(),
        );
        write(
            "iso8583_iso87b",
            "sale",
            &b87.pack(&reference::cup_sale()).unwrap(),
        );
        write(
            "iso8583_iso87a",
            "sale",
            &a87.pack(&reference::iso87a_sale()).unwrap(),
        );
        let (_, req) = engine_waiting_for_sale();
        write("iso8583_cup", "engine_sale", &req);
        let approval = answer(&req, "00").unwrap();
        write("iso8583_cup", "approval", &approval);
        let m = cup.unpack(&approval).unwrap();
        let mut m87 = m.clone();
        m87.header.clear();
        if let Ok(b) = b87.pack(&m87) {
            write("iso8583_iso87b", "approval", &b);
        }
        if let Ok(b) = a87.pack(&m87) {
            write("iso8583_iso87a", "approval", &b);
        }
        let with = |flags: u8, frame: &[u8], name: &str| {
            let mut v = vec![flags];
            v.extend_from_slice(frame);
            write("engine_host_frame", name, &v);
        };
        with(0, &approval, "approval");
        with(1, &approval, "approval_resealed");
        with(3, &approval, "approval_twice");
        with(5, &answer(&req, "51").unwrap(), "declined_then_answers");
        with(4, &answer(&req, "96").unwrap(), "malfunction");
        with(4, &approval[..approval.len() / 2], "truncated_then_answers");
        // TLV: the card responses; DOL: the PDOL.
        for (name, file) in [
            ("ppse", "ppse_fci.hex"),
            ("gpo2", "qvsdc_gpo_format2.hex"),
            ("record", "mchip_read_record.hex"),
        ] {
            let mut v = vec![0u8];
            v.extend(hex_file(file));
            write("tlv_dol", name, &v);
        }
        let mut v = vec![1u8];
        v.extend(hex_file("visa_pdol.hex"));
        write("tlv_dol", "pdol", &v);
        // Kernel: PPSE, then an FCI for the Visa AID with the PDOL, then the GPO response.
        let ok = |mut b: Vec<u8>| {
            b.extend_from_slice(&[0x90, 0x00]);
            b
        };
        let pdol = hex_file("visa_pdol.hex");
        let mut a5 = vec![0x50, 0x04, b'V', b'I', b'S', b'A', 0x9F, 0x38];
        a5.push(u8::try_from(pdol.len()).unwrap());
        a5.extend(&pdol);
        let mut fci = vec![0x84, 0x07, 0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10, 0xA5];
        fci.push(u8::try_from(a5.len()).unwrap());
        fci.extend(a5);
        let mut select = vec![0x6F, u8::try_from(fci.len()).unwrap()];
        select.extend(fci);
        let mut seq = Vec::new();
        for r in [
            ok(hex_file("ppse_fci.hex")),
            ok(select),
            ok(hex_file("qvsdc_gpo_format2.hex")),
            ok(hex_file("mchip_read_record.hex")),
        ] {
            seq.push(u8::try_from(r.len()).unwrap());
            seq.extend(r);
        }
        write("kernel_card", "visa_qvsdc", &seq);
        write("kernel_card", "ppse_only", &seq[..1 + usize::from(seq[0])]);
        // Reader link: an I-block from the reader carrying a response, in LRC and CRC forms,
        // then as chunks after a short garbage prefix.
        for (sel, edc, name) in [
            (0u8, Edc::Lrc, "iblock_lrc"),
            (1, Edc::Crc16X25, "iblock_crc"),
            (0x80, Edc::Lrc, "iblock_lrc_timers"),
        ] {
            let r = ok(hex_file("ppse_fci.hex"));
            let inf: Vec<u8> = r.iter().copied().take(50).collect();
            let frame = Frame {
                nad: smartpos_reader::NAD_TO_TERMINAL,
                pcb: 0x00,
                inf,
            };
            let Ok(bytes) = frame.encode(edc) else {
                continue;
            };
            let mut v = vec![sel, 3, 0xFF, 0x00, 0x12];
            for c in bytes.chunks(20) {
                v.push(u8::try_from(c.len()).unwrap());
                v.extend_from_slice(c);
            }
            write("reader_link", name, &v);
        }
    }
}
