//! EMV terminal parameters on the terminal: the download from the host (an engine command, so
//! its STANs are journaled like any other), and the set kept in the journal's `meta` table as
//! JSON under [`PARAMS_META_KEY`], beside the receipt settings.
//!
//! The set configures our own contactless kernel on open and whenever it changes (accepted
//! AIDs and per-AID contactless limits, [`kernel_config`]); the device's certified kernel gets
//! it through [`Admin::load_params_into`].
//!
//! Every way in validates the set ([`TerminalParams::validate`]: lengths, algorithms, CA key
//! checksums, no duplicates) and writes an audit row with the change, in one transaction.

use crate::facets::Admin;
use crate::runtime::{Terminal, TerminalError};
use smartpos_emv::certified::CertifiedKernel;
use smartpos_emv::kernel::{AidParams as KernelAidParams, ContactlessLimits, KernelConfig};
use smartpos_txn::engine::{OpError, Outcome};
use smartpos_txn::params::{AidParams, CaPublicKey, TerminalParams};

/// Journal meta key of the EMV parameters.
pub const PARAMS_META_KEY: &str = "emv_params";

/// The audit trail's words for a parameter set (identifiers only, no key material).
fn summary(p: &TerminalParams) -> String {
    let aids: Vec<String> = p
        .aids
        .iter()
        .map(|a| smartpos_types::hex::encode(&a.aid))
        .collect();
    let keys: Vec<String> = p.ca_keys.iter().map(|k| k.id()).collect();
    format!(
        "{} AID(s) [{}], {} CA key(s) [{}]",
        aids.len(),
        aids.join(" "),
        keys.len(),
        keys.join(" ")
    )
}

impl Terminal {
    pub(crate) fn store_params(
        &mut self,
        params: &TerminalParams,
        action: &'static str,
    ) -> Result<(), TerminalError> {
        params
            .validate()
            .map_err(|e| TerminalError::Op(OpError::Params(e)))?;
        let json = serde_json::to_string(params)
            .map_err(|e| TerminalError::Config(format!("EMV parameters: {e}")))?;
        let entry = self.audit_entry(action, summary(params));
        self.journal
            .set_meta_audited(PARAMS_META_KEY, &json, &entry)?;
        self.kernel = kernel_config(&self.kernel, params);
        Ok(())
    }
}

/// Our own kernel's configuration with the host's parameters: the accepted AIDs are the
/// host's, and an AID with contactless limits (DF19 floor, DF20 transaction, DF21 CVM) gets
/// them in place of the default limits.
pub fn kernel_config(base: &KernelConfig, params: &TerminalParams) -> KernelConfig {
    let mut k = base.clone();
    if params.aids.is_empty() {
        return k;
    }
    k.supported_aids = params.aids.iter().map(|a| a.aid.clone()).collect();
    k.aid_params = params
        .aids
        .iter()
        .filter(|a| {
            a.contactless_floor_limit.is_some()
                || a.contactless_txn_limit.is_some()
                || a.contactless_cvm_limit.is_some()
        })
        .map(|a| KernelAidParams {
            aid: a.aid.clone(),
            limits: ContactlessLimits {
                transaction_limit: a.contactless_txn_limit.or(base.limits.transaction_limit),
                cvm_required_limit: a
                    .contactless_cvm_limit
                    .unwrap_or(base.limits.cvm_required_limit),
                floor_limit: a.contactless_floor_limit.unwrap_or(base.limits.floor_limit),
            },
        })
        .collect();
    k
}

impl<'a> Admin<'a> {
    /// Downloads the EMV parameters from the host (CA public keys: 60.3 372/370/371; AIDs:
    /// 382/380/381), validates them and keeps them in the journal, replacing the stored set,
    /// with an audit row (`emv_params_download`). Nothing is stored when any step fails; a
    /// profile without the messages (`iso87b`, `iso87a`) fails with
    /// [`smartpos_txn::params::ParamError::NotSupported`] before anything is sent.
    pub async fn download_params(self) -> Result<TerminalParams, TerminalError> {
        let now = self.t.now();
        self.t.engine.start_param_download(now);
        let params = match self.t.run_admin().await? {
            Outcome::ParamsDownloaded(p) => p,
            other => {
                return Err(TerminalError::Op(OpError::Proto(format!(
                    "unexpected outcome {other:?}"
                ))));
            }
        };
        self.t.store_params(&params, "emv_params_download")?;
        Ok(params)
    }

    /// The EMV parameters kept in the journal; `None` before the first download or set. A
    /// stored value that no longer parses or validates is a corrupt journal.
    pub fn terminal_params(self) -> Result<Option<TerminalParams>, TerminalError> {
        let Some(json) = self.t.journal.meta(PARAMS_META_KEY)? else {
            return Ok(None);
        };
        let corrupt = || {
            TerminalError::Journal(crate::journal::JournalError::Corrupt {
                what: "EMV parameters",
            })
        };
        let p: TerminalParams = serde_json::from_str(&json).map_err(|_| corrupt())?;
        p.validate().map_err(|_| corrupt())?;
        Ok(Some(p))
    }

    /// Sets the EMV parameters without the host (the app's own, or an acquirer profile's):
    /// validated as a download is, kept in the journal with an audit row (`emv_params_set`)
    /// naming the logged-in operator.
    pub fn set_terminal_params(self, params: TerminalParams) -> Result<(), TerminalError> {
        self.t.store_params(&params, "emv_params_set")
    }

    /// Hands the kept EMV parameters to the device's certified kernel
    /// ([`CertifiedKernel::load_parameters`]: each AID and CA key as the TLV record the host
    /// delivered). Apps call it when the kernel starts and after [`Admin::download_params`];
    /// nothing happens when no parameters are kept.
    pub fn load_params_into(self, kernel: &mut dyn CertifiedKernel) -> Result<(), TerminalError> {
        let Some(params) = self.t.admin().terminal_params()? else {
            return Ok(());
        };
        let aids: Vec<Vec<u8>> = params.aids.iter().map(AidParams::to_tlv).collect();
        let keys: Vec<Vec<u8>> = params.ca_keys.iter().map(CaPublicKey::to_tlv).collect();
        kernel
            .load_parameters(&aids, &keys)
            .map_err(|e| TerminalError::Card(crate::card::CardError::Bridge(e)))
    }
}
