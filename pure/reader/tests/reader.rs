//! Property tests of the reader link: frames round-trip, reassembly is independent of chunk
//! boundaries, garbage never panics, and a hostile reader cannot make the engine lose or
//! duplicate a command's event.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use smartpos_reader::{
    Block, Chunker, Edc, Frame, LinkConfig, LinkEngine, NAD_TO_TERMINAL, ReaderEvent, Reassembled,
    Reassembler,
};

fn edc() -> impl Strategy<Value = Edc> {
    prop_oneof![
        Just(Edc::Lrc),
        Just(Edc::Crc16X25),
        Just(Edc::Crc16CcittFalse)
    ]
}

/// PCBs of every block kind, valid or not.
fn pcb() -> impl Strategy<Value = u8> {
    prop_oneof![
        prop_oneof![Just(0x00u8), Just(0x20), Just(0x40), Just(0x60)],
        prop_oneof![
            Just(0x80u8),
            Just(0x81),
            Just(0x82),
            Just(0x90),
            Just(0x91),
            Just(0x92)
        ],
        (0xC0u8..=0xC3),
        (0xE0u8..=0xE3),
        any::<u8>(),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    (pcb(), proptest::collection::vec(any::<u8>(), 0..=254)).prop_map(|(pcb, inf)| Frame {
        nad: NAD_TO_TERMINAL,
        pcb,
        inf,
    })
}

fn drain(r: &mut Reassembler) -> Vec<Reassembled> {
    std::iter::from_fn(|| r.next_frame()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn frames_round_trip(frame in frame(), edc in edc()) {
        let bytes = frame.encode(edc).unwrap();
        prop_assert_eq!(Frame::decode(&bytes, edc).unwrap(), (frame, bytes.len()));
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), edc in edc()) {
        if let Ok((frame, used)) = Frame::decode(&bytes, edc) {
            prop_assert!(used <= bytes.len());
            let _ = Block::from_frame(&frame);
        }
    }

    #[test]
    fn reassembly_does_not_depend_on_chunk_boundaries(
        blocks in proptest::collection::vec(frame(), 1..6),
        cuts in proptest::collection::vec(1usize..64, 1..40),
        edc in edc(),
    ) {
        // Only frames the reassembler can recognise (valid PCB, plausible length).
        let frames: Vec<Frame> = blocks
            .into_iter()
            .filter(|f| Block::from_frame(f).is_ok())
            .collect();
        let stream: Vec<u8> = frames.iter().flat_map(|f| f.encode(edc).unwrap()).collect();
        let mut r = Reassembler::new(NAD_TO_TERMINAL, edc);
        let mut got = Vec::new();
        let mut rest = stream.as_slice();
        let mut sizes = cuts.iter().cycle();
        while !rest.is_empty() {
            let n = (*sizes.next().unwrap()).min(rest.len());
            r.push(&rest[..n]);
            rest = &rest[n..];
            got.extend(drain(&mut r));
        }
        let expected: Vec<Reassembled> = frames.into_iter().map(Reassembled::Frame).collect();
        prop_assert_eq!(got, expected);
        prop_assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn reassembler_survives_garbage(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..30),
        edc in edc(),
    ) {
        let mut r = Reassembler::new(NAD_TO_TERMINAL, edc);
        for chunk in &chunks {
            r.push(chunk);
            for found in drain(&mut r) {
                if let Reassembled::Frame(f) = found {
                    // Anything handed out has our NAD and a good EDC.
                    prop_assert_eq!(f.nad, NAD_TO_TERMINAL);
                    prop_assert!(f.encode(edc).is_ok());
                }
            }
        }
    }

    #[test]
    fn hostile_reader_never_loses_or_doubles_an_event(
        input in proptest::collection::vec(
            prop_oneof![
                frame().prop_map(Some),
                Just(None), // a timeout
                proptest::collection::vec(any::<u8>(), 0..40).prop_map(|g| Some(Frame { nad: 0, pcb: 0xFF, inf: g })),
            ],
            0..60,
        ),
        edc in edc(),
        mtu in 23u16..64,
    ) {
        let mut engine = LinkEngine::new(LinkConfig {
            edc,
            att_mtu: Some(mtu),
            command_timeout_ms: 20_000,
            ..LinkConfig::default()
        })
        .unwrap();
        engine.send_apdu(0, &[0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00]).unwrap();
        engine.firmware_version(0).unwrap();
        engine.send_apdu(0, &vec![0x5A; 280]).unwrap();
        let mut now = 0u64;
        let mut events = Vec::new();
        for item in &input {
            now += 7;
            match item {
                Some(frame) if frame.pcb == 0xFF && frame.nad == 0 => {
                    // Raw garbage bytes, cut like notifications.
                    for chunk in Chunker::for_att_mtu(mtu).split(&frame.inf) {
                        engine.handle_chunk(now, &chunk);
                    }
                }
                Some(frame) => {
                    let bytes = frame.encode(edc).unwrap();
                    for chunk in Chunker::for_att_mtu(mtu).split(&bytes) {
                        engine.handle_chunk(now, &chunk);
                    }
                }
                None => {
                    if let Some(t) = engine.poll_timeout() {
                        now = now.max(t);
                        engine.handle_timeout(now);
                    }
                }
            }
            while engine.poll_transmit().is_some() {}
            events.extend(std::iter::from_fn(|| engine.poll_event()));
        }
        // The reader goes quiet: timers must finish every command.
        let mut guard = 0;
        while let Some(t) = engine.poll_timeout() {
            now = now.max(t);
            engine.handle_timeout(now);
            while engine.poll_transmit().is_some() {}
            events.extend(std::iter::from_fn(|| engine.poll_event()));
            guard += 1;
            prop_assert!(guard < 1_000, "engine never settles");
        }
        prop_assert!(engine.is_idle());
        prop_assert_eq!(events.len(), 3, "{:?}", events);
        // Forged answers cannot cross commands: class and ID are checked.
        let apdu_like = |e: &ReaderEvent| matches!(
            e,
            ReaderEvent::ApduResponse(_) | ReaderEvent::CardRemoved | ReaderEvent::Error(_)
        );
        prop_assert!(apdu_like(&events[0]), "{:?}", events[0]);
        prop_assert!(
            matches!(events[1], ReaderEvent::FirmwareVersion(_) | ReaderEvent::Error(_)),
            "{:?}", events[1]
        );
        prop_assert!(apdu_like(&events[2]), "{:?}", events[2]);
    }
}
