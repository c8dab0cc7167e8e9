//! The acquirer's EMV parameters on the [`Terminal`]: download them from the host, read what
//! the journal keeps, set them from the app, and the records to load into the device's
//! certified kernel. Thin wrappers around `smartpos_terminal::params`; conversions below, in
//! one place.

use crate::error::SmartPosError;
use crate::stats;
use crate::terminal::Terminal;
use smartpos_terminal::api::params as core;

/// One application's parameters (UnionPay POS IC card parameter download, docs/messages.md).
/// Amounts are minor units of the terminal currency.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EmvAidParams {
    /// AID (9F06), 5 to 16 bytes.
    pub aid: Vec<u8>,
    /// Application selection indicator (DF01): 0 partial selection allowed, 1 exact only.
    pub asi: u8,
    /// Application version number (9F08/9F09), 2 bytes.
    pub app_version: Option<Vec<u8>>,
    /// Terminal action code, default (DF11), 5 bytes.
    pub tac_default: Option<Vec<u8>>,
    /// Terminal action code, denial (DF13), 5 bytes.
    pub tac_denial: Option<Vec<u8>>,
    /// Terminal action code, online (DF12), 5 bytes.
    pub tac_online: Option<Vec<u8>>,
    /// Terminal floor limit (9F1B).
    pub floor_limit: Option<u64>,
    /// Threshold value for biased random selection (DF15).
    pub threshold: Option<u64>,
    /// Maximum target percentage (DF16).
    pub max_target_percent: Option<u8>,
    /// Target percentage (DF17).
    pub target_percent: Option<u8>,
    /// Default DDOL (DF14).
    pub default_ddol: Option<Vec<u8>>,
    /// Default TDOL.
    pub default_tdol: Option<Vec<u8>>,
    /// Online PIN supported (DF18).
    pub online_pin: Option<bool>,
    /// Electronic cash terminal transaction limit (9F7B).
    pub ec_limit: Option<u64>,
    /// Contactless floor limit (DF19).
    pub contactless_floor_limit: Option<u64>,
    /// Contactless transaction limit (DF20).
    pub contactless_txn_limit: Option<u64>,
    /// Contactless CVM-required limit (DF21).
    pub contactless_cvm_limit: Option<u64>,
}

/// One certification authority public key (EMV Book 2 §5.2).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EmvCaKey {
    /// RID (9F06), 5 bytes.
    pub rid: Vec<u8>,
    /// Key index (9F22).
    pub index: u8,
    /// Expiry (DF05), `YYYYMMDD`.
    pub expiry: String,
    /// Hash algorithm (DF06): 1 SHA-1.
    pub hash_alg: u8,
    /// Public key algorithm (DF07): 1 RSA.
    pub pk_alg: u8,
    /// Modulus (DF02).
    pub modulus: Vec<u8>,
    /// Exponent (DF04): 1 or 3 bytes.
    pub exponent: Vec<u8>,
    /// Checksum (DF03): SHA-1 over RID, index, modulus and exponent; checked when given.
    pub checksum: Option<Vec<u8>>,
}

/// The EMV parameters a terminal keeps.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EmvParams {
    /// Application parameters, one per AID.
    pub aids: Vec<EmvAidParams>,
    /// CA public keys.
    pub ca_keys: Vec<EmvCaKey>,
}

/// The parameters as the BER-TLV records the host delivered, one per AID and per CA key, for
/// a device kernel's own loading calls (Sunmi `EMVOptV2.addAid` / `addCapk`, PAX's
/// equivalents).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EmvParamRecords {
    /// One TLV record per AID.
    pub aids: Vec<Vec<u8>>,
    /// One TLV record per CA key.
    pub ca_keys: Vec<Vec<u8>>,
}

#[uniffi::export]
impl Terminal {
    /// Downloads the EMV parameters from the host (UnionPay POS: 60.3 372/370/371 for the CA
    /// keys, 382/380/381 for the AIDs), keeps them in the journal with an audit row and
    /// configures the SDK's own contactless kernel with them. Nothing is kept when a step
    /// fails; a dialect without these messages throws before anything is sent.
    pub async fn download_emv_params(&self) -> Result<EmvParams, SmartPosError> {
        stats::counted(self.run(move |mut g| async move {
            let t = g.as_mut().ok_or(SmartPosError::Closed)?;
            Ok(EmvParams::from(t.admin().download_params().await?))
        }))
        .await
    }

    /// The EMV parameters the journal keeps (`null` before the first download or set).
    pub fn emv_params(&self) -> Result<Option<EmvParams>, SmartPosError> {
        stats::call();
        self.with_core(|t| Ok(t.admin().terminal_params()?.map(EmvParams::from)))
    }

    /// Sets the EMV parameters without the host (the app's own), validated as a download is
    /// (lengths, algorithms, CA key checksums, no duplicates), kept with an audit row naming
    /// the logged-in operator.
    pub fn set_emv_params(&self, params: EmvParams) -> Result<(), SmartPosError> {
        stats::call();
        let params = core::TerminalParams::from(params);
        self.with_core(move |t| Ok(t.admin().set_terminal_params(params)?))
    }

    /// The kept parameters as TLV records, to load into the device's certified kernel when it
    /// starts and after each download (`null` when none are kept).
    pub fn emv_param_records(&self) -> Result<Option<EmvParamRecords>, SmartPosError> {
        stats::call();
        self.with_core(|t| {
            Ok(t.admin().terminal_params()?.map(|p| EmvParamRecords {
                aids: p.aids.iter().map(core::AidParams::to_tlv).collect(),
                ca_keys: p.ca_keys.iter().map(core::CaPublicKey::to_tlv).collect(),
            }))
        })
    }
}

impl From<core::TerminalParams> for EmvParams {
    fn from(p: core::TerminalParams) -> Self {
        EmvParams {
            aids: p.aids.into_iter().map(EmvAidParams::from).collect(),
            ca_keys: p.ca_keys.into_iter().map(EmvCaKey::from).collect(),
        }
    }
}

impl From<EmvParams> for core::TerminalParams {
    fn from(p: EmvParams) -> Self {
        core::TerminalParams {
            aids: p.aids.into_iter().map(core::AidParams::from).collect(),
            ca_keys: p.ca_keys.into_iter().map(core::CaPublicKey::from).collect(),
        }
    }
}

/// Both directions of a record whose fields have the same names and types on both sides.
macro_rules! same_fields {
    ($ffi:ident, $core:path, { $($f:ident),* $(,)? }) => {
        impl From<$core> for $ffi {
            fn from(c: $core) -> Self {
                $ffi { $($f: c.$f),* }
            }
        }
        impl From<$ffi> for $core {
            fn from(c: $ffi) -> Self {
                $core { $($f: c.$f),* }
            }
        }
    };
}

same_fields!(EmvAidParams, core::AidParams, {
    aid, asi, app_version, tac_default, tac_denial, tac_online, floor_limit, threshold,
    max_target_percent, target_percent, default_ddol, default_tdol, online_pin, ec_limit,
    contactless_floor_limit, contactless_txn_limit, contactless_cvm_limit,
});

same_fields!(EmvCaKey, core::CaPublicKey, {
    rid, index, expiry, hash_alg, pk_alg, modulus, exponent, checksum,
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_cross_the_ffi_unchanged() {
        let core = smartpos_sim::emv_params::test_params();
        let back = core::TerminalParams::from(EmvParams::from(core.clone()));
        assert_eq!(back, core);
    }
}
