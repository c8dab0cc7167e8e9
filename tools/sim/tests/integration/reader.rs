//! The terminal's `LinkEngine` against `SimReader` through `LossyChannel`s: APDU exchanges
//! under chunk loss, duplication and corruption (each 10 %, separately and combined), reader
//! commands, WTX with a slow card, cancel, and a real simulated card through the link.
//!
//! Seeds: each run prints its seed; set `SMARTPOS_READER_SEED` to replay one.

use std::cell::RefCell;
use std::rc::Rc;

use smartpos_reader::{CommandClass, Edc, LinkConfig, LinkEngine, LinkError, ReaderEvent};
use smartpos_sim::card::{CardProfile, SimCard};
use smartpos_sim::reader::{
    CardSlot, ChannelFaults, FnCard, LossyChannel, SimLink, SimReader, SimReaderConfig,
};

/// A card that answers every APDU with something new (a counter, the command's length and a
/// body of varying size) and records what it returned.
#[derive(Clone, Default)]
struct RecordingCard {
    returned: Rc<RefCell<Vec<Vec<u8>>>>,
}

impl CardSlot for RecordingCard {
    fn transceive(&mut self, capdu: &[u8]) -> Option<Vec<u8>> {
        let mut log = self.returned.borrow_mut();
        let n = log.len();
        let body_len = (n * 37) % 257;
        let mut r: Vec<u8> = (0..body_len).map(|i| (i + n) as u8).collect();
        r.truncate(256);
        r.extend_from_slice(&(n as u16).to_be_bytes());
        r.push(capdu.len() as u8);
        r.extend_from_slice(&[0x90, 0x00]);
        log.push(r.clone());
        Some(r)
    }
}

fn seed(default: u64) -> u64 {
    std::env::var("SMARTPOS_READER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn make_link<C: CardSlot>(
    card: C,
    faults: ChannelFaults,
    seed: u64,
    edc: Edc,
    card_delay_ms: u64,
) -> SimLink<C> {
    let engine = LinkEngine::new(LinkConfig {
        edc,
        first_command_id: (seed % 251) as u8,
        ..LinkConfig::default()
    })
    .unwrap();
    let reader = SimReader::new(
        SimReaderConfig {
            edc,
            card_delay_ms,
            ..SimReaderConfig::default()
        },
        card,
    );
    SimLink::new(
        engine,
        reader,
        LossyChannel::new(seed, faults, 5),
        LossyChannel::new(seed ^ 0x005E_ED0F_F00D, faults, 5),
    )
}

fn activate<C: CardSlot>(link: &mut SimLink<C>) {
    // The poll itself crosses the lossy link too; it must get through.
    link.engine.poll_card(link.now).unwrap();
    match link.run_until_event(120_000) {
        Some(ReaderEvent::CardPresent(_)) => {}
        other => panic!("poll failed: {other:?}"),
    }
}

/// Runs `exchanges` APDUs of varying length and checks each response against the card's.
fn exchanges(name: &str, faults: ChannelFaults, default_seed: u64, edc: Edc, exchanges: usize) {
    let seed = seed(default_seed);
    println!("reader link scenario {name}: seed {seed} (SMARTPOS_READER_SEED={seed} to replay)");
    let card = RecordingCard::default();
    let returned = card.returned.clone();
    let mut link = make_link(card, faults, seed, edc, 0);
    activate(&mut link);
    for k in 0..exchanges {
        // Lengths from a short READ RECORD up to 300 bytes (chained over IFSC 32).
        let len = 5 + (k * 53) % 296;
        let capdu: Vec<u8> = (0..len).map(|i| (i * 7 + k) as u8).collect();
        let event = link.transceive(&capdu, 120_000);
        let expected = returned.borrow().last().cloned();
        match (event, expected) {
            (Some(ReaderEvent::ApduResponse(got)), Some(want)) => {
                assert_eq!(
                    got, want,
                    "{name} seed {seed}: exchange {k} response differs"
                );
            }
            (other, _) => panic!("{name} seed {seed}: exchange {k} ended with {other:?}"),
        }
        // Exactly once: the card ran each command one time, RESYNCH replays included.
        assert_eq!(
            returned.borrow().len(),
            k + 1,
            "{name} seed {seed}: exchange {k} executed twice or not at all"
        );
    }
    let stats = link.engine.stats();
    println!(
        "  {name}: to reader {:?}\n  to terminal {:?}\n  engine {:?}\n  reader {:?}",
        link.to_reader.stats(),
        link.to_terminal.stats(),
        stats,
        link.reader.log()
    );
    if faults != ChannelFaults::default() {
        // Loss and damage cost retransmissions; duplicates are dropped as stale by tag.
        assert!(
            stats.retransmissions + stats.stale_blocks + link.reader.log().duplicates_ignored > 0,
            "{name}: faults injected but never recovered from"
        );
    }
}

const TEN: f64 = 0.10;

#[test]
fn two_hundred_exchanges_without_faults() {
    exchanges("clean", ChannelFaults::default(), 1, Edc::Lrc, 200);
}

#[test]
fn two_hundred_exchanges_with_ten_percent_chunk_loss() {
    let faults = ChannelFaults {
        drop: TEN,
        ..ChannelFaults::default()
    };
    exchanges("loss", faults, 0x1055, Edc::Crc16X25, 200);
}

#[test]

fn two_hundred_exchanges_with_ten_percent_duplication() {
    let faults = ChannelFaults {
        duplicate: TEN,
        ..ChannelFaults::default()
    };
    exchanges("duplication", faults, 0xD0B1E, Edc::Crc16X25, 200);
}

#[test]
fn two_hundred_exchanges_with_ten_percent_corruption() {
    let faults = ChannelFaults {
        corrupt: TEN,
        ..ChannelFaults::default()
    };
    exchanges("corruption", faults, 0xC0221, Edc::Crc16X25, 200);
}

#[test]

fn two_hundred_exchanges_with_loss_duplication_and_corruption_combined() {
    let faults = ChannelFaults {
        drop: TEN,
        duplicate: TEN,
        corrupt: TEN,
        ..ChannelFaults::default()
    };
    exchanges("combined", faults, 0xA11, Edc::Crc16X25, 200);
}

#[test]

fn combined_faults_with_delays() {
    let faults = ChannelFaults {
        drop: TEN,
        duplicate: TEN,
        corrupt: TEN,
        delay: TEN,
        delay_ms: 300,
    };
    exchanges("combined+delay", faults, 0xDE1A7, Edc::Crc16CcittFalse, 200);
}

/// With an LRC, spliced frames get through the frame check now and then; the message CRC
/// must stop every one of them: a command may fail, but never with a wrong response.
#[test]
fn lrc_under_duplication_never_delivers_a_wrong_response() {
    let faults = ChannelFaults {
        duplicate: TEN,
        drop: TEN,
        ..ChannelFaults::default()
    };
    let s = seed(0x1AC);
    println!("lrc duplication: seed {s}");
    let card = RecordingCard::default();
    let returned = card.returned.clone();
    let mut link = make_link(card, faults, s, Edc::Lrc, 0);
    activate(&mut link);
    let (mut ok, mut failed) = (0, 0);
    for k in 0..200usize {
        let len = 5 + (k * 53) % 296;
        let capdu: Vec<u8> = (0..len).map(|i| (i * 7 + k) as u8).collect();
        match link.transceive(&capdu, 120_000) {
            Some(ReaderEvent::ApduResponse(got)) => {
                assert_eq!(Some(got), returned.borrow().last().cloned(), "exchange {k}");
                ok += 1;
            }
            Some(ReaderEvent::Error(LinkError::TooManyRetries | LinkError::Timeout)) => failed += 1,
            other => panic!("exchange {k}: {other:?}"),
        }
    }
    println!(
        "  lrc: {ok} correct, {failed} failed, {:?}",
        link.engine.stats()
    );
    assert!(ok > 150, "{ok} correct of 200");
}

#[test]
fn reader_commands_over_a_lossy_link() {
    let faults = ChannelFaults {
        drop: TEN,
        duplicate: TEN,
        corrupt: TEN,
        ..ChannelFaults::default()
    };
    let s = seed(42);
    println!("reader commands: seed {s}");
    let mut link = make_link(RecordingCard::default(), faults, s, Edc::Crc16X25, 0);
    let now = link.now;
    link.engine.firmware_version(now).unwrap();
    link.engine.battery_level(now).unwrap();
    link.engine.display_text(now, "Présentez la carte").unwrap();
    link.engine.beep(now, 250).unwrap();
    let mut events = Vec::new();
    while events.len() < 4 {
        events.push(link.run_until_event(240_000).expect("event"));
    }
    assert_eq!(
        events,
        vec![
            ReaderEvent::FirmwareVersion("SIM-RDR 1.4.2".into()),
            ReaderEvent::Battery(87),
            ReaderEvent::Done(CommandClass::DISPLAY_TEXT),
            ReaderEvent::Done(CommandClass::BEEP),
        ]
    );
    assert_eq!(link.reader.log().display, "Présentez la carte");
    assert_eq!(link.reader.log().beeps, vec![250]);
    // Cancel with nothing in flight: reader command 0x24.
    link.engine.cancel(link.now);
    assert_eq!(
        link.run_until_event(120_000),
        Some(ReaderEvent::Done(CommandClass::CANCEL))
    );
    assert_eq!(link.reader.log().cancels, 1);
    assert_eq!(link.reader.log().display, "");
    // Too long for the display: refused before anything is sent.
    assert_eq!(
        link.engine.display_text(link.now, &"x".repeat(33)),
        Err(LinkError::InvalidCommand {
            what: "display text longer than 32 characters"
        })
    );
}

#[test]
fn slow_card_gets_wtx_and_completes() {
    let card = RecordingCard::default();
    let returned = card.returned.clone();
    let mut link = make_link(card, ChannelFaults::default(), 9, Edc::Lrc, 3_500);
    activate(&mut link);
    let start = link.now;
    let event = link.transceive(&[0x80, 0xAE, 0x80, 0x00, 0x00], 60_000);
    assert_eq!(
        event,
        Some(ReaderEvent::ApduResponse(
            returned.borrow().last().cloned().unwrap()
        ))
    );
    assert!(link.now - start >= 3_500, "the card's delay was simulated");
    assert!(link.engine.stats().wtx >= 1);
    assert_eq!(
        link.engine.stats().timeouts,
        0,
        "WTX kept the terminal waiting"
    );
}

#[test]

fn slow_card_over_a_lossy_link() {
    let faults = ChannelFaults {
        drop: TEN,
        duplicate: TEN,
        corrupt: TEN,
        ..ChannelFaults::default()
    };
    let s = seed(77);
    println!("slow card lossy: seed {s}");
    let card = RecordingCard::default();
    let returned = card.returned.clone();
    let mut link = make_link(card, faults, s, Edc::Crc16X25, 2_500);
    activate(&mut link);
    for k in 0..20 {
        let event = link.transceive(&[0x00, 0xB2, k, 0x0C, 0x00], 240_000);
        let want = returned.borrow().last().cloned().unwrap();
        assert_eq!(event, Some(ReaderEvent::ApduResponse(want)), "exchange {k}");
        assert_eq!(returned.borrow().len(), usize::from(k) + 1);
    }
}

#[test]
fn cancel_aborts_a_slow_command_and_the_link_recovers() {
    let card = RecordingCard::default();
    let returned = card.returned.clone();
    let mut link = make_link(card, ChannelFaults::default(), 5, Edc::Lrc, 10_000);
    activate(&mut link);
    link.engine
        .send_apdu(link.now, &[0x80, 0xAE, 0x80, 0x00, 0x00])
        .unwrap();
    link.engine.beep(link.now, 100).unwrap();
    // Let the command reach the reader, then cancel while the card works.
    assert_eq!(link.run_until_event(50), None);
    link.engine.cancel(link.now);
    assert_eq!(
        link.run_until_event(60_000),
        Some(ReaderEvent::Error(LinkError::Aborted))
    );
    assert_eq!(
        link.run_until_event(60_000),
        Some(ReaderEvent::Error(LinkError::Aborted)),
        "the queued beep is cancelled too"
    );
    assert_eq!(link.reader.log().aborts, 1);
    assert!(link.reader.log().beeps.is_empty());
    // The link works again (after a RESYNCH).
    link.engine.battery_level(link.now).unwrap();
    assert_eq!(link.run_until_event(60_000), Some(ReaderEvent::Battery(87)));
    assert_eq!(link.reader.log().resynchs, 1);
    assert_eq!(returned.borrow().len(), 1);
}

#[test]
fn pulled_card_reports_card_removed() {
    let mut calls = 0;
    let card = FnCard(move |_: &[u8]| {
        calls += 1;
        (calls <= 2).then(|| vec![0x90, 0x00])
    });
    let mut link = make_link(card, ChannelFaults::default(), 3, Edc::Lrc, 0);
    activate(&mut link);
    for _ in 0..2 {
        assert_eq!(
            link.transceive(&[0, 0xB2, 1, 0x0C, 0], 10_000),
            Some(ReaderEvent::ApduResponse(vec![0x90, 0x00]))
        );
    }
    assert_eq!(
        link.transceive(&[0, 0xB2, 1, 0x0C, 0], 10_000),
        Some(ReaderEvent::CardRemoved)
    );
    // Deactivated by the failure: further APDUs report the card gone as well.
    assert_eq!(
        link.transceive(&[0, 0xB2, 1, 0x0C, 0], 10_000),
        Some(ReaderEvent::CardRemoved)
    );
}

#[test]
fn silent_reader_times_out() {
    let faults = ChannelFaults {
        drop: 1.0,
        ..ChannelFaults::default()
    };
    let mut link = make_link(RecordingCard::default(), faults, 1, Edc::Lrc, 0);
    link.engine.firmware_version(0).unwrap();
    assert_eq!(
        link.run_until_event(600_000),
        Some(ReaderEvent::Error(LinkError::Timeout))
    );
    let stats = link.engine.stats();
    assert_eq!((stats.retransmissions, stats.resynchs), (10, 6));
}

#[test]
fn simulated_visa_card_answers_select_ppse_through_the_reader() {
    let card = SimCard::new(CardProfile::Visa).unwrap();
    let faults = ChannelFaults {
        drop: TEN,
        corrupt: TEN,
        ..ChannelFaults::default()
    };
    let mut link = make_link(card, faults, seed(11), Edc::Crc16X25, 0);
    activate(&mut link);
    let mut select_ppse = vec![0x00, 0xA4, 0x04, 0x00, 0x0E];
    select_ppse.extend_from_slice(b"2PAY.SYS.DDF01");
    select_ppse.push(0x00);
    let direct = SimCard::new(CardProfile::Visa)
        .unwrap()
        .transceive(&select_ppse)
        .unwrap();
    match link.transceive(&select_ppse, 120_000) {
        Some(ReaderEvent::ApduResponse(r)) => {
            assert_eq!(r, direct, "same FCI through the link as directly");
            assert_eq!(r[r.len() - 2..], [0x90, 0x00]);
        }
        other => panic!("{other:?}"),
    }
}
