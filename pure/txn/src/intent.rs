//! What the app asks for, before any card is read: [`TxnIntent`] (kind, amount, idempotency
//! key, operator), with newtypes for the two strings so that they cannot be swapped silently.

use crate::model::TxnKind;
use std::fmt;

/// An app-supplied idempotency key (an order number, a checkout id): the same key returns the
/// recorded outcome instead of charging again. 1 byte to 8 KiB of text without control
/// characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

/// The longest idempotency key, in bytes.
pub const MAX_KEY_LEN: usize = 8 * 1024;

impl IdempotencyKey {
    /// Checks and wraps a key.
    pub fn new(key: &str) -> Result<Self, IntentError> {
        if key.is_empty() || key.len() > MAX_KEY_LEN || key.chars().any(char::is_control) {
            return Err(IntentError::BadKey);
        }
        Ok(IdempotencyKey(key.to_owned()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({:?})", self.0)
    }
}

/// An operator code (`00` supervisor, `01`-`99` cashiers; acquirers may use other codes of
/// 1 to 8 digits or letters).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OperatorId(String);

impl OperatorId {
    /// Checks and wraps an operator code.
    pub fn new(id: &str) -> Result<Self, IntentError> {
        if id.is_empty() || id.len() > 8 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(IntentError::BadOperator);
        }
        Ok(OperatorId(id.to_owned()))
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OperatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OperatorId({:?})", self.0)
    }
}

/// Why an intent could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntentError {
    /// The idempotency key is empty, longer than 8 KiB or has control characters.
    #[error("idempotency key must be 1 byte to 8 KiB without control characters")]
    BadKey,
    /// The operator code is empty, longer than 8 characters or not letters and digits.
    #[error("operator code must be 1 to 8 letters or digits")]
    BadOperator,
}

/// A card-present transaction the app asks for: sale, pre-authorisation or balance inquiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnIntent {
    /// Sale, pre-authorisation or balance.
    pub kind: TxnKind,
    /// Amount in minor units (0 for a balance inquiry).
    pub amount: u64,
    /// The app's idempotency key.
    pub idempotency_key: Option<IdempotencyKey>,
    /// The operator acting (default: the logged-in one).
    pub operator: Option<OperatorId>,
}

impl TxnIntent {
    /// A sale of `amount` minor units.
    pub fn sale(amount: u64) -> Self {
        TxnIntent::new(TxnKind::Sale, amount)
    }

    /// A pre-authorisation of `amount` minor units.
    pub fn preauth(amount: u64) -> Self {
        TxnIntent::new(TxnKind::PreAuth, amount)
    }

    /// A balance inquiry.
    pub fn balance() -> Self {
        TxnIntent::new(TxnKind::Balance, 0)
    }

    fn new(kind: TxnKind, amount: u64) -> Self {
        TxnIntent {
            kind,
            amount,
            idempotency_key: None,
            operator: None,
        }
    }

    /// With an idempotency key.
    pub fn key(mut self, key: IdempotencyKey) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    /// With an operator.
    pub fn operator(mut self, operator: OperatorId) -> Self {
        self.operator = Some(operator);
        self
    }

    /// With an idempotency key given as text, if any (checked).
    pub fn key_text(self, key: Option<&str>) -> Result<Self, IntentError> {
        Ok(match key {
            Some(k) => self.key(IdempotencyKey::new(k)?),
            None => self,
        })
    }

    /// With an operator given as text, if any (checked).
    pub fn operator_text(self, operator: Option<&str>) -> Result<Self, IntentError> {
        Ok(match operator {
            Some(o) => self.operator(OperatorId::new(o)?),
            None => self,
        })
    }

    /// Whether this kind takes a card (sale, pre-authorisation, balance).
    pub fn takes_card(&self) -> bool {
        matches!(
            self.kind,
            TxnKind::Sale | TxnKind::PreAuth | TxnKind::Balance
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_operators_are_checked() {
        assert!(IdempotencyKey::new("order-1").is_ok());
        assert_eq!(IdempotencyKey::new(""), Err(IntentError::BadKey));
        assert_eq!(IdempotencyKey::new("a\nb"), Err(IntentError::BadKey));
        assert_eq!(
            IdempotencyKey::new(&"k".repeat(MAX_KEY_LEN + 1)),
            Err(IntentError::BadKey)
        );
        assert!(OperatorId::new("01").is_ok());
        assert_eq!(OperatorId::new("0 1"), Err(IntentError::BadOperator));
        let i = TxnIntent::sale(100)
            .key_text(Some("k"))
            .and_then(|i| i.operator_text(Some("01")))
            .expect("valid");
        assert_eq!(
            i.idempotency_key.as_ref().map(IdempotencyKey::as_str),
            Some("k")
        );
        assert_eq!(i.operator.as_ref().map(OperatorId::as_str), Some("01"));
        assert!(i.takes_card());
    }
}
