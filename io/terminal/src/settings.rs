//! Changing the operator and refund settings from a document that names only what it changes.
//!
//! A settings file (the CLI's `settings --file`) is a JSON object in the shape `policy show`
//! prints: `require_login`, `refund_policy { .. }`, `operators { .. }`. It changes exactly the
//! fields it names and keeps every other one as it is: `{}` changes nothing. Inside
//! `refund_policy` and `operators` each field is named on its own; every other value (the
//! `fee` included) is replaced as a whole, and `null` means "none" where a field allows it.
//!
//! The whole document is checked before anything is stored: a field the settings do not have,
//! a value of the wrong type or out of range, or a combination the terminal refuses
//! ([`SafetySettings::validate`]) is a [`SettingsError`] naming the field, and nothing
//! changes. Storing the result is [`Admin::set_safety_settings`]: a supervisor act while
//! login is required, always audited; turning login off is audited as `login_disabled`.

use crate::facets::Admin;
use crate::runtime::{Terminal, TerminalError};
use crate::safety::SafetySettings;
use serde_json::Value;

/// The sections whose fields a settings document may name one by one.
const SECTIONS: [&str; 2] = ["refund_policy", "operators"];

/// Why a settings document was refused. Each variant names the field (`refund_policy.fee`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The document, or a section of it, is not a JSON object.
    #[error("settings: {field} must be a JSON object")]
    NotAnObject {
        /// `settings` for the document itself, or the section's name.
        field: String,
    },
    /// A field the settings do not have (a typo is never ignored).
    #[error("settings: unknown field {field}")]
    UnknownField {
        /// The field's path, e.g. `refund_policy.max_day`.
        field: String,
    },
    /// A value of the wrong type or out of range, or a change the terminal refuses.
    #[error("settings: {field}: {reason}")]
    Invalid {
        /// The field's path.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl From<SettingsError> for TerminalError {
    fn from(e: SettingsError) -> Self {
        TerminalError::Config(e.to_string())
    }
}

/// What a settings change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsUpdate {
    /// The fields whose value changed, as paths (`require_login`,
    /// `refund_policy.max_single_refund`), sorted. Empty: nothing was stored.
    pub changed: Vec<String>,
    /// Login was required and no longer is: financial commands now run without an operator.
    pub login_disabled: bool,
}

fn invalid(field: &str, reason: impl std::fmt::Display) -> SettingsError {
    SettingsError::Invalid {
        field: field.to_owned(),
        reason: reason.to_string(),
    }
}

fn as_value(s: &SafetySettings) -> Result<Value, SettingsError> {
    serde_json::to_value(s).map_err(|e| invalid("settings", e))
}

/// The value at `path` (`a` or `a.b`) of a settings object.
fn at<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(v, |v, key| v.get(key))
}

fn at_mut<'v>(v: &'v mut Value, path: &str) -> Option<&'v mut Value> {
    path.split('.').try_fold(v, |v, key| v.get_mut(key))
}

impl SafetySettings {
    /// These settings with the fields `patch` names replaced (see the module docs), and the
    /// paths it named, sorted. Each named value is checked on its own first, so an error
    /// names the field; then the result is checked as a whole against `self` with
    /// [`SafetySettings::validate`].
    pub fn patched(&self, patch: &Value) -> Result<(SafetySettings, Vec<String>), SettingsError> {
        let Value::Object(doc) = patch else {
            return Err(SettingsError::NotAnObject {
                field: "settings".into(),
            });
        };
        let base = as_value(self)?;
        let mut named = Vec::new();
        for (key, value) in doc {
            let Some(current) = base.get(key) else {
                return Err(SettingsError::UnknownField { field: key.clone() });
            };
            if !SECTIONS.contains(&key.as_str()) {
                named.push((key.clone(), value.clone()));
                continue;
            }
            let (Value::Object(fields), Value::Object(known)) = (value, current) else {
                return Err(SettingsError::NotAnObject { field: key.clone() });
            };
            for (field, value) in fields {
                let path = format!("{key}.{field}");
                if !known.contains_key(field) {
                    return Err(SettingsError::UnknownField { field: path });
                }
                named.push((path, value.clone()));
            }
        }
        // One field at a time on the current settings: a type or range error names its field.
        for (path, value) in &named {
            let mut one = base.clone();
            if let Some(slot) = at_mut(&mut one, path) {
                *slot = value.clone();
            }
            serde_json::from_value::<SafetySettings>(one).map_err(|e| invalid(path, e))?;
        }
        let mut all = base;
        for (path, value) in &named {
            if let Some(slot) = at_mut(&mut all, path) {
                *slot = value.clone();
            }
        }
        let new: SafetySettings =
            serde_json::from_value(all).map_err(|e| invalid("settings", e))?;
        new.validate(self)?;
        Ok((new, named.into_iter().map(|(p, _)| p).collect()))
    }

    /// Checks these settings as a replacement of `current`: the PBKDF2 iteration count cannot
    /// change once stored (every password hash depends on it), at least one wrong password
    /// before a lock, a positive unlock challenge lifetime, a percentage fee of at most
    /// 100 %.
    pub fn validate(&self, current: &SafetySettings) -> Result<(), SettingsError> {
        if self.operators.iterations != current.operators.iterations {
            return Err(invalid(
                "operators.iterations",
                format!(
                    "cannot change from {} (stored password hashes depend on it)",
                    current.operators.iterations
                ),
            ));
        }
        if self.operators.max_failed_attempts == 0 {
            return Err(invalid(
                "operators.max_failed_attempts",
                "must be at least 1",
            ));
        }
        if self.operators.unlock_challenge_ttl_ms <= 0 {
            return Err(invalid(
                "operators.unlock_challenge_ttl_ms",
                "must be positive",
            ));
        }
        if let Some(smartpos_operators::policy::Fee::Percent { basis_points }) =
            self.refund_policy.fee
            && basis_points > 10_000
        {
            return Err(invalid(
                "refund_policy.fee",
                format!("{basis_points} basis points is above 10000 (100 %)"),
            ));
        }
        Ok(())
    }
}

impl Terminal {}

impl<'a> Admin<'a> {
    /// Applies a settings document that names only what it changes (see the module docs):
    /// checked as a whole first, then stored with [`Admin::set_safety_settings`] (the
    /// supervisor's act while login is required; audited). A document that changes nothing
    /// stores nothing, but is still refused to anyone who may not change the settings.
    pub fn apply_settings(self, patch: &Value) -> Result<SettingsUpdate, TerminalError> {
        let current = self.t.admin().safety_settings().clone();
        let (new, named) = current.patched(patch)?;
        let (old_v, new_v) = (as_value(&current)?, as_value(&new)?);
        let changed: Vec<String> = named
            .into_iter()
            .filter(|p| at(&old_v, p) != at(&new_v, p))
            .collect();
        let login_disabled = current.require_login && !new.require_login;
        if changed.is_empty() {
            self.t.may_change_settings()?;
        } else {
            self.t.admin().set_safety_settings(new)?;
        }
        Ok(SettingsUpdate {
            changed,
            login_disabled,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> SafetySettings {
        let mut s = SafetySettings {
            require_login: true,
            ..SafetySettings::default()
        };
        s.refund_policy.supervisor_approval_above = Some(1000);
        s.refund_policy.max_days_since_original = 7;
        s
    }

    #[test]
    fn an_empty_document_changes_nothing() {
        let (s, named) = base().patched(&json!({})).unwrap();
        assert_eq!(s, base());
        assert!(named.is_empty());
    }

    #[test]
    fn a_document_changes_only_the_fields_it_names() {
        let (s, named) = base()
            .patched(&json!({"refund_policy": {"max_single_refund": 500, "fee": {"fixed": 20}}}))
            .unwrap();
        assert!(s.require_login);
        assert_eq!(s.refund_policy.max_days_since_original, 7);
        assert_eq!(s.refund_policy.supervisor_approval_above, Some(1000));
        assert_eq!(s.refund_policy.max_single_refund, Some(500));
        assert_eq!(
            s.refund_policy.fee,
            Some(smartpos_operators::policy::Fee::Fixed(20))
        );
        assert_eq!(
            named,
            ["refund_policy.fee", "refund_policy.max_single_refund"]
        );
        // null is "none" where a field allows it.
        let (s, _) = base()
            .patched(&json!({"refund_policy": {"supervisor_approval_above": null}}))
            .unwrap();
        assert_eq!(s.refund_policy.supervisor_approval_above, None);
        assert_eq!(s.refund_policy.max_days_since_original, 7);
    }

    #[test]
    fn unknown_and_malformed_fields_are_named() {
        let err = |doc: Value| base().patched(&doc).unwrap_err();
        assert_eq!(
            err(json!({"require_logn": false})),
            SettingsError::UnknownField {
                field: "require_logn".into()
            }
        );
        assert_eq!(
            err(json!({"operators": {"lockout": 3}})),
            SettingsError::UnknownField {
                field: "operators.lockout".into()
            }
        );
        assert_eq!(
            err(json!({"refund_policy": []})),
            SettingsError::NotAnObject {
                field: "refund_policy".into()
            }
        );
        assert_eq!(
            err(json!(null)),
            SettingsError::NotAnObject {
                field: "settings".into()
            }
        );
        for (doc, field) in [
            (json!({"require_login": 1}), "require_login"),
            (
                json!({"refund_policy": {"max_single_refund": -5}}),
                "refund_policy.max_single_refund",
            ),
            (
                json!({"refund_policy": {"fee": {"fixed": 1, "percent": 2}}}),
                "refund_policy.fee",
            ),
            (
                json!({"refund_policy": {"fee": {"percent": {"basis_points": 10001}}}}),
                "refund_policy.fee",
            ),
            (
                json!({"operators": {"unlock_challenge_ttl_ms": 0}}),
                "operators.unlock_challenge_ttl_ms",
            ),
            (
                json!({"refund_policy": {"same_card_required": true}, "operators": {"iterations": 1}}),
                "operators.iterations",
            ),
        ] {
            match err(doc.clone()) {
                SettingsError::Invalid { field: f, .. } => assert_eq!(f, field, "{doc}"),
                other => panic!("{doc}: {other:?}"),
            }
        }
    }
}
