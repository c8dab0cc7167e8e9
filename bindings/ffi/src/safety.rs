//! Operators and refund safety on the [`Terminal`]: login, password changes, cashier
//! management, the locked-supervisor unlock, the safety and receipt settings, the refund
//! quote, the policy-checked refund and the support bundle. Thin wrappers around
//! `smartpos_terminal::safety`; the records are in `convert.rs`.
//!
//! Passwords cross the FFI as Kotlin strings (the JVM cannot zeroize them); on the Rust side
//! they go straight into the core's zeroized `Password`, and they never appear in an error.

use crate::convert::{
    self, AmountRequest, LoginResult, OperatorSession, ReceiptSettings, RefundQuote,
    SafetySettings, TxnRecord, TxnResult,
};
use crate::error::SmartPosError;
use crate::stats;
use crate::terminal::Terminal;
use smartpos_terminal::api::Approval;
use smartpos_terminal::api::operators::Password;
use zeroize::Zeroizing;

#[uniffi::export]
impl Terminal {
    /// Logs operator `id` (`00` supervisor, `01`-`99` cashiers) in. A first login with the
    /// default password gives `MustChangePassword`; a wrong password throws `OperatorRefused`
    /// (its diagnosis says how many attempts are left before the operator is locked).
    pub fn login(&self, id: String, password: String) -> Result<LoginResult, SmartPosError> {
        stats::call();
        let password = Zeroizing::new(password);
        self.with_core(|t| Ok(t.operators().login(&id, &password)?.into()))
    }

    /// Changes an operator's password (the forced first change, or later) and logs it in.
    pub fn change_password(
        &self,
        id: String,
        old_password: String,
        new_password: String,
    ) -> Result<OperatorSession, SmartPosError> {
        stats::call();
        let (old, new) = (Zeroizing::new(old_password), Zeroizing::new(new_password));
        self.with_core(|t| Ok(t.operators().change_password(&id, &old, &new)?.into()))
    }

    /// Logs the current operator out (nothing happens when nobody is logged in).
    pub fn logout(&self) -> Result<(), SmartPosError> {
        stats::call();
        self.with_core(|t| Ok(t.operators().logout()?))
    }

    /// The logged-in operator, if any.
    pub fn session(&self) -> Result<Option<OperatorSession>, SmartPosError> {
        stats::call();
        self.with_core(|t| Ok(t.operators().session().cloned().map(OperatorSession::from)))
    }

    /// Adds cashier `id` with the default password (supervisor only).
    pub fn add_cashier(&self, id: String) -> Result<(), SmartPosError> {
        stats::call();
        self.with_core(|t| Ok(t.operators().add_cashier(&id)?))
    }

    /// Unlocks a locked cashier (supervisor only).
    pub fn unlock_cashier(&self, id: String) -> Result<(), SmartPosError> {
        stats::call();
        self.with_core(|t| Ok(t.operators().unlock_cashier(&id)?))
    }

    /// Resets a cashier's password to the default, with a forced change (supervisor only).
    pub fn reset_cashier_password(&self, id: String) -> Result<(), SmartPosError> {
        stats::call();
        self.with_core(|t| Ok(t.operators().reset_cashier_password(&id)?))
    }

    /// Removes cashier `id` (supervisor only); the cashier can no longer log in.
    pub fn delete_cashier(&self, id: String) -> Result<(), SmartPosError> {
        stats::call();
        self.with_core(|t| Ok(t.operators().delete_cashier(&id)?))
    }

    /// Starts the locked-supervisor flow: an 8-digit challenge the merchant reads to the
    /// acquirer's service desk, which answers with an 8-digit code for `unlock_supervisor`.
    /// A new challenge replaces the previous one.
    pub fn supervisor_unlock_challenge(&self) -> Result<String, SmartPosError> {
        stats::call();
        self.with_core(|t| Ok(t.operators().supervisor_unlock_challenge()?))
    }

    /// Completes the locked-supervisor flow with the service desk's `code`; `secret` is the
    /// unlock secret shared with the service desk (from the app's secure storage). On success
    /// the supervisor is unlocked with the default password and must change it at the next
    /// login. A wrong code throws `OperatorRefused` and uses the challenge up (ask for a new
    /// one); no challenge is a `Config` error. Both outcomes are audited.
    pub fn unlock_supervisor(&self, code: String, secret: Vec<u8>) -> Result<(), SmartPosError> {
        stats::call();
        let secret = Zeroizing::new(secret);
        self.with_core(|t| Ok(t.operators().unlock_supervisor(&code, &secret)?))
    }

    /// The operator and refund settings (refund policy, whether login is required, and the
    /// read-only hashing/lockout values).
    pub fn safety_settings(&self) -> Result<SafetySettings, SmartPosError> {
        stats::call();
        self.with_core(|t| Ok(SafetySettings::from(t.admin().safety_settings())))
    }

    /// Changes and stores the operator and refund settings. While the current settings
    /// require login, only the logged-in supervisor may (`OperatorRefused` otherwise); every
    /// change is audited (`settings`, or `login_disabled` when it turns a required login off:
    /// financial commands then run without an operator). The record is the whole set: pass
    /// `safetySettings()` with the fields to change replaced. A fee above 100 % or a changed
    /// read-only `operators` value is a `Config` error naming the field.
    pub fn set_safety_settings(&self, settings: SafetySettings) -> Result<(), SmartPosError> {
        stats::call();
        self.with_core(|t| {
            let core = convert::safety_settings_in(settings, t.admin().safety_settings())?;
            Ok(t.admin().set_safety_settings(core)?)
        })
    }

    /// How receipts are laid out: merchant name and ids, paper width, label language.
    pub fn receipt_settings(&self) -> Result<ReceiptSettings, SmartPosError> {
        stats::call();
        self.with_core(|t| Ok(ReceiptSettings::from(t.receipts().receipt_settings())))
    }

    /// Changes how receipts are laid out (for `print`, `reprint`, `reprintLast`,
    /// `receiptText`). Kept in the journal with an audit row naming the logged-in operator, so
    /// the next `open` prints with them. A blank or over-long merchant name, ids of the wrong
    /// length or a language other than `zh` / `en` is a `Config` error naming the field, and
    /// nothing changes.
    pub fn set_receipt_settings(&self, settings: ReceiptSettings) -> Result<(), SmartPosError> {
        stats::call();
        let core = smartpos_terminal::api::printing::ReceiptSettings::try_from(settings)?;
        self.with_core(|t| Ok(t.receipts().save_receipt_settings(core)?))
    }

    /// What may be refunded on `reference` now, and every rule that would deny it.
    pub fn refund_quote(&self, reference: String) -> Result<RefundQuote, SmartPosError> {
        stats::call();
        self.with_core(|t| Ok(t.operators().refund_quote(&reference)?.into()))
    }

    /// Refunds (part of) an earlier sale after the refund policy allowed it (sent as a
    /// store-and-forward advice). A denial throws `RefundDenied` listing every denying rule, and
    /// nothing is sent. `supervisor_password` approves a refund that needs a supervisor. The
    /// operator is the logged-in one (the core ignores `request.operator` here).
    #[uniffi::method(default(supervisor_password = None))]
    pub async fn refund(
        &self,
        request: AmountRequest,
        supervisor_password: Option<String>,
    ) -> Result<TxnResult, SmartPosError> {
        let approval = supervisor_password.map(|p| Approval {
            password: Password::new(p),
        });
        stats::counted(self.run(move |mut g| async move {
            let t = g.as_mut().ok_or(SmartPosError::Closed)?;
            let o = t
                .refund_checked(
                    &request.reference,
                    request.amount,
                    request.idempotency_key.as_deref(),
                    request.operator.as_deref(),
                    approval,
                )
                .await?;
            Ok(TxnResult::from(o))
        }))
        .await
    }

    /// Ends a reversal the host keeps refusing, after the supervisor settled it with the
    /// acquirer by phone: `supervisor_password` approves it (a wrong one throws
    /// `OperatorRefused` and counts toward the supervisor's lock), `acquirer_reference` (1-40
    /// characters) and `note` go to the audit log, and the transaction becomes
    /// `REVERSAL_RESOLVED`, which no longer blocks sales. Only for a reversal sent at least
    /// once; any other reference is a `Rejected` error. None of the supported dialects has a
    /// transaction status inquiry, so the host is not asked first.
    #[uniffi::method(default(note = None))]
    pub fn resolve_reversal(
        &self,
        reference: String,
        supervisor_password: String,
        acquirer_reference: String,
        note: Option<String>,
    ) -> Result<TxnRecord, SmartPosError> {
        stats::call();
        let approval = Approval {
            password: Password::new(supervisor_password),
        };
        self.with_core(|t| {
            Ok(TxnRecord::from(t.admin().resolve_reversal(
                &reference,
                &approval,
                &acquirer_reference,
                note.as_deref(),
            )?))
        })
    }

    /// The support bundle for the acquirer's help desk, as one JSON document: configuration
    /// (no secrets), pending items, recent transactions (masked), the masked host trace,
    /// pending prints and the audit log.
    pub fn support_bundle(&self) -> Result<String, SmartPosError> {
        stats::call();
        self.with_core(|t| Ok(t.support().support_bundle()?.to_string()))
    }
}

/// Test kit: the service desk's answer to a supervisor unlock `challenge` on terminal
/// `terminal_id` with the shared `secret` (what the acquirer's desk computes; see
/// `smartpos_operators::unlock_code`). For tests and demos only.
#[cfg(feature = "testkit")]
#[uniffi::export]
pub fn service_desk_unlock_code(secret: Vec<u8>, terminal_id: String, challenge: String) -> String {
    stats::call();
    let secret = Zeroizing::new(secret);
    smartpos_terminal::api::operators::unlock_code(&secret, &terminal_id, &challenge)
}
