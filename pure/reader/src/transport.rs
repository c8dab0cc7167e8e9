//! Below the blocks: moving frames over BLE GATT (writes one way, notifications the other) or
//! a byte stream (Bluetooth SPP).
//!
//! - [`Chunker`] cuts an outgoing frame into pieces that fit one ATT write/notification:
//!   ATT MTU − 3 bytes (the ATT opcode and attribute handle take 3 bytes, Bluetooth Core
//!   Spec Vol 3 Part F §3.4.5.3 / §3.4.7.1). The default ATT MTU of 23 gives 20-byte chunks;
//!   phones typically negotiate up to 247 (244-byte chunks).
//! - [`Reassembler`] rebuilds frames from chunks cut anywhere (a byte stream has no chunk
//!   boundaries worth trusting). It finds frame starts from NAD, PCB and LEN and checks the
//!   EDC; when bytes are duplicated or damaged it drops one byte at a time and scans for the
//!   next plausible start, counting what it skipped. A frame whose tail was lost waits until
//!   its owner clears it (character waiting time, ISO/IEC 7816-3 §11.4.3, or block waiting
//!   time). It never panics and its buffer is bounded.

use super::block::Block;
use super::frame::{Edc, Frame, FrameError, MAX_INF, PROLOGUE_LEN};

/// Smallest ATT MTU allowed by Bluetooth LE (Core Spec Vol 3 Part F §3.2.8).
pub const MIN_ATT_MTU: u16 = 23;

/// Bytes of ATT header in a write or notification (opcode 1 + handle 2).
pub const ATT_HEADER_LEN: usize = 3;

/// Splits frames into chunks of at most `chunk_len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunker {
    chunk_len: usize,
}

impl Chunker {
    /// A chunker for BLE with the negotiated ATT MTU; an MTU below 23 is treated as 23.
    pub fn for_att_mtu(att_mtu: u16) -> Chunker {
        let mtu = usize::from(att_mtu.max(MIN_ATT_MTU));
        Chunker {
            chunk_len: mtu - ATT_HEADER_LEN,
        }
    }

    /// A chunker that hands out whole frames (a byte stream such as SPP: the stream carries
    /// any length).
    pub fn for_stream() -> Chunker {
        Chunker {
            chunk_len: usize::MAX,
        }
    }

    /// Largest chunk this chunker produces.
    pub fn chunk_len(&self) -> usize {
        self.chunk_len
    }

    /// Cuts `frame` into chunks, in order. An empty frame gives no chunk.
    pub fn split(&self, frame: &[u8]) -> Vec<Vec<u8>> {
        frame
            .chunks(self.chunk_len.max(1))
            .map(<[u8]>::to_vec)
            .collect()
    }
}

/// What the reassembler found in the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reassembled {
    /// A frame with a correct EDC, addressed to us.
    Frame(Frame),
    /// Bytes were thrown away because they did not form a valid frame (lost, duplicated or
    /// damaged chunks). The protocol above treats this as "an invalid block was received".
    Garbage {
        /// How many bytes were dropped.
        skipped: usize,
        /// True when a complete candidate frame failed its EDC check (a damaged frame rather
        /// than stray bytes).
        edc_error: bool,
    },
}

/// Largest number of bytes the reassembler keeps (a few frames): anything older is garbage.
const MAX_BUFFERED: usize = 4 * (PROLOGUE_LEN + MAX_INF + 2);

/// Rebuilds frames from chunks. Call [`Reassembler::push`] for each received chunk, then
/// [`Reassembler::next_frame`] until it returns `None`.
#[derive(Clone)]
pub struct Reassembler {
    nad: u8,
    edc: Edc,
    buf: Vec<u8>,
    skipped: usize,
    edc_error: bool,
    total_skipped: u64,
}

impl std::fmt::Debug for Reassembler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reassembler")
            .field("nad", &format_args!("{:02X}", self.nad))
            .field("edc", &self.edc)
            .field("buffered", &self.buf.len())
            .field("total_skipped", &self.total_skipped)
            .finish()
    }
}

impl Reassembler {
    /// A reassembler accepting frames addressed with `nad` and protected with `edc`.
    pub fn new(nad: u8, edc: Edc) -> Reassembler {
        Reassembler {
            nad,
            edc,
            buf: Vec::new(),
            skipped: 0,
            edc_error: false,
            total_skipped: 0,
        }
    }

    /// Appends a received chunk. If more than a few frames' worth of bytes pile up without a
    /// call to [`Reassembler::next_frame`], the oldest are dropped (and reported as garbage).
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
        if self.buf.len() > MAX_BUFFERED {
            let excess = self.buf.len() - MAX_BUFFERED;
            self.drop_front(excess);
        }
    }

    /// Drops everything buffered (after a timeout the partial frame is stale: the peer will
    /// send a fresh frame).
    pub fn clear(&mut self) {
        let n = self.buf.len();
        self.buf.clear();
        self.total_skipped = self.total_skipped.saturating_add(n as u64);
    }

    /// Number of bytes waiting for the rest of a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Total bytes dropped as garbage since creation.
    pub fn total_skipped(&self) -> u64 {
        self.total_skipped
    }

    fn drop_front(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.drain(..n);
        self.skipped = self.skipped.saturating_add(n);
        self.total_skipped = self.total_skipped.saturating_add(n as u64);
    }

    /// True when the bytes at the start of `bytes` could begin a frame for us (only the
    /// bytes present are checked).
    fn plausible_start(&self, bytes: &[u8]) -> bool {
        match bytes {
            [] => false,
            [nad] => *nad == self.nad,
            [nad, pcb] => *nad == self.nad && Block::pcb_is_valid(*pcb),
            [nad, pcb, len, ..] => {
                *nad == self.nad && Block::pcb_is_valid(*pcb) && plausible_len(*pcb, *len)
            }
        }
    }

    fn take_garbage(&mut self) -> Option<Reassembled> {
        if self.skipped == 0 {
            return None;
        }
        let out = Reassembled::Garbage {
            skipped: self.skipped,
            edc_error: self.edc_error,
        };
        self.skipped = 0;
        self.edc_error = false;
        Some(out)
    }

    /// The next thing found in the buffer: a frame, a report of skipped garbage (given
    /// before the frame that follows it), or `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Reassembled> {
        loop {
            // Scan to the first plausible frame start.
            let start = (0..self.buf.len())
                .find(|&i| self.plausible_start(self.buf.get(i..).unwrap_or(&[])))
                .unwrap_or(self.buf.len());
            if start > 0 {
                self.drop_front(start);
            }
            if self.buf.is_empty() {
                return self.take_garbage();
            }
            match Frame::decode(&self.buf, self.edc) {
                Ok((frame, used)) => {
                    if let Some(garbage) = self.take_garbage() {
                        // Report the garbage first; the frame stays buffered for the next call.
                        return Some(garbage);
                    }
                    self.buf.drain(..used.min(self.buf.len()));
                    return Some(Reassembled::Frame(frame));
                }
                // Wait for the rest. A frame whose tail was lost is discarded by the owner's
                // character/block waiting timer ([`Reassembler::clear`]); looking ahead for a
                // later frame instead would let a weak LRC carve phantom frames out of a
                // legitimate INF.
                Err(FrameError::Incomplete { .. }) => return self.take_garbage(),
                Err(FrameError::EdcMismatch) => {
                    self.edc_error = true;
                    self.drop_front(1);
                }
                Err(_) => self.drop_front(1),
            }
        }
    }
}

/// R-blocks carry no INF and S-blocks at most one byte: a longer LEN cannot start a frame.
fn plausible_len(pcb: u8, len: u8) -> bool {
    match pcb & 0xC0 {
        0x80 => len == 0,
        0xC0 => len <= 1,
        _ => usize::from(len) <= MAX_INF,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::block::{RError, SBlock, Seq};
    use crate::frame::NAD_TO_TERMINAL;

    fn frame_bytes(block: &Block, edc: Edc) -> Vec<u8> {
        block
            .to_frame(NAD_TO_TERMINAL)
            .unwrap()
            .encode(edc)
            .unwrap()
    }

    fn info(n: usize) -> Block {
        Block::I {
            seq: Seq::One,
            more: false,
            data: (0..n).map(|i| i as u8).collect(),
        }
    }

    fn drain(r: &mut Reassembler) -> Vec<Reassembled> {
        std::iter::from_fn(|| r.next_frame()).collect()
    }

    #[test]
    fn chunk_size_is_att_mtu_minus_three() {
        assert_eq!(Chunker::for_att_mtu(23).chunk_len(), 20);
        assert_eq!(Chunker::for_att_mtu(247).chunk_len(), 244);
        assert_eq!(Chunker::for_att_mtu(5).chunk_len(), 20);
        let chunks = Chunker::for_att_mtu(23).split(&[7; 45]);
        assert_eq!(
            chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![20, 20, 5]
        );
        assert_eq!(Chunker::for_stream().split(&[1; 300]).len(), 1);
        assert!(Chunker::for_att_mtu(23).split(&[]).is_empty());
    }

    #[test]
    fn reassembles_across_every_split_point() {
        for edc in [Edc::Lrc, Edc::Crc16X25] {
            let a = frame_bytes(&info(40), edc);
            let b = frame_bytes(
                &Block::R {
                    seq: Seq::Zero,
                    error: RError::None,
                },
                edc,
            );
            let stream: Vec<u8> = a.iter().chain(&b).copied().collect();
            for cut1 in 0..stream.len() {
                for cut2 in cut1..stream.len() {
                    let mut r = Reassembler::new(NAD_TO_TERMINAL, edc);
                    let mut got = Vec::new();
                    for part in [&stream[..cut1], &stream[cut1..cut2], &stream[cut2..]] {
                        r.push(part);
                        got.extend(drain(&mut r));
                    }
                    let frames: Vec<Block> = got
                        .iter()
                        .map(|g| match g {
                            Reassembled::Frame(f) => Block::from_frame(f).unwrap(),
                            other => panic!("unexpected {other:?}"),
                        })
                        .collect();
                    assert_eq!(frames.len(), 2, "cuts {cut1} {cut2}");
                    assert_eq!(frames[0], info(40));
                }
            }
        }
    }

    #[test]
    fn leading_garbage_is_reported_then_the_frame() {
        let mut r = Reassembler::new(NAD_TO_TERMINAL, Edc::Lrc);
        r.push(&[0x55, 0x21, 0xFF, 0x00]);
        r.push(&frame_bytes(&Block::S(SBlock::WtxRequest(2)), Edc::Lrc));
        let got = drain(&mut r);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(matches!(got[0], Reassembled::Garbage { skipped: 4, .. }));
        assert!(matches!(got[1], Reassembled::Frame(_)));
    }

    #[test]
    fn damaged_frame_is_an_edc_error_and_the_next_frame_survives() {
        let mut bad = frame_bytes(&info(10), Edc::Crc16X25);
        bad[7] ^= 0x10;
        let good = frame_bytes(&Block::S(SBlock::AbortResponse), Edc::Crc16X25);
        let mut r = Reassembler::new(NAD_TO_TERMINAL, Edc::Crc16X25);
        r.push(&bad);
        r.push(&good);
        let got = drain(&mut r);
        assert!(
            matches!(
                got[0],
                Reassembled::Garbage {
                    edc_error: true,
                    ..
                }
            ),
            "{got:?}"
        );
        assert_eq!(
            got.last(),
            Some(&Reassembled::Frame(
                Block::S(SBlock::AbortResponse)
                    .to_frame(NAD_TO_TERMINAL)
                    .unwrap()
            ))
        );
    }

    #[test]
    fn lost_tail_waits_until_cleared_then_the_next_frame_passes() {
        let long = frame_bytes(&info(60), Edc::Lrc);
        let next = frame_bytes(
            &Block::R {
                seq: Seq::One,
                error: RError::Edc,
            },
            Edc::Lrc,
        );
        let mut r = Reassembler::new(NAD_TO_TERMINAL, Edc::Lrc);
        r.push(&long[..20]); // the rest of this frame is lost
        assert_eq!(drain(&mut r), vec![]);
        r.push(&next);
        // Swallowed as part of the 60-byte frame for now.
        assert_eq!(drain(&mut r), vec![]);
        r.clear();
        r.push(&next);
        let got = drain(&mut r);
        assert!(
            matches!(got.last(), Some(Reassembled::Frame(f)) if f.pcb == 0x91),
            "{got:?}"
        );
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn duplicated_chunk_still_yields_the_frame() {
        let bytes = frame_bytes(&info(30), Edc::Lrc);
        let chunks = Chunker::for_att_mtu(23).split(&bytes);
        let mut r = Reassembler::new(NAD_TO_TERMINAL, Edc::Lrc);
        r.push(&chunks[0]);
        r.push(&chunks[0]);
        r.push(&chunks[1]);
        let got = drain(&mut r);
        assert!(
            got.iter()
                .any(|g| matches!(g, Reassembled::Frame(f) if f.inf.len() == 30)),
            "{got:?}"
        );
    }

    #[test]
    fn frames_for_another_address_are_garbage() {
        let mut r = Reassembler::new(0x12, Edc::Lrc);
        r.push(&frame_bytes(&info(3), Edc::Lrc));
        let got = drain(&mut r);
        assert!(
            got.iter().all(|g| matches!(g, Reassembled::Garbage { .. })),
            "{got:?}"
        );
    }

    #[test]
    fn buffer_is_bounded() {
        let mut r = Reassembler::new(NAD_TO_TERMINAL, Edc::Lrc);
        // A plausible header announcing 254 bytes, then endless filler never completing EDC.
        for _ in 0..100 {
            r.push(&[0x21, 0x00, 0xFE]);
            r.push(&[0x21; 300]);
        }
        assert!(r.buffered() <= MAX_BUFFERED);
        let _ = drain(&mut r);
        assert!(r.total_skipped() > 0);
    }
}
