//! [`ReaderTransport`]: the mPOS card reader as the kernel's [`ApduTransport`], driving the
//! sans-IO [`LinkEngine`] of `smartpos-emv` with a real clock.
//!
//! The app supplies the two directions of its Bluetooth link: writes go through its
//! [`ReaderLink`] (a GATT write without response, or an SPP socket write), and every
//! notification it receives is handed to the [`ChunkSender`] returned with the transport
//! (`sender.push(bytes)` from the BLE callback, on any thread). A call on the transport
//! (an APDU, a poll, a reader command) submits one command to the engine and then loops, as
//! quinn's driver does: write what the engine wants sent, wait for a chunk or the engine's
//! next timeout, feed it in, until the command's event comes out. Calls block the calling
//! thread (the kernel loop calls `transceive` from blocking code) for at most the link's
//! `command_timeout_ms`.
//!
//! Failures map onto the kernel's [`TransportError`]: card removed → `CardRemoved`, the
//! reader silent or a command out of time → `Timeout`, everything else (retries exhausted,
//! protocol violations, the app dropping its sender) → `Io`.

use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Re-exported so that apps configure and implement the link without naming `smartpos-emv`.
pub use smartpos_reader::{ActivatedCard, LinkConfig, LinkError, LinkStats, ReaderLink};
use smartpos_reader::{LinkEngine, ReaderCommand, ReaderEvent};
use thiserror::Error;

use crate::card::{ApduTransport, TransportError};

/// Why a reader call failed. No variant carries card data.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReaderError {
    /// The link layer failed the command (see [`LinkError`]).
    #[error("reader link: {0}")]
    Link(#[from] LinkError),
    /// Every [`ChunkSender`] was dropped: the app closed the Bluetooth connection.
    #[error("reader connection closed")]
    Disconnected,
    /// The card left the field during an APDU.
    #[error("card removed")]
    CardRemoved,
    /// The reader answered with an event that does not fit the command.
    #[error("unexpected reader answer to {command}")]
    Unexpected {
        /// The command sent.
        command: &'static str,
    },
}

impl From<ReaderError> for TransportError {
    fn from(e: ReaderError) -> TransportError {
        match e {
            ReaderError::CardRemoved => TransportError::CardRemoved,
            ReaderError::Link(LinkError::Timeout) => TransportError::Timeout,
            _ => TransportError::Io,
        }
    }
}

/// What the app's notification callback holds: hands received chunks to the transport.
/// Cheap to clone; usable from any thread.
#[derive(Debug, Clone)]
pub struct ChunkSender {
    tx: mpsc::Sender<Vec<u8>>,
}

impl ChunkSender {
    /// Delivers one received chunk (a BLE notification's value, or bytes read from the
    /// stream). False when the transport has been dropped.
    pub fn push(&self, chunk: &[u8]) -> bool {
        self.tx.send(chunk.to_vec()).is_ok()
    }
}

/// The mPOS reader as an [`ApduTransport`], plus the reader's own commands.
pub struct ReaderTransport {
    engine: LinkEngine,
    link: Box<dyn ReaderLink + Send>,
    rx: mpsc::Receiver<Vec<u8>>,
    start: Instant,
    disconnected: bool,
}

impl std::fmt::Debug for ReaderTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReaderTransport")
            .field("engine", &self.engine)
            .field("disconnected", &self.disconnected)
            .finish()
    }
}

impl ReaderTransport {
    /// A transport writing through `link`, with the link parameters `cfg` (they must match
    /// the reader's); returns the sender the app's notification callback feeds.
    pub fn new(
        link: Box<dyn ReaderLink + Send>,
        cfg: LinkConfig,
    ) -> Result<(ReaderTransport, ChunkSender), ReaderError> {
        let engine = LinkEngine::new(cfg)?;
        let (tx, rx) = mpsc::channel();
        Ok((
            ReaderTransport {
                engine,
                link,
                rx,
                start: Instant::now(),
                disconnected: false,
            },
            ChunkSender { tx },
        ))
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Submits one command and drives the link until its event.
    fn run(
        &mut self,
        submit: impl FnOnce(&mut LinkEngine, u64) -> Result<(), LinkError>,
    ) -> Result<ReaderEvent, ReaderError> {
        if self.disconnected {
            return Err(ReaderError::Disconnected);
        }
        let now = self.now_ms();
        submit(&mut self.engine, now)?;
        loop {
            self.engine.flush(&*self.link);
            if let Some(event) = self.engine.poll_event() {
                return Ok(event);
            }
            let now = self.now_ms();
            // A command in flight always has a deadline; none means nothing will happen.
            let Some(deadline) = self.engine.poll_timeout() else {
                return Err(ReaderError::Link(LinkError::Timeout));
            };
            let wait = Duration::from_millis(deadline.saturating_sub(now));
            match self.rx.recv_timeout(wait) {
                Ok(chunk) => {
                    self.engine.handle_chunk(self.now_ms(), &chunk);
                    while let Ok(chunk) = self.rx.try_recv() {
                        self.engine.handle_chunk(self.now_ms(), &chunk);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Nothing can arrive any more: end the command in flight for good.
                    self.disconnected = true;
                    self.engine.cancel(self.now_ms());
                    return Err(ReaderError::Disconnected);
                }
            }
            let now = self.now_ms();
            if self.engine.poll_timeout().is_some_and(|t| t <= now) {
                self.engine.handle_timeout(now);
            }
        }
    }

    /// Turns an event into an error when it is not what `command` expects.
    fn fail(event: ReaderEvent, command: &'static str) -> ReaderError {
        match event {
            ReaderEvent::Error(e) => ReaderError::Link(e),
            ReaderEvent::CardRemoved => ReaderError::CardRemoved,
            _ => ReaderError::Unexpected { command },
        }
    }

    /// Polls for a card in the field and activates it; `None` when there is none. Call
    /// before the kernel starts (after showing "PRESENT CARD").
    pub fn poll_card(&mut self) -> Result<Option<ActivatedCard>, ReaderError> {
        match self.run(|e, now| e.poll_card(now))? {
            ReaderEvent::CardPresent(card) => Ok(Some(card)),
            ReaderEvent::NoCard => Ok(None),
            other => Err(Self::fail(other, "poll card")),
        }
    }

    /// Polls every `interval` until a card is activated or `timeout` passes (`None`).
    pub fn wait_for_card(
        &mut self,
        timeout: Duration,
        interval: Duration,
    ) -> Result<Option<ActivatedCard>, ReaderError> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(card) = self.poll_card()? {
                return Ok(Some(card));
            }
            if Instant::now() + interval > end {
                return Ok(None);
            }
            std::thread::sleep(interval);
        }
    }

    /// Turns the field off (the card may be removed).
    pub fn deactivate(&mut self) -> Result<(), ReaderError> {
        self.expect_done(|e, now| e.submit(now, ReaderCommand::Deactivate))
    }

    /// Shows `text` (at most 32 characters) on the reader's display, e.g. "PRESENT CARD".
    pub fn display_text(&mut self, text: &str) -> Result<(), ReaderError> {
        self.expect_done(|e, now| e.display_text(now, text))
    }

    /// Makes the reader beep for `duration_ms`.
    pub fn beep(&mut self, duration_ms: u16) -> Result<(), ReaderError> {
        self.expect_done(|e, now| e.beep(now, duration_ms))
    }

    /// Cancels what the reader is doing on its own (a prompt, a card wait).
    pub fn cancel(&mut self) -> Result<(), ReaderError> {
        self.expect_done(|e, now| {
            e.cancel(now);
            Ok(())
        })
    }

    /// The reader's firmware version.
    pub fn firmware_version(&mut self) -> Result<String, ReaderError> {
        match self.run(|e, now| e.firmware_version(now))? {
            ReaderEvent::FirmwareVersion(v) => Ok(v),
            other => Err(Self::fail(other, "firmware version")),
        }
    }

    /// The reader's battery level in percent.
    pub fn battery_level(&mut self) -> Result<u8, ReaderError> {
        match self.run(|e, now| e.battery_level(now))? {
            ReaderEvent::Battery(level) => Ok(level),
            other => Err(Self::fail(other, "battery level")),
        }
    }

    /// Counters of the link (retransmissions, RESYNCHs, stale blocks, ...).
    pub fn link_stats(&self) -> LinkStats {
        self.engine.stats()
    }

    fn expect_done(
        &mut self,
        submit: impl FnOnce(&mut LinkEngine, u64) -> Result<(), LinkError>,
    ) -> Result<(), ReaderError> {
        match self.run(submit)? {
            ReaderEvent::Done(_) => Ok(()),
            other => Err(Self::fail(other, "reader command")),
        }
    }
}

impl ApduTransport for ReaderTransport {
    fn transceive(&mut self, capdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        match self.run(|e, now| e.send_apdu(now, capdu))? {
            ReaderEvent::ApduResponse(rapdu) => Ok(rapdu),
            other => Err(Self::fail(other, "APDU").into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use smartpos_sim::reader::{
        ChannelFaults, FnCard, LossyChannel, SimReader, SimReaderConfig, spawn_reader,
    };
    use std::sync::{Arc, Mutex};

    fn echo_card() -> FnCard<impl FnMut(&[u8]) -> Option<Vec<u8>> + Send> {
        FnCard(|capdu: &[u8]| {
            let mut r = capdu.to_vec();
            r.extend_from_slice(&[0x90, 0x00]);
            Some(r)
        })
    }

    fn fast() -> LinkConfig {
        LinkConfig {
            bwt_ms: 200,
            cwt_ms: 100,
            edc_grace_ms: 10,
            ..LinkConfig::default()
        }
    }

    #[test]
    fn apdus_and_reader_commands_over_a_threaded_lossy_link() {
        let faults = ChannelFaults {
            drop: 0.1,
            duplicate: 0.1,
            corrupt: 0.1,
            ..ChannelFaults::default()
        };
        // The notification callback gets the sender once the transport exists.
        let slot: Arc<Mutex<Option<ChunkSender>>> = Arc::default();
        let callback_slot = slot.clone();
        let deliver = Box::new(move |chunk: &[u8]| {
            if let Some(s) = callback_slot.lock().unwrap().as_ref() {
                s.push(chunk);
            }
        });
        let reader = SimReader::new(
            SimReaderConfig {
                bwt_ms: 200,
                cwt_ms: 100,
                edc_grace_ms: 10,
                ..SimReaderConfig::default()
            },
            echo_card(),
        );
        let (link, thread) = spawn_reader(
            reader,
            LossyChannel::new(21, faults, 1),
            LossyChannel::new(22, faults, 1),
            deliver,
        );
        let (mut t, sender) = ReaderTransport::new(Box::new(link), fast()).unwrap();
        *slot.lock().unwrap() = Some(sender);
        assert_eq!(t.firmware_version().unwrap(), "SIM-RDR 1.4.2");
        t.display_text("PRESENT CARD").unwrap();
        t.beep(120).unwrap();
        assert!(t.poll_card().unwrap().is_some());
        for n in 0..15u8 {
            let capdu = vec![0x00, 0xB2, n, 0x0C, 0x00];
            let mut want = capdu.clone();
            want.extend_from_slice(&[0x90, 0x00]);
            assert_eq!(t.transceive(&capdu).unwrap(), want);
        }
        drop(t);
        let reader = thread.join().unwrap();
        assert_eq!(reader.log().display, "PRESENT CARD");
        assert_eq!(reader.log().beeps, vec![120]);
        assert_eq!(reader.log().apdus_executed, 15, "each APDU ran once");
    }

    #[test]
    fn errors_map_to_transport_errors() {
        assert_eq!(
            TransportError::from(ReaderError::CardRemoved),
            TransportError::CardRemoved
        );
        assert_eq!(
            TransportError::from(ReaderError::Link(LinkError::Timeout)),
            TransportError::Timeout
        );
        assert_eq!(
            TransportError::from(ReaderError::Link(LinkError::TooManyRetries)),
            TransportError::Io
        );
        assert_eq!(
            TransportError::from(ReaderError::Disconnected),
            TransportError::Io
        );
    }

    struct Nowhere;

    impl ReaderLink for Nowhere {
        fn write(&self, _chunk: &[u8]) {}
    }

    #[test]
    fn dropped_sender_ends_the_call_as_disconnected() {
        let (mut t, sender) = ReaderTransport::new(Box::new(Nowhere), fast()).unwrap();
        drop(sender);
        assert_eq!(t.battery_level(), Err(ReaderError::Disconnected));
        assert_eq!(t.transceive(&[0, 0xA4, 4, 0]), Err(TransportError::Io));
    }

    #[test]
    fn silent_reader_times_out() {
        let (mut t, _sender) = ReaderTransport::new(
            Box::new(Nowhere),
            LinkConfig {
                bwt_ms: 5,
                max_retries: 1,
                max_resynch: 1,
                ..fast()
            },
        )
        .unwrap();
        assert_eq!(t.transceive(&[0, 0xA4, 4, 0]), Err(TransportError::Timeout));
    }
}
