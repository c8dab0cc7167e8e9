//! Where a terminal keeps its secrets and its settings.
//!
//! [`SecureStore`] is implemented by the app (on Android: values wrapped by an Android Keystore
//! AES-GCM key). It holds the terminal master key (`tmk`) and the journal key (`journal_key`).
//! [`load_module`] makes the software security module over that TMK; a terminal whose keys are
//! in a security processor opens with the device's module instead and keeps no `tmk` here.
//! [`FileSecureStore`] keeps them in plain files with mode 0600: it exists for the CLI, tests and
//! development, and it is NOT a secure store.
//!
//! [`DataDir`] is the on-disk layout the CLI uses: `terminal.json` (settings, no secrets),
//! `journal.db` (SQLite) and the development secure store under `secrets/`. All of it is
//! readable by its owner only (0600 files, 0700 directories, see `files.rs`), narrowed on every
//! open when found wider.

use crate::journal::JournalKey;
use crate::link::TlsClientConfig;
use crate::runtime::{ConfigSettings, Terminal, TerminalConfig, TerminalError};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use smartpos_crypto::keys::TdesKey;
use smartpos_crypto::module::{SecurityModule, SoftwareModule};
use std::path::{Path, PathBuf};
use std::sync::Arc;
/// The wrapper [`SecureStore::get`] returns (re-exported so implementors need no `zeroize`
/// dependency of their own).
pub use zeroize::Zeroizing;

/// Storage for secrets, implemented by the app.
pub trait SecureStore: Send + Sync {
    /// Reads a secret; `None` when absent.
    fn get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, String>;
    /// Writes a secret.
    fn put(&self, name: &str, value: &[u8]) -> Result<(), String>;
}

/// A development store: one file per secret, mode 0600. Not secure; for CLI and tests.
#[derive(Debug, Clone)]
pub struct FileSecureStore {
    dir: PathBuf,
}

impl FileSecureStore {
    /// A store in `dir` (created if needed).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileSecureStore { dir: dir.into() }
    }

    /// Narrows the store's directory to 0700 and every file in it to 0600 (they are created
    /// that way; an older SDK made the directory 0755). A mode that cannot be changed is
    /// logged.
    pub fn narrow_modes(&self) {
        if !self.dir.exists() {
            return;
        }
        let mut paths = vec![];
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            paths.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()));
        }
        if let Err(e) = crate::files::owner_only_dir(&self.dir) {
            log::warn!("cannot narrow the secure store directory ({})", e.kind());
        }
        for p in paths {
            if let Err(e) = crate::files::owner_only_file(&p) {
                log::warn!("cannot narrow a secure store file ({})", e.kind());
            }
        }
    }
}

impl SecureStore for FileSecureStore {
    fn get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
        match std::fs::read(self.dir.join(name)) {
            Ok(v) => Ok(Some(Zeroizing::new(v))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read secret {name}: {}", e.kind())),
        }
    }

    fn put(&self, name: &str, value: &[u8]) -> Result<(), String> {
        crate::files::owner_only_dir(&self.dir)
            .map_err(|e| format!("cannot create store: {}", e.kind()))?;
        // Written to a temporary file, synced, then renamed over the old value: a crash or a
        // power cut leaves the old value or the new one, never a torn file (the journal guard
        // is rewritten while the terminal runs, see `guard.rs`).
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = crate::files::owner_only_options()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            // A temporary file left wider by an older SDK keeps its mode when reopened.
            crate::files::owner_only_file(&tmp)?;
            f.write_all(value)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| format!("cannot write secret {name}: {}", e.kind()))?;
        Ok(())
    }
}

/// Terminal settings as stored in `terminal.json`. No secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredConfig {
    /// Host address `host:port`.
    pub host: String,
    /// Built-in profile: `cup` or `iso87b`.
    pub dialect: String,
    /// Terminal id (8 characters).
    pub tid: String,
    /// Merchant id (15 characters).
    pub mid: String,
    /// ISO 4217 numeric currency.
    #[serde(default = "default_currency")]
    pub currency: String,
    /// PEM file of the CA to trust; TLS is used when set.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// Name the host certificate must carry (defaults to the host part of `host`).
    #[serde(default)]
    pub tls_server_name: Option<String>,
    /// Optional certificate pin (hex SHA-256 of the leaf certificate DER).
    #[serde(default)]
    pub tls_pin_sha256: Option<String>,
    /// Mutual TLS: PEM file of the terminal's client certificate chain (leaf first). Its key
    /// is in the secure store as [`TLS_CLIENT_KEY`], never in this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_cert: Option<PathBuf>,
    /// Connect timeout in milliseconds.
    #[serde(default = "default_connect_ms")]
    pub connect_timeout_ms: u64,
    /// Response timeout in milliseconds.
    #[serde(default = "default_response_ms")]
    pub response_timeout_ms: u64,
    /// Local time offset from UTC in minutes (`init --utc-offset`): fields 12/13, receipts,
    /// the support bundle.
    #[serde(default)]
    pub utc_offset_minutes: i32,
    /// Merchant name printed on receipts (none: the receipt prints no name).
    #[serde(default)]
    pub merchant_name: Option<String>,
    /// An acquirer profile file (TOML, see docs/profiles.md) used instead of the built-in
    /// profile named by `dialect`.
    #[serde(default)]
    pub profile: Option<PathBuf>,
}

/// The secure store's name for the private key of the terminal's TLS client certificate
/// (PEM or DER, PKCS#8, SEC1 or PKCS#1; ECDSA P-256/P-384 or RSA).
pub const TLS_CLIENT_KEY: &str = "tls_client_key";

/// The client identity for `cert` (a PEM or DER file) with the key from `store`.
pub fn client_identity(
    cert: &Path,
    store: &dyn SecureStore,
) -> Result<crate::link::ClientIdentity, TerminalError> {
    let chain = std::fs::read(cert).map_err(|e| {
        TerminalError::Config(format!(
            "cannot read client certificate {}: {}",
            cert.display(),
            e.kind()
        ))
    })?;
    let key = store
        .get(TLS_CLIENT_KEY)
        .map_err(TerminalError::Config)?
        .ok_or_else(|| {
            TerminalError::Config(format!(
                "no {TLS_CLIENT_KEY} in the secure store for the client certificate {}",
                cert.display()
            ))
        })?;
    crate::link::ClientIdentity::new(&chain, &key)
        .map_err(|e| TerminalError::Config(format!("{}: {e}", cert.display())))
}

fn default_currency() -> String {
    "156".into()
}
fn default_connect_ms() -> u64 {
    10_000
}
fn default_response_ms() -> u64 {
    30_000
}

impl StoredConfig {
    /// Turns stored settings into a runtime configuration (reads the CA file).
    pub fn to_config(&self) -> Result<TerminalConfig, TerminalError> {
        let tls = match &self.tls_ca {
            None => None,
            Some(ca) => {
                let pem = std::fs::read(ca).map_err(|e| {
                    TerminalError::Config(format!(
                        "cannot read CA file {}: {}",
                        ca.display(),
                        e.kind()
                    ))
                })?;
                let name = self.tls_server_name.clone().unwrap_or_else(|| {
                    self.host
                        .rsplit_once(':')
                        .map_or(self.host.clone(), |(h, _)| {
                            h.trim_matches(['[', ']']).to_owned()
                        })
                });
                let mut t = TlsClientConfig::new(pem, name);
                if let Some(pin) = &self.tls_pin_sha256 {
                    t.pin_sha256 =
                        Some(smartpos_types::hex::decode_array(pin).map_err(|_| {
                            TerminalError::Config("pin must be 64 hex digits".into())
                        })?);
                }
                Some(t)
            }
        };
        Ok(TerminalConfig::from_settings(
            ConfigSettings {
                tid: &self.tid,
                mid: &self.mid,
                currency: &self.currency,
                dialect: &self.dialect,
                host: &self.host,
                connect_timeout_ms: self.connect_timeout_ms,
                response_timeout_ms: self.response_timeout_ms,
                utc_offset_minutes: self.utc_offset_minutes,
            },
            tls,
        ))
    }
}

/// The TMK and journal key from a secure store; the journal key is created on first use.
pub fn load_keys(store: &dyn SecureStore) -> Result<(TdesKey, JournalKey), TerminalError> {
    let tmk = store
        .get("tmk")
        .map_err(TerminalError::Config)?
        .ok_or_else(|| {
            TerminalError::Config("no terminal master key in the secure store".into())
        })?;
    let tmk = TdesKey::new(&tmk)
        .map_err(|e| TerminalError::Config(format!("stored TMK unusable: {e}")))?;
    Ok((tmk, load_journal_key(store)?))
}

/// The journal key from a secure store, created on first use. A terminal whose keys are in a
/// security processor needs only this from the store (no `tmk`).
pub fn load_journal_key(store: &dyn SecureStore) -> Result<JournalKey, TerminalError> {
    let jk = match store.get("journal_key").map_err(TerminalError::Config)? {
        Some(k) => k,
        None => {
            let mut k = Zeroizing::new(vec![0u8; 32]);
            SystemRandom::new()
                .fill(&mut k)
                .map_err(|_| TerminalError::Config("no randomness for the journal key".into()))?;
            store
                .put("journal_key", &k)
                .map_err(TerminalError::Config)?;
            k
        }
    };
    let arr: [u8; 32] = jk
        .as_slice()
        .try_into()
        .map_err(|_| TerminalError::Config("stored journal key must be 32 bytes".into()))?;
    Ok(JournalKey::new(arr))
}

/// The software security module over the TMK in `store` (see [`load_keys`]), and the journal
/// key: what a terminal without a security processor (mPOS, the CLI, JVM tests) opens with.
pub fn load_module(
    store: &dyn SecureStore,
) -> Result<(Arc<dyn SecurityModule>, JournalKey), TerminalError> {
    let (tmk, jk) = load_keys(store)?;
    Ok((Arc::new(SoftwareModule::new(tmk)), jk))
}

/// [`load_module`] for a profile's key options: with SM4 keys (`[keys] algorithm = "sm4"`) the
/// TMK's 16 bytes are the SM4 master key at index 0; with DUKPT the module gets the device
/// `init` stored (`dukpt_store.rs`) and saves every reservation back into `store`.
pub fn load_module_for(
    store: Arc<dyn SecureStore>,
    profile: &smartpos_txn::proto::Profile,
) -> Result<(Arc<dyn SecurityModule>, JournalKey), TerminalError> {
    let (tmk, jk) = load_keys(store.as_ref())?;
    let mut module = SoftwareModule::new(tmk.clone());
    if profile.keys.cipher == smartpos_txn::profile::KeyCipher::Sm4 {
        let sm4 = smartpos_crypto::sm4::Sm4Key::new(tmk.expose())
            .map_err(|e| TerminalError::Config(format!("the TMK as an SM4 key: {e}")))?;
        module = module.with_sm4_master(0, sm4);
    }
    if let Some(d) = profile.keys.dukpt() {
        if let Some(device) = crate::dukpt_store::load_device(store.as_ref(), d.scheme)? {
            let saver = crate::dukpt_store::SecureDukptStore::new(Arc::clone(&store));
            module = module.with_dukpt(device, Box::new(saver));
        } else {
            log::warn!("no DUKPT key in the secure store: run init with the profile");
        }
    }
    Ok((Arc::new(module), jk))
}

/// Loads and validates an acquirer profile file; every error is reported with its line.
pub fn load_profile(path: &Path) -> Result<smartpos_txn::proto::Profile, TerminalError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        TerminalError::Config(format!(
            "cannot read profile {}: {}",
            path.display(),
            e.kind()
        ))
    })?;
    smartpos_txn::proto::Profile::from_toml(&text)
        .map_err(|e| TerminalError::Config(format!("profile {}: {e}", path.display())))
}

/// The CLI's data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    path: PathBuf,
}

impl DataDir {
    /// A data directory at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DataDir { path: path.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The development secure store inside it.
    pub fn store(&self) -> FileSecureStore {
        FileSecureStore::new(self.store_path())
    }

    /// Where the development secure store keeps its files (`secrets/`).
    pub fn store_path(&self) -> PathBuf {
        self.path.join("secrets")
    }

    /// Writes settings and the TMK (validated: a 16- or 24-byte TDES key).
    pub fn init(&self, cfg: &StoredConfig, tmk: &[u8]) -> Result<(), TerminalError> {
        TdesKey::new(tmk).map_err(|e| TerminalError::Config(format!("TMK: {e}")))?;
        cfg.to_config()?;
        if let Some(p) = &cfg.profile {
            load_profile(p)?;
        }
        crate::files::owner_only_dir(&self.path)
            .map_err(|e| TerminalError::Config(format!("cannot create data dir: {}", e.kind())))?;
        let json =
            serde_json::to_vec_pretty(cfg).map_err(|e| TerminalError::Config(e.to_string()))?;
        crate::files::write_owner_only(&self.path.join("terminal.json"), &json).map_err(|e| {
            TerminalError::Config(format!("cannot write terminal.json: {}", e.kind()))
        })?;
        self.store()
            .put("tmk", tmk)
            .map_err(TerminalError::Config)?;
        Ok(())
    }

    /// Reads the settings.
    pub fn config(&self) -> Result<StoredConfig, TerminalError> {
        let text = std::fs::read_to_string(self.path.join("terminal.json")).map_err(|e| {
            TerminalError::Config(format!(
                "no terminal.json in {} ({}): run `init` first",
                self.path.display(),
                e.kind()
            ))
        })?;
        serde_json::from_str(&text)
            .map_err(|e| TerminalError::Config(format!("terminal.json: {e}")))
    }

    /// Opens the terminal (recovery runs on open) under the journal guard in the development
    /// store (see `guard.rs`): a missing, emptied, foreign or rolled-back journal is refused.
    pub fn open(&self) -> Result<Terminal, TerminalError> {
        self.open_with_stan_block(crate::guard::STAN_BLOCK)
    }

    /// Narrows the directory (0700), `terminal.json` and the development store to their owner
    /// (the journal's files are narrowed by `Journal::open`). Called on every open; a mode
    /// that cannot be changed (a read-only file system) is logged, not fatal.
    pub fn narrow_modes(&self) {
        if !self.path.is_dir() {
            return;
        }
        if let Err(e) = crate::files::owner_only_dir(&self.path) {
            log::warn!("cannot narrow the data directory ({})", e.kind());
        }
        if let Err(e) = crate::files::owner_only_file(&self.path.join("terminal.json")) {
            log::warn!("cannot narrow terminal.json ({})", e.kind());
        }
        self.store().narrow_modes();
    }

    /// The journal file.
    pub fn journal_path(&self) -> PathBuf {
        self.path.join("journal.db")
    }

    /// Support's journal reset (see [`crate::guard::reset_journal`]): the old journal is moved
    /// aside, a new one continues the STAN after the guard's reservation with the next batch.
    pub fn reset_journal(&self) -> Result<crate::guard::JournalReset, TerminalError> {
        self.narrow_modes();
        let store = self.store();
        let (_, jk) = load_keys(&store)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        crate::guard::reset_journal(
            &self.journal_path(),
            &jk,
            std::sync::Arc::new(store),
            crate::guard::STAN_BLOCK,
            now,
        )
    }

    /// [`DataDir::open`] with another STAN reservation size (tests use small blocks).
    pub fn open_with_stan_block(&self, stan_block: u32) -> Result<Terminal, TerminalError> {
        self.narrow_modes();
        let stored = self.config()?;
        let mut cfg = stored.to_config()?;
        // Settings first: a bad configuration must not create keys or a journal.
        cfg.validate()?;
        if let Some(cert) = &stored.tls_client_cert {
            let identity = client_identity(cert, &self.store())?;
            let tls = cfg.link.tls.as_mut().ok_or_else(|| {
                TerminalError::Config("a client certificate needs TLS (tls_ca)".into())
            })?;
            tls.client_identity = Some(identity);
        }
        let profile = match &stored.profile {
            Some(path) => Some(load_profile(path)?),
            None => {
                smartpos_txn::proto::Profile::by_name(&cfg.dialect).ok_or_else(|| {
                    TerminalError::Config(format!("unknown dialect {:?}", cfg.dialect))
                })?;
                None
            }
        };
        let store = self.store();
        let effective = match &profile {
            Some(p) => p.clone(),
            None => smartpos_txn::proto::Profile::by_name(&cfg.dialect).ok_or_else(|| {
                TerminalError::Config(format!("unknown dialect {:?}", cfg.dialect))
            })?,
        };
        let (module, jk) = load_module_for(std::sync::Arc::new(store.clone()), &effective)?;
        let mut t = Terminal::open_guarded(
            cfg,
            profile,
            &self.journal_path(),
            module,
            &jk,
            std::sync::Arc::new(store),
            stan_block,
        )?;
        if let Some(name) = &stored.merchant_name {
            let mut settings = t.receipts().receipt_settings().clone();
            settings.merchant.name = name.clone();
            t.receipts().set_receipt_settings(settings);
        }
        Ok(t)
    }
}
