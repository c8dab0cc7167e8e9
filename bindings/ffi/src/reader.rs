//! The mPOS card reader over Bluetooth: the app's [`ReaderLink`] (its write direction), the
//! [`ChunkSender`] its notification callback feeds, and [`MposReader`], whose
//! [`MposReader::transport`] is an [`ApduTransport`] for `saleContactless`.
//!
//! Thin wrappers over `smartpos_terminal::reader::ReaderTransport`. Reader calls block the
//! calling thread for at most the link's command timeout (call them from `Dispatchers.IO`);
//! during a contactless sale the card loop calls the transport on the terminal's worker thread.

use crate::callbacks::CallbackError;
use crate::contactless::{ApduTransport, CardTransportError};
use crate::error::SmartPosError;
use crate::reentry::{self, Callback};
use crate::stats;
use smartpos_terminal::api::card::{ApduTransport as _, TransportError};
use smartpos_terminal::api::reader::{
    self as core_reader, LinkConfig, ReaderError, ReaderTransport,
};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The app's write direction of the Bluetooth link: a GATT write without response to the
/// reader's RX characteristic, or an SPP socket write. A failed write is simply lost (the
/// link protocol retransmits). Called with the reader busy (and during a sale on the terminal's
/// worker thread): do not call the reader or the terminal from here.
#[uniffi::export(with_foreign)]
pub trait ReaderLink: Send + Sync {
    /// Writes one chunk (at most ATT MTU - 3 bytes on BLE).
    fn write(&self, chunk: Vec<u8>) -> Result<(), CallbackError>;
}

struct LinkAdapter(Arc<dyn ReaderLink>);

impl core_reader::ReaderLink for LinkAdapter {
    fn write(&self, chunk: &[u8]) {
        stats::callback();
        if let Err(e) = reentry::call_app(Callback::ReaderLink, || self.0.write(chunk.to_vec())) {
            log::info!("reader write lost: {e}");
        }
    }
}

/// What the app's notification callback holds: hands every received chunk to the reader
/// transport. Usable from any thread.
#[derive(Debug, uniffi::Object)]
pub struct ChunkSender(core_reader::ChunkSender);

#[uniffi::export]
impl ChunkSender {
    /// Delivers one received chunk; false when the reader object is gone.
    pub fn push(&self, chunk: Vec<u8>) -> bool {
        stats::call();
        self.0.push(&chunk)
    }
}

impl ChunkSender {
    /// The core sender (for the test kit's simulated reader).
    #[cfg_attr(not(feature = "testkit"), allow(dead_code))]
    pub(crate) fn core(&self) -> core_reader::ChunkSender {
        self.0.clone()
    }
}

fn reader_err(e: ReaderError) -> SmartPosError {
    crate::convert::card_read_failed(e.to_string())
}

/// An mPOS card reader on the app's Bluetooth link.
#[derive(uniffi::Object)]
pub struct MposReader {
    transport: Arc<Mutex<ReaderTransport>>,
    sender: Arc<ChunkSender>,
}

impl std::fmt::Debug for MposReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MposReader").finish_non_exhaustive()
    }
}

fn lock(t: &Mutex<ReaderTransport>) -> MutexGuard<'_, ReaderTransport> {
    // A panic cannot leave the transport torn: the engine state is updated per event.
    t.lock().unwrap_or_else(|p| p.into_inner())
}

#[uniffi::export]
impl MposReader {
    /// A reader writing through `link`. `att_mtu` is the negotiated BLE ATT MTU (`None` for
    /// an SPP byte stream); the other link parameters are the SDK's defaults (CRC-16, IFS 32).
    #[uniffi::constructor]
    pub fn new(
        link: Arc<dyn ReaderLink>,
        att_mtu: Option<u16>,
    ) -> Result<Arc<Self>, SmartPosError> {
        stats::call();
        let cfg = LinkConfig {
            att_mtu,
            ..LinkConfig::default()
        };
        let (transport, sender) =
            ReaderTransport::new(Box::new(LinkAdapter(link)), cfg).map_err(reader_err)?;
        Ok(Arc::new(MposReader {
            transport: Arc::new(Mutex::new(transport)),
            sender: Arc::new(ChunkSender(sender)),
        }))
    }

    /// The sender the app's notification callback feeds.
    pub fn chunk_sender(&self) -> Arc<ChunkSender> {
        stats::call();
        Arc::clone(&self.sender)
    }

    /// Polls for a card every 100 ms for up to `timeout_ms`; whether one was activated.
    pub fn wait_for_card(&self, timeout_ms: u64) -> Result<bool, SmartPosError> {
        stats::call();
        let timeout = Duration::from_millis(timeout_ms);
        let card = lock(&self.transport)
            .wait_for_card(timeout, Duration::from_millis(100))
            .map_err(reader_err)?;
        Ok(card.is_some())
    }

    /// Shows `text` (at most 32 characters) on the reader's display.
    pub fn display_text(&self, text: String) -> Result<(), SmartPosError> {
        stats::call();
        lock(&self.transport)
            .display_text(&text)
            .map_err(reader_err)
    }

    /// Makes the reader beep for `duration_ms`.
    pub fn beep(&self, duration_ms: u16) -> Result<(), SmartPosError> {
        stats::call();
        lock(&self.transport).beep(duration_ms).map_err(reader_err)
    }

    /// Turns the field off.
    pub fn deactivate(&self) -> Result<(), SmartPosError> {
        stats::call();
        lock(&self.transport).deactivate().map_err(reader_err)
    }

    /// The reader's firmware version.
    pub fn firmware_version(&self) -> Result<String, SmartPosError> {
        stats::call();
        lock(&self.transport).firmware_version().map_err(reader_err)
    }

    /// The reader's battery level in percent.
    pub fn battery_level(&self) -> Result<u8, SmartPosError> {
        stats::call();
        lock(&self.transport).battery_level().map_err(reader_err)
    }

    /// The reader as the card transport of `saleContactless` / `preauthContactless`.
    pub fn transport(&self) -> Arc<dyn ApduTransport> {
        stats::call();
        Arc::new(ReaderApdu(Arc::clone(&self.transport)))
    }
}

/// The reader transport seen as the app-facing [`ApduTransport`].
struct ReaderApdu(Arc<Mutex<ReaderTransport>>);

impl ApduTransport for ReaderApdu {
    fn transceive(&self, apdu: Vec<u8>) -> Result<Vec<u8>, CardTransportError> {
        lock(&self.0).transceive(&apdu).map_err(|e| {
            let reason = "mPOS reader".to_owned();
            match e {
                TransportError::CardRemoved => CardTransportError::CardRemoved { reason },
                TransportError::Timeout => CardTransportError::Timeout { reason },
                _ => CardTransportError::Io { reason },
            }
        })
    }
}
