//! SDK time of one APDU exchange over the mPOS reader link: a 250-byte C-APDU chained over
//! IFSC 32 in 20-byte BLE chunks, executed by an echo card in the simulated reader, and the
//! R-APDU (250 bytes + SW) chained back, all in memory with zero latency and no faults. What
//! is measured is both ends' framing, CRCs, chaining, tag checks and reassembly (the
//! terminal's `LinkEngine` and the reader simulator, which does the same work as reader
//! firmware); the Bluetooth air time of a real reader (tens of milliseconds per round trip)
//! comes on top. A 5-byte READ RECORD is measured alongside.
//!
//! `smartpos-sim` is a dev-dependency of this crate for this bench only (cargo allows that
//! cycle for benches: the bench and the simulator link the same `smartpos-emv`).
//!
//! Run: `cargo bench -p smartpos-emv --bench reader`. Measured on the 2-core development VM
//! (release): 250 bytes each way ≈ 24.6 µs (9 + 9 chained blocks, 37 chunks); a 5-byte READ
//! RECORD ≈ 1.5 µs.

use criterion::{Criterion, black_box, criterion_main};
use smartpos_reader::{LinkConfig, LinkEngine, ReaderEvent};
use smartpos_sim::reader::{CardSlot, FnCard, LossyChannel, SimLink, SimReader, SimReaderConfig};

fn echo_card() -> FnCard<impl FnMut(&[u8]) -> Option<Vec<u8>>> {
    FnCard(|capdu: &[u8]| {
        let mut r = capdu.to_vec();
        r.extend_from_slice(&[0x90, 0x00]);
        Some(r)
    })
}

fn activated_link() -> Option<SimLink<impl CardSlot>> {
    let engine = LinkEngine::new(LinkConfig::default()).ok()?;
    let reader = SimReader::new(SimReaderConfig::default(), echo_card());
    let mut link = SimLink::new(
        engine,
        reader,
        LossyChannel::perfect(0),
        LossyChannel::perfect(0),
    );
    link.engine.poll_card(link.now).ok()?;
    match link.run_until_event(10_000) {
        Some(ReaderEvent::CardPresent(_)) => Some(link),
        _ => None,
    }
}

fn exchange(c: &mut Criterion, name: &str, capdu: Vec<u8>) {
    let Some(mut link) = activated_link() else {
        eprintln!("{name}: the link did not come up; skipped");
        return;
    };
    // One checked exchange first: the timed ones must be real round trips.
    match link.transceive(&capdu, 10_000) {
        Some(ReaderEvent::ApduResponse(r)) if r.len() == capdu.len() + 2 => {}
        other => {
            eprintln!("{name}: exchange failed ({other:?}); skipped");
            return;
        }
    }
    c.bench_function(name, |b| {
        b.iter(|| match link.transceive(black_box(&capdu), 10_000) {
            Some(ReaderEvent::ApduResponse(r)) if r.len() == capdu.len() + 2 => r.len(),
            _ => 0,
        })
    });
}

fn benches() {
    let mut c = Criterion::default().configure_from_args();
    let long: Vec<u8> = (0..250u32).map(|n| n as u8).collect();
    exchange(&mut c, "reader_link_apdu_250_bytes_each_way", long);
    exchange(
        &mut c,
        "reader_link_read_record_5_bytes",
        vec![0x00, 0xB2, 0x01, 0x0C, 0x00],
    );
    c.final_summary();
}

criterion_main!(benches);
