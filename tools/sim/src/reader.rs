//! The mPOS reader simulator: the reader side of the `smartpos_reader` link (the "card"
//! side of ISO/IEC 7816-3 T=1), hosting a card behind [`CardSlot`], plus [`LossyChannel`], an
//! in-memory chunk channel that drops, duplicates, damages and delays chunks,
//! [`SimLink`], which wires a [`LinkEngine`] to a [`SimReader`] through two channels on
//! virtual time, and [`spawn_reader`], which runs a reader on a thread in real time behind a
//! [`ReaderLink`] (what the terminal runtime and the CLI talk to).
//!
//! Reader rules (ISO/IEC 7816-3:2006 §11.6, the card's part):
//! - an I-block with the expected N(S) is accepted (chained pieces acknowledged with
//!   R(N(R))); one with the other N(S) is a repeat: the reader sends its last block again;
//! - R(N(R) = N(S) of its last I-block) → resend that I-block; R(next N(S)) while chaining
//!   its response → next piece; any other R → R(expected N(S)) ("send me your I-block");
//! - a damaged frame → R with the EDC error bit, or the pending S request again;
//! - S(RESYNCH) resets sequence numbers and IFS, S(IFS) sets IFSD, S(ABORT) drops the
//!   command in progress;
//! - a slow card (`card_delay_ms`) makes the reader ask for S(WTX) (at most 2 × BWT at a
//!   time, renewed half-way) before answering;
//! - the last command's ID, request and response are remembered: a command repeated with the
//!   same ID after a RESYNCH is answered from memory, not run again.
//!
//! Exchange tags (this profile's deviation, see `smartpos_reader::block`): every block
//! the reader sends carries the tag of the last terminal block it received, so the terminal
//! can tell an answer to its latest transmission from a stale one. A valid frame identical to
//! the previous one, tag included, is a duplicate (the terminal never sends two blocks in a
//! row with one tag) and is not answered again: each terminal transmission gets at most one
//! answer. A damaged frame has no readable tag; the R-block reporting it carries the tag the
//! terminal's next transmission has (last tag + 1), so the terminal re-sends at once when the
//! damaged frame was its latest block, and drops the R-block as stale otherwise.

use std::collections::VecDeque;
use std::sync::mpsc;

use smartpos_reader::{
    ActivatedCard, Block, Chunker, CommandClass, DEFAULT_IFS, Edc, Frame, LinkEngine,
    NAD_TO_READER, NAD_TO_TERMINAL, RError, ReaderEvent, ReaderLink, ReaderStatus, Reassembled,
    Reassembler, SBlock, Seq, Tag, encode_response, split_request,
};

use crate::card::SimCard;
use crate::fault::SplitMix64;

/// A card as the reader sees it: activation, APDUs, deactivation.
pub trait CardSlot {
    /// Activates the card in the field; `None` when there is none.
    fn activate(&mut self) -> Option<ActivatedCard> {
        Some(ActivatedCard {
            atqa: [0x00, 0x04],
            sak: 0x20,
            uid: vec![0x08, 0x5A, 0x13, 0x77],
        })
    }

    /// Sends a C-APDU; `None` when the card does not answer (left the field).
    fn transceive(&mut self, capdu: &[u8]) -> Option<Vec<u8>>;

    /// Turns the field off.
    fn deactivate(&mut self) {}
}

impl CardSlot for SimCard {
    fn transceive(&mut self, capdu: &[u8]) -> Option<Vec<u8>> {
        SimCard::transceive(self, capdu).ok()
    }
}

/// A card made of a closure (tests: echo cards, counters, cards that vanish).
pub struct FnCard<F>(pub F);

impl<F: FnMut(&[u8]) -> Option<Vec<u8>>> CardSlot for FnCard<F> {
    fn transceive(&mut self, capdu: &[u8]) -> Option<Vec<u8>> {
        (self.0)(capdu)
    }
}

/// Reader simulator settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimReaderConfig {
    /// Must match the terminal's [`smartpos_reader::LinkConfig::edc`].
    pub edc: Edc,
    /// ATT MTU of the notifications; `None` for a byte stream.
    pub att_mtu: Option<u16>,
    /// Largest INF the reader accepts (IFSC), announced with S(IFS request) when not 32.
    pub ifsc: u8,
    /// BWT the terminal applies (the reader asks for WTX when its card is slower).
    pub bwt_ms: u64,
    /// Character waiting time between chunks of one frame: an older partial frame is
    /// dropped (the reader has no other timer to notice a lost tail).
    pub cwt_ms: u64,
    /// Time the card takes per APDU; above half a BWT the reader asks for WTX.
    pub card_delay_ms: u64,
    /// How long a damaged frame waits before the reader reports it with R(EDC): an intact
    /// frame right behind it (a duplicated chunk looks like damage) makes the report moot.
    pub edc_grace_ms: u64,
    /// Firmware version text.
    pub firmware: String,
    /// Battery level in percent.
    pub battery: u8,
}

impl Default for SimReaderConfig {
    fn default() -> SimReaderConfig {
        SimReaderConfig {
            edc: Edc::Crc16X25,
            att_mtu: Some(23),
            ifsc: DEFAULT_IFS,
            bwt_ms: 1_000,
            cwt_ms: 500,
            card_delay_ms: 0,
            edc_grace_ms: 50,
            firmware: "SIM-RDR 1.4.2".to_owned(),
            battery: 87,
        }
    }
}

/// What the reader has shown and done, for assertions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReaderLog {
    /// Text currently on the display.
    pub display: String,
    /// Beep durations, in order.
    pub beeps: Vec<u16>,
    /// Cancel commands received.
    pub cancels: u32,
    /// APDUs executed by the card (repeats answered from memory are not counted).
    pub apdus_executed: u64,
    /// Commands answered from memory after a RESYNCH.
    pub answered_from_memory: u64,
    /// S(ABORT request)s received.
    pub aborts: u32,
    /// S(RESYNCH request)s received.
    pub resynchs: u32,
    /// Terminal blocks dropped as duplicates (same exchange tag as the previous block).
    pub duplicates_ignored: u64,
}

/// What the reader does between blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a command (or the next piece of one).
    Ready,
    /// The card is working until `until`; `wtx_pending` while our S(WTX request) is
    /// unanswered; the next WTX request goes out at `next_wtx`.
    Processing {
        until: u64,
        wtx_pending: Option<u8>,
        next_wtx: u64,
    },
    /// Sent S(IFS request) with this value before answering.
    AwaitIfs(u8),
}

/// The reader side of the link.
pub struct SimReader<C: CardSlot> {
    cfg: SimReaderConfig,
    card: C,
    activated: bool,
    chunker: Chunker,
    rx: Reassembler,
    last_rx: u64,
    /// N(S) expected on the terminal's next I-block.
    expected: Seq,
    /// N(S) of our next I-block.
    ns: Seq,
    /// Largest INF the terminal accepts.
    ifsd: usize,
    /// Largest INF we accept (after our IFS request is answered).
    ifsc: usize,
    ifsc_announced: bool,
    command: Vec<u8>,
    /// Response being sent and the start of the next unsent piece.
    outgoing: Option<(Vec<u8>, usize)>,
    last_i: Option<Block>,
    last_block: Option<Block>,
    state: State,
    memory: Option<(Vec<u8>, Vec<u8>)>,
    /// Tag of the last valid terminal block (none before the first).
    rx_tag: Option<Tag>,
    /// The last valid terminal frame, to recognise its duplicates.
    last_rx_frame: Option<Frame>,
    /// Tag stamped on the blocks we send.
    reply_tag: Tag,
    /// When a damaged frame gets its R(EDC), unless an intact frame arrives first.
    edc_deadline: Option<u64>,
    transmit: VecDeque<Vec<u8>>,
    log: ReaderLog,
}

impl<C: CardSlot> std::fmt::Debug for SimReader<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimReader")
            .field("state", &self.state)
            .field("expected", &self.expected)
            .field("ns", &self.ns)
            .field("log", &self.log)
            .finish()
    }
}

impl<C: CardSlot> SimReader<C> {
    /// A reader holding `card` (tapped: a poll finds it unless [`CardSlot::activate`] says no).
    pub fn new(cfg: SimReaderConfig, card: C) -> SimReader<C> {
        let chunker = match cfg.att_mtu {
            Some(mtu) => Chunker::for_att_mtu(mtu),
            None => Chunker::for_stream(),
        };
        let ifsc_announced = cfg.ifsc == DEFAULT_IFS;
        SimReader {
            rx: Reassembler::new(NAD_TO_READER, cfg.edc),
            last_rx: 0,
            chunker,
            card,
            activated: false,
            expected: Seq::Zero,
            ns: Seq::Zero,
            ifsd: usize::from(DEFAULT_IFS),
            ifsc: usize::from(DEFAULT_IFS),
            ifsc_announced,
            command: Vec::new(),
            outgoing: None,
            last_i: None,
            last_block: None,
            state: State::Ready,
            memory: None,
            rx_tag: None,
            last_rx_frame: None,
            reply_tag: Tag::default(),
            edc_deadline: None,
            transmit: VecDeque::new(),
            log: ReaderLog::default(),
            cfg,
        }
    }

    /// The hosted card.
    pub fn card(&self) -> &C {
        &self.card
    }

    /// The hosted card, mutably (to pull it away, say).
    pub fn card_mut(&mut self) -> &mut C {
        &mut self.card
    }

    /// What the reader did so far.
    pub fn log(&self) -> &ReaderLog {
        &self.log
    }

    /// Next chunk to deliver to the terminal.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// When the card finishes the command in progress, the next WTX request is due, or a
    /// damaged frame is to be reported.
    pub fn poll_timeout(&self) -> Option<u64> {
        let card = match self.state {
            State::Processing {
                until,
                wtx_pending: None,
                next_wtx,
            } => Some(until.min(next_wtx)),
            _ => None,
        };
        [card, self.edc_deadline].into_iter().flatten().min()
    }

    /// Call when `now` reaches [`SimReader::poll_timeout`].
    pub fn handle_timeout(&mut self, now: u64) {
        if self.edc_deadline.is_some_and(|d| now >= d) {
            self.edc_deadline = None;
            // Addressed to the transmission the terminal makes after the last one we read
            // (see the module documentation); later blocks keep answering the last valid one.
            let answered = self.reply_tag;
            self.reply_tag = self.rx_tag.unwrap_or_default().next();
            self.on_invalid(RError::Edc);
            self.reply_tag = answered;
        }
        self.card_timeout(now);
    }

    fn card_timeout(&mut self, now: u64) {
        let State::Processing {
            until,
            wtx_pending: None,
            next_wtx,
        } = self.state
        else {
            return;
        };
        if now >= until {
            self.state = State::Ready;
            self.start_response();
        } else if now >= next_wtx {
            self.request_wtx(now, until);
        }
    }

    /// Asks for more time in steps of at most two BWTs, like a card does, so that the
    /// terminal gets a turn (to abort) now and then.
    fn request_wtx(&mut self, now: u64, until: u64) {
        let n = self.wtx_multiplier(until.saturating_sub(now)).min(2);
        self.state = State::Processing {
            until,
            wtx_pending: Some(n),
            next_wtx: u64::MAX,
        };
        self.send(Block::S(SBlock::WtxRequest(n)));
    }

    /// Feeds one chunk written by the terminal.
    pub fn handle_chunk(&mut self, now: u64, chunk: &[u8]) {
        if self.rx.buffered() > 0 && now.saturating_sub(self.last_rx) > self.cfg.cwt_ms {
            self.rx.clear();
        }
        self.last_rx = now;
        self.rx.push(chunk);
        while let Some(found) = self.rx.next_frame() {
            match found {
                Reassembled::Frame(frame) => {
                    let tag = Tag::of_pcb(frame.pcb);
                    if self.last_rx_frame.as_ref() == Some(&frame) {
                        // Already answered: a duplicated chunk.
                        self.log.duplicates_ignored += 1;
                        continue;
                    }
                    self.rx_tag = Some(tag);
                    self.reply_tag = tag;
                    self.edc_deadline = None;
                    let block = Block::from_frame(&frame);
                    self.last_rx_frame = Some(frame);
                    match block {
                        Ok(block) => self.on_block(now, block),
                        Err(_) => self.on_invalid(RError::Other),
                    }
                }
                Reassembled::Garbage {
                    edc_error: true, ..
                } => {
                    if self.edc_deadline.is_none() {
                        self.edc_deadline = Some(now.saturating_add(self.cfg.edc_grace_ms));
                    }
                }
                Reassembled::Garbage { .. } => {}
            }
        }
    }

    fn send(&mut self, block: Block) {
        let bytes = block
            .to_tagged_frame(NAD_TO_TERMINAL, self.reply_tag)
            .ok()
            .and_then(|f| f.encode(self.cfg.edc).ok());
        if let Some(bytes) = bytes {
            self.transmit.extend(self.chunker.split(&bytes));
        }
        if matches!(block, Block::I { .. }) {
            self.last_i = Some(block.clone());
        }
        self.last_block = Some(block);
    }

    fn resend_last(&mut self) {
        match self.last_block.clone() {
            Some(block) => self.send(block),
            None => self.send(Block::R {
                seq: self.expected,
                error: RError::None,
            }),
        }
    }

    fn on_invalid(&mut self, error: RError) {
        match self.state {
            State::Processing {
                wtx_pending: Some(n),
                ..
            } => self.send(Block::S(SBlock::WtxRequest(n))),
            State::AwaitIfs(v) => self.send(Block::S(SBlock::IfsRequest(v))),
            _ => self.send(Block::R {
                seq: self.expected,
                error,
            }),
        }
    }

    fn on_block(&mut self, now: u64, block: Block) {
        match block {
            Block::I { seq, more, data } => {
                if seq != self.expected {
                    // A repeat: our answer (ack, response piece, S request) was lost.
                    self.resend_last();
                    return;
                }
                if data.len() > self.ifsc || !matches!(self.state, State::Ready) {
                    self.on_invalid(RError::Other);
                    return;
                }
                self.expected = self.expected.next();
                // A new I-block acknowledges our last response piece.
                self.outgoing = None;
                self.command.extend_from_slice(&data);
                if more {
                    self.send(Block::R {
                        seq: self.expected,
                        error: RError::None,
                    });
                } else {
                    let command = std::mem::take(&mut self.command);
                    self.execute(now, &command);
                }
            }
            Block::R { seq, .. } => {
                match self.state {
                    State::Processing {
                        wtx_pending: Some(n),
                        ..
                    } => return self.send(Block::S(SBlock::WtxRequest(n))),
                    State::Processing {
                        until,
                        wtx_pending: None,
                        ..
                    } => {
                        // The terminal's extended wait ran out: ask again.
                        return self.request_wtx(now, until);
                    }
                    State::AwaitIfs(v) => return self.send(Block::S(SBlock::IfsRequest(v))),
                    State::Ready => {}
                }
                let last_seq = match &self.last_i {
                    Some(Block::I { seq, .. }) => Some(*seq),
                    _ => None,
                };
                if last_seq == Some(seq) {
                    if let Some(block) = self.last_i.clone() {
                        self.send(block);
                    }
                } else if self.outgoing.is_some() && seq == self.ns {
                    self.send_next_piece();
                } else {
                    self.send(Block::R {
                        seq: self.expected,
                        error: RError::None,
                    });
                }
            }
            Block::S(SBlock::ResynchRequest) => {
                self.log.resynchs += 1;
                self.expected = Seq::Zero;
                self.ns = Seq::Zero;
                self.ifsd = usize::from(DEFAULT_IFS);
                self.ifsc = usize::from(DEFAULT_IFS);
                self.ifsc_announced = self.cfg.ifsc == DEFAULT_IFS;
                self.command.clear();
                self.outgoing = None;
                self.last_i = None;
                self.state = State::Ready;
                self.send(Block::S(SBlock::ResynchResponse));
            }
            Block::S(SBlock::IfsRequest(v)) => {
                self.ifsd = usize::from(v);
                self.send(Block::S(SBlock::IfsResponse(v)));
            }
            Block::S(SBlock::AbortRequest) => {
                self.log.aborts += 1;
                self.command.clear();
                self.outgoing = None;
                self.state = State::Ready;
                self.send(Block::S(SBlock::AbortResponse));
            }
            Block::S(SBlock::WtxResponse(n)) => {
                if let State::Processing {
                    until,
                    wtx_pending: Some(p),
                    ..
                } = self.state
                    && p == n
                {
                    // Ask again half-way through the granted time.
                    let granted = self.cfg.bwt_ms.saturating_mul(u64::from(n));
                    self.state = State::Processing {
                        until,
                        wtx_pending: None,
                        next_wtx: now.saturating_add(granted / 2),
                    };
                    self.card_timeout(now);
                }
            }
            Block::S(SBlock::IfsResponse(v)) => {
                if self.state == State::AwaitIfs(v) {
                    self.ifsc = usize::from(v);
                    self.ifsc_announced = true;
                    self.state = State::Ready;
                    self.start_response();
                }
            }
            // The terminal never sends these: treat as invalid.
            Block::S(_) => self.on_invalid(RError::Other),
        }
    }

    fn wtx_multiplier(&self, remaining_ms: u64) -> u8 {
        let bwt = self.cfg.bwt_ms.max(1);
        let n = remaining_ms.div_ceil(bwt).saturating_add(1);
        u8::try_from(n.min(255)).unwrap_or(255)
    }

    /// Runs the command (or recalls it) and sends the response, after the card's delay.
    fn execute(&mut self, now: u64, request: &[u8]) {
        let response = match &self.memory {
            Some((last_request, last_response)) if last_request.as_slice() == request => {
                self.log.answered_from_memory += 1;
                last_response.clone()
            }
            _ => {
                let response = self.run(request);
                if split_request(request).is_some() {
                    self.memory = Some((request.to_vec(), response.clone()));
                }
                response
            }
        };
        self.outgoing = Some((response, 0));
        let is_apdu = request.first() == Some(&CommandClass::APDU.0);
        let delay = if is_apdu { self.cfg.card_delay_ms } else { 0 };
        if delay > self.cfg.bwt_ms / 2 {
            self.request_wtx(now, now.saturating_add(delay));
        } else {
            self.start_response();
        }
    }

    fn start_response(&mut self) {
        if !self.ifsc_announced {
            let v = self.cfg.ifsc;
            self.state = State::AwaitIfs(v);
            self.send(Block::S(SBlock::IfsRequest(v)));
            return;
        }
        self.send_next_piece();
    }

    fn send_next_piece(&mut self) {
        let Some((message, offset)) = self.outgoing.as_mut() else {
            return;
        };
        let end = offset.saturating_add(self.ifsd).min(message.len());
        let data = message.get(*offset..end).unwrap_or(&[]).to_vec();
        *offset = end;
        let more = end < message.len();
        if !more {
            // Last piece: kept in `last_i` for retransmission until the next command.
            self.outgoing = None;
        }
        let block = Block::I {
            seq: self.ns,
            more,
            data,
        };
        self.ns = self.ns.next();
        self.send(block);
    }

    /// The reader's command set (see `smartpos_reader::command`).
    fn run(&mut self, request: &[u8]) -> Vec<u8> {
        let Some((class, id, data)) = split_request(request) else {
            // Damaged on the way: do not execute; the terminal will send it again.
            let class = CommandClass(request.first().copied().unwrap_or(0xFF));
            let id = request.get(1).copied().unwrap_or(0);
            return encode_response(class, id, ReaderStatus::INTEGRITY, &[]);
        };
        let (status, out) = match class {
            CommandClass::APDU if !self.activated => (ReaderStatus::NO_CARD, Vec::new()),
            CommandClass::APDU => match self.card.transceive(data) {
                Some(rapdu) => {
                    self.log.apdus_executed += 1;
                    (ReaderStatus::OK, rapdu)
                }
                None => {
                    self.activated = false;
                    (ReaderStatus::CARD_REMOVED, Vec::new())
                }
            },
            CommandClass::POLL_CARD => match self.card.activate() {
                Some(card) => {
                    self.activated = true;
                    (ReaderStatus::OK, card.encode())
                }
                None => (ReaderStatus::NO_CARD, Vec::new()),
            },
            CommandClass::DEACTIVATE => {
                self.card.deactivate();
                self.activated = false;
                (ReaderStatus::OK, Vec::new())
            }
            CommandClass::FIRMWARE_VERSION => {
                (ReaderStatus::OK, self.cfg.firmware.as_bytes().to_vec())
            }
            CommandClass::BATTERY => (ReaderStatus::OK, vec![self.cfg.battery.min(100)]),
            CommandClass::DISPLAY_TEXT => match std::str::from_utf8(data) {
                Ok(text) if text.chars().count() <= 32 => {
                    self.log.display = text.to_owned();
                    (ReaderStatus::OK, Vec::new())
                }
                _ => (ReaderStatus::BAD_PARAMETER, Vec::new()),
            },
            CommandClass::BEEP => match data {
                [hi, lo] => {
                    self.log.beeps.push(u16::from_be_bytes([*hi, *lo]));
                    (ReaderStatus::OK, Vec::new())
                }
                _ => (ReaderStatus::BAD_PARAMETER, Vec::new()),
            },
            CommandClass::CANCEL => {
                self.log.cancels += 1;
                self.log.display.clear();
                (ReaderStatus::OK, Vec::new())
            }
            _ => (ReaderStatus::UNKNOWN_COMMAND, Vec::new()),
        };
        encode_response(class, id, status, &out)
    }
}

/// Fault probabilities of a [`LossyChannel`], each drawn per chunk.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ChannelFaults {
    /// Probability that a chunk is lost.
    pub drop: f64,
    /// Probability that a chunk is delivered twice (the copy right after the original).
    pub duplicate: f64,
    /// Probability that one bit of a chunk is flipped.
    pub corrupt: f64,
    /// Probability that a chunk is held back by `delay_ms` (holding up the chunks behind it:
    /// BLE and SPP never reorder).
    pub delay: f64,
    /// Extra delay of a delayed chunk, in milliseconds.
    pub delay_ms: u64,
}

/// Counters of what a [`LossyChannel`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelStats {
    /// Chunks handed to the channel.
    pub sent: u64,
    /// Chunks dropped.
    pub dropped: u64,
    /// Chunks duplicated.
    pub duplicated: u64,
    /// Chunks with a flipped bit.
    pub corrupted: u64,
    /// Chunks delayed.
    pub delayed: u64,
}

/// An in-memory, in-order chunk channel with seeded faults.
#[derive(Debug, Clone)]
pub struct LossyChannel {
    faults: ChannelFaults,
    latency_ms: u64,
    rng: SplitMix64,
    queue: VecDeque<(u64, Vec<u8>)>,
    stats: ChannelStats,
}

impl LossyChannel {
    /// A channel with fixed latency and faults decided by `seed`.
    pub fn new(seed: u64, faults: ChannelFaults, latency_ms: u64) -> LossyChannel {
        LossyChannel {
            faults,
            latency_ms,
            rng: SplitMix64::new(seed),
            queue: VecDeque::new(),
            stats: ChannelStats::default(),
        }
    }

    /// A channel that delivers every chunk intact after `latency_ms`.
    pub fn perfect(latency_ms: u64) -> LossyChannel {
        LossyChannel::new(0, ChannelFaults::default(), latency_ms)
    }

    /// What the channel did so far.
    pub fn stats(&self) -> ChannelStats {
        self.stats
    }

    /// Hands a chunk to the channel at `now`.
    pub fn send(&mut self, now: u64, mut chunk: Vec<u8>) {
        self.stats.sent += 1;
        if self.rng.next_f64() < self.faults.drop {
            self.stats.dropped += 1;
            return;
        }
        if !chunk.is_empty() && self.rng.next_f64() < self.faults.corrupt {
            let bit = self.rng.next_u64() as usize % (chunk.len() * 8);
            if let Some(byte) = chunk.get_mut(bit / 8) {
                *byte ^= 1 << (bit % 8);
            }
            self.stats.corrupted += 1;
        }
        let mut due = now.saturating_add(self.latency_ms);
        if self.rng.next_f64() < self.faults.delay {
            due = due.saturating_add(self.faults.delay_ms);
            self.stats.delayed += 1;
        }
        // In order: never before the chunk ahead of it.
        if let Some(&(last, _)) = self.queue.back() {
            due = due.max(last);
        }
        let duplicate = self.rng.next_f64() < self.faults.duplicate;
        if duplicate {
            self.stats.duplicated += 1;
            self.queue.push_back((due, chunk.clone()));
        }
        self.queue.push_back((due, chunk));
    }

    /// The next chunk due at `now`, if any.
    pub fn deliver(&mut self, now: u64) -> Option<Vec<u8>> {
        match self.queue.front() {
            Some(&(due, _)) if due <= now => self.queue.pop_front().map(|(_, c)| c),
            _ => None,
        }
    }

    /// When the next chunk is due.
    pub fn next_due(&self) -> Option<u64> {
        self.queue.front().map(|&(due, _)| due)
    }
}

/// A [`LinkEngine`] and a [`SimReader`] joined by two [`LossyChannel`]s on virtual time.
pub struct SimLink<C: CardSlot> {
    /// The terminal side.
    pub engine: LinkEngine,
    /// The reader side.
    pub reader: SimReader<C>,
    /// Terminal → reader.
    pub to_reader: LossyChannel,
    /// Reader → terminal.
    pub to_terminal: LossyChannel,
    /// Virtual time in milliseconds.
    pub now: u64,
}

impl<C: CardSlot> std::fmt::Debug for SimLink<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimLink")
            .field("engine", &self.engine)
            .field("reader", &self.reader)
            .field("now", &self.now)
            .finish()
    }
}

impl<C: CardSlot> SimLink<C> {
    /// Joins the two sides.
    pub fn new(
        engine: LinkEngine,
        reader: SimReader<C>,
        to_reader: LossyChannel,
        to_terminal: LossyChannel,
    ) -> SimLink<C> {
        SimLink {
            engine,
            reader,
            to_reader,
            to_terminal,
            now: 0,
        }
    }

    /// Moves everything that can move at the current time; true if anything moved.
    fn settle(&mut self) -> bool {
        let mut moved = false;
        loop {
            let mut any = false;
            while let Some(chunk) = self.engine.poll_transmit() {
                self.to_reader.send(self.now, chunk);
                any = true;
            }
            while let Some(chunk) = self.reader.poll_transmit() {
                self.to_terminal.send(self.now, chunk);
                any = true;
            }
            while let Some(chunk) = self.to_reader.deliver(self.now) {
                self.reader.handle_chunk(self.now, &chunk);
                any = true;
            }
            while let Some(chunk) = self.to_terminal.deliver(self.now) {
                self.engine.handle_chunk(self.now, &chunk);
                any = true;
            }
            if !any {
                return moved;
            }
            moved = true;
        }
    }

    /// Runs until the engine reports an event or `budget_ms` of virtual time pass.
    pub fn run_until_event(&mut self, budget_ms: u64) -> Option<ReaderEvent> {
        let end = self.now.saturating_add(budget_ms);
        loop {
            self.settle();
            if let Some(event) = self.engine.poll_event() {
                return Some(event);
            }
            let next = [
                self.engine.poll_timeout(),
                self.reader.poll_timeout(),
                self.to_reader.next_due(),
                self.to_terminal.next_due(),
            ]
            .into_iter()
            .flatten()
            .min()?;
            if next > end {
                return None;
            }
            self.now = self.now.max(next);
            if self.engine.poll_timeout().is_some_and(|t| t <= self.now) {
                self.engine.handle_timeout(self.now);
            }
            if self.reader.poll_timeout().is_some_and(|t| t <= self.now) {
                self.reader.handle_timeout(self.now);
            }
        }
    }

    /// Sends one C-APDU and runs until its event (at most `budget_ms` of virtual time).
    pub fn transceive(&mut self, capdu: &[u8], budget_ms: u64) -> Option<ReaderEvent> {
        if let Err(e) = self.engine.send_apdu(self.now, capdu) {
            return Some(ReaderEvent::Error(e));
        }
        self.run_until_event(budget_ms)
    }
}

/// The terminal's end of a [`spawn_reader`] thread: each written chunk goes into the
/// terminal-to-reader [`LossyChannel`].
#[derive(Debug, Clone)]
pub struct ThreadLink {
    tx: mpsc::Sender<Vec<u8>>,
}

impl ReaderLink for ThreadLink {
    fn write(&self, chunk: &[u8]) {
        // A reader thread that has stopped is a lost link: the chunk is lost like any other.
        let _ = self.tx.send(chunk.to_vec());
    }
}

/// A [`SimReader`] running on its own thread in real time (milliseconds since the spawn),
/// behind two [`LossyChannel`]s: what an app's BLE stack looks like to the SDK.
#[derive(Debug)]
pub struct ReaderThread<C: CardSlot> {
    handle: Option<std::thread::JoinHandle<SimReader<C>>>,
}

impl<C: CardSlot> ReaderThread<C> {
    /// Waits for the thread to end (it ends when every [`ThreadLink`] is dropped) and
    /// returns the reader, to inspect its card and log. `None` if the thread panicked.
    pub fn join(mut self) -> Option<SimReader<C>> {
        self.handle.take().and_then(|h| h.join().ok())
    }
}

/// Where a [`spawn_reader`] thread hands the chunks that reach the terminal.
pub type Deliver = Box<dyn FnMut(&[u8]) + Send>;

/// Runs `reader` on a thread. Chunks written to the returned [`ThreadLink`] cross
/// `to_reader`; the reader's chunks cross `to_terminal` and are handed to `deliver` (which
/// the app's notification callback would be: typically `ChunkSender::push` of the
/// terminal's reader transport).
pub fn spawn_reader<C: CardSlot + Send + 'static>(
    mut reader: SimReader<C>,
    mut to_reader: LossyChannel,
    mut to_terminal: LossyChannel,
    mut deliver: Deliver,
) -> (ThreadLink, ReaderThread<C>) {
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let handle = std::thread::spawn(move || {
        let start = std::time::Instant::now();
        let now_ms = || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut open = true;
        while open || to_terminal.next_due().is_some() {
            let now = now_ms();
            let wake = [
                reader.poll_timeout(),
                to_reader.next_due(),
                to_terminal.next_due(),
            ]
            .into_iter()
            .flatten()
            .min();
            // Sleep at most 20 ms so a dropped link is noticed soon.
            let wait = wake.map_or(20, |t| t.saturating_sub(now).min(20));
            if open {
                match rx.recv_timeout(std::time::Duration::from_millis(wait)) {
                    Ok(chunk) => to_reader.send(now_ms(), chunk),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => open = false,
                }
                while let Ok(chunk) = rx.try_recv() {
                    to_reader.send(now_ms(), chunk);
                }
            } else {
                std::thread::sleep(std::time::Duration::from_millis(wait));
            }
            let now = now_ms();
            while let Some(chunk) = to_reader.deliver(now) {
                reader.handle_chunk(now, &chunk);
            }
            if reader.poll_timeout().is_some_and(|t| t <= now) {
                reader.handle_timeout(now);
            }
            while let Some(chunk) = reader.poll_transmit() {
                to_terminal.send(now, chunk);
            }
            while let Some(chunk) = to_terminal.deliver(now) {
                deliver(&chunk);
            }
        }
        reader
    });
    (
        ThreadLink { tx },
        ReaderThread {
            handle: Some(handle),
        },
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use smartpos_reader::LinkConfig;

    fn echo() -> FnCard<impl FnMut(&[u8]) -> Option<Vec<u8>>> {
        FnCard(|capdu: &[u8]| {
            let mut r = capdu.to_vec();
            r.extend_from_slice(&[0x90, 0x00]);
            Some(r)
        })
    }

    fn link<C: CardSlot>(card: C) -> SimLink<C> {
        SimLink::new(
            LinkEngine::new(LinkConfig::default()).unwrap(),
            SimReader::new(SimReaderConfig::default(), card),
            LossyChannel::perfect(5),
            LossyChannel::perfect(5),
        )
    }

    #[test]
    fn apdu_needs_a_polled_card() {
        let mut l = link(echo());
        assert_eq!(
            l.transceive(&[0, 0xA4, 4, 0], 10_000),
            Some(ReaderEvent::CardRemoved)
        );
        l.engine.poll_card(l.now).unwrap();
        assert!(matches!(
            l.run_until_event(10_000),
            Some(ReaderEvent::CardPresent(_))
        ));
        assert_eq!(
            l.transceive(&[0, 0xA4, 4, 0], 10_000),
            Some(ReaderEvent::ApduResponse(vec![0, 0xA4, 4, 0, 0x90, 0x00]))
        );
    }

    #[test]
    fn channel_faults_follow_the_seed() {
        let faults = ChannelFaults {
            drop: 0.3,
            duplicate: 0.3,
            corrupt: 0.3,
            delay: 0.3,
            delay_ms: 7,
        };
        let run = |seed| {
            let mut ch = LossyChannel::new(seed, faults, 1);
            let mut out = Vec::new();
            for n in 0..200u8 {
                ch.send(u64::from(n), vec![n; 8]);
                while let Some(c) = ch.deliver(u64::from(n) + 100) {
                    out.push(c);
                }
            }
            (out, ch.stats())
        };
        assert_eq!(run(7), run(7));
        let (_, stats) = run(7);
        assert!(stats.dropped > 30 && stats.duplicated > 30 && stats.corrupted > 30);
        assert!(stats.delayed > 30);
    }

    #[test]
    fn channel_keeps_order_under_delay() {
        let mut ch = LossyChannel::new(
            3,
            ChannelFaults {
                delay: 0.5,
                delay_ms: 50,
                ..ChannelFaults::default()
            },
            1,
        );
        for n in 0..50u8 {
            ch.send(u64::from(n), vec![n]);
        }
        let mut got = Vec::new();
        while let Some(c) = ch.deliver(10_000) {
            got.push(c[0]);
        }
        assert_eq!(got, (0..50).collect::<Vec<_>>());
    }
}
