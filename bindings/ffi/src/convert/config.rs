//! Terminal and TLS settings from Kotlin, and how they become the core's configuration.

use super::*;

/// Terminal settings (no secrets: the TMK comes from the [`crate::SecureStore`]).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TerminalConfig {
    /// Terminal id (field 41), 8 characters.
    pub tid: String,
    /// Merchant id (field 42), 15 characters.
    pub mid: String,
    /// Host address `host:port`.
    pub host: String,
    /// Built-in host profile: `cup` or `iso87b`.
    #[uniffi(default = "cup")]
    pub dialect: String,
    /// ISO 4217 numeric currency, e.g. `156` (CNY).
    #[uniffi(default = "156")]
    pub currency: String,
    /// TLS settings; `None` is plain TCP.
    #[uniffi(default = None)]
    pub tls: Option<TlsConfig>,
    /// Limit for TCP connect plus TLS handshake, milliseconds.
    #[uniffi(default = 10000)]
    pub connect_timeout_ms: u64,
    /// How long to wait for an answer before reversing, milliseconds.
    #[uniffi(default = 30000)]
    pub response_timeout_ms: u64,
    /// Offset of the terminal's local time from UTC, minutes (fields 12/13).
    #[uniffi(default = 0)]
    pub utc_offset_minutes: i32,
    /// An acquirer profile (TOML text, `docs/profiles.md`) used instead of the built-in
    /// `dialect`: message layout, MAC, and the key options (working keys or DUKPT, SM4, PIN
    /// block format). `None`: the built-in profile named by `dialect`.
    #[uniffi(default = None)]
    pub profile_toml: Option<String>,
}

/// TLS settings of the host link.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct TlsConfig {
    /// PEM `CERTIFICATE` blocks of the roots to trust.
    pub ca_pem: String,
    /// Name the host certificate must carry (DNS name or IP literal).
    pub server_name: String,
    /// Optional pin: hex SHA-256 of the leaf certificate's DER (64 hex digits).
    #[uniffi(default = None)]
    pub pin_sha256_hex: Option<String>,
    /// Mutual TLS: the terminal's client certificate chain, PEM (leaf first) or one DER
    /// certificate, presented when the host asks for one. `None`: no client certificate.
    #[uniffi(default = None)]
    pub client_certificate: Option<Vec<u8>>,
    /// The client certificate's private key, PEM or DER (PKCS#8, SEC1 or PKCS#1; ECDSA
    /// P-256/P-384 or RSA). `None` with a `client_certificate`: read from the `SecureStore`
    /// as `tls_client_key` when the terminal opens. Kept zeroized inside Rust afterwards.
    #[uniffi(default = None)]
    pub client_key: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_pem_len", &self.ca_pem.len())
            .field("server_name", &self.server_name)
            .field("pin_sha256_hex", &self.pin_sha256_hex)
            .field(
                "client_certificate_len",
                &self.client_certificate.as_ref().map(Vec::len),
            )
            .field(
                "client_key",
                &self.client_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Kotlin input → core.

impl TerminalConfig {
    /// The profile: [`TerminalConfig::profile_toml`] loaded and checked, or the built-in one
    /// of `dialect`.
    pub(crate) fn profile(&self) -> Result<smartpos_terminal::api::Profile, SmartPosError> {
        use smartpos_terminal::api::Profile;
        match &self.profile_toml {
            Some(text) => {
                Profile::from_toml(text).map_err(|e| SmartPosError::config(format!("profile: {e}")))
            }
            None => Profile::by_name(&self.dialect).ok_or_else(|| {
                SmartPosError::config(format!("unknown dialect {:?}", self.dialect))
            }),
        }
    }

    /// The core configuration, with the client certificate's key taken from `store` when the
    /// record names a certificate without its key.
    pub(crate) fn to_core_with(
        &self,
        store: &dyn smartpos_terminal::api::store::SecureStore,
    ) -> Result<smartpos_terminal::api::TerminalConfig, SmartPosError> {
        let mut cfg = self.to_core()?;
        let Some(t) = &self.tls else {
            return Ok(cfg);
        };
        let Some(chain) = &t.client_certificate else {
            if t.client_key.is_some() {
                return Err(SmartPosError::config(
                    "tls.client_key without tls.client_certificate",
                ));
            }
            return Ok(cfg);
        };
        let key = match &t.client_key {
            Some(k) => zeroize::Zeroizing::new(k.clone()),
            None => store
                .get(smartpos_terminal::api::store::TLS_CLIENT_KEY)
                .map_err(SmartPosError::config)?
                .ok_or_else(|| {
                    SmartPosError::config(format!(
                        "tls.client_certificate without tls.client_key, and no {} in the SecureStore",
                        smartpos_terminal::api::store::TLS_CLIENT_KEY
                    ))
                })?,
        };
        let identity = smartpos_terminal::api::ClientIdentity::new(chain, &key)
            .map_err(|e| SmartPosError::config(format!("tls: {e}")))?;
        if let Some(tls) = cfg.link.tls.as_mut() {
            tls.client_identity = Some(identity);
        }
        Ok(cfg)
    }

    /// The core configuration (without a client certificate: see [`TerminalConfig::to_core_with`]).
    pub(crate) fn to_core(&self) -> Result<smartpos_terminal::api::TerminalConfig, SmartPosError> {
        let tls = match &self.tls {
            None => None,
            Some(t) => {
                let mut c = TlsClientConfig::new(t.ca_pem.as_bytes(), t.server_name.clone());
                if let Some(pin) = &t.pin_sha256_hex {
                    c.pin_sha256 = Some(
                        smartpos_types::hex::decode_array(pin)
                            .map_err(|_| SmartPosError::config("pin must be 64 hex digits"))?,
                    );
                }
                Some(c)
            }
        };
        Ok(smartpos_terminal::api::TerminalConfig::from_settings(
            smartpos_terminal::api::ConfigSettings {
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
