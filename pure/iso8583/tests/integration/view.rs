//! The in-place reader ([`MessageView`]) against the owned one: the same values, typed on
//! access, and the same MAC input.

use crate::support::message_for;
use proptest::prelude::*;
use smartpos_iso8583::{Dialect, reference};
use std::borrow::Cow;

fn agree(dialect: &'static Dialect, msg: &smartpos_iso8583::Message) -> Result<(), TestCaseError> {
    let packed = dialect
        .pack(msg)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let view = dialect
        .view(&packed)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let owned = dialect
        .unpack(&packed)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(view.to_message(), owned.clone());
    prop_assert_eq!(view.mti(), owned.mti);
    for (n, value) in owned.fields() {
        let f = view
            .field(n)
            .ok_or_else(|| TestCaseError::fail("field missing"))?;
        prop_assert_eq!(f.to_vec(), value.to_vec());
        if let Some(t) = owned.text(n) {
            prop_assert!(f.eq_text(t));
        }
        if let Some(t) = owned.text(n).filter(|_| f.spec().is_text()) {
            prop_assert_eq!(f.text(), Some(Cow::Borrowed(t)));
        }
    }
    prop_assert_eq!(
        view.fields().collect::<Vec<_>>(),
        owned.fields().map(|(n, _)| n).collect::<Vec<_>>()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn view_agrees_with_unpack_cup(msg in message_for(Dialect::cup())) {
        agree(Dialect::cup(), &msg)?;
    }

    #[test]
    fn view_agrees_with_unpack_iso87b(msg in message_for(Dialect::iso87b())) {
        agree(Dialect::iso87b(), &msg)?;
    }

    #[test]
    fn view_agrees_with_unpack_iso87a(msg in message_for(Dialect::iso87a())) {
        agree(Dialect::iso87a(), &msg)?;
    }

    #[test]
    fn view_of_arbitrary_bytes_fails_as_unpack_does(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        for d in crate::support::dialects() {
            prop_assert_eq!(d.view(&bytes).err(), d.unpack(&bytes).err());
        }
    }
}

#[test]
fn fields_are_borrowed_and_typed_on_access() {
    let d = Dialect::cup();
    let packed = d.pack(&reference::cup_sale()).unwrap();
    let v = d.view(&packed).unwrap();
    // ASCII text is the wire itself: borrowed.
    let tid = v.str(41).unwrap();
    assert_eq!(tid, "12345678");
    let at = tid.as_ptr() as usize - packed.as_ptr() as usize;
    assert!(at < packed.len(), "41 points into the input");
    // BCD numerics read as numbers without a string; as text they are built.
    assert_eq!(v.field(4).unwrap().to_u64(), Some(1234));
    assert_eq!(v.field(11).unwrap().to_u64(), Some(123));
    assert!(matches!(v.field(2).unwrap().text(), Some(Cow::Owned(_))));
    assert!(v.field(2).unwrap().eq_text(reference::TEST_PAN));
    assert_eq!(v.str(2), None, "BCD is not text on the wire");
    // Binary fields are their bytes.
    assert_eq!(
        v.field(64).unwrap().as_bytes(),
        Some(&packed[packed.len() - 8..])
    );
    assert_eq!(v.field(64).unwrap().text(), None);
    assert!(v.field(5).is_none() && !v.has(5) && !v.has(1) && !v.has(200));
    assert_eq!(v.last_field(), 64);
    // The MAC input is a slice of the input, the one mac_input gives.
    assert_eq!(v.mac_input(64), Some(d.mac_input(&packed).unwrap()));
    assert_eq!(v.mac_input(63), None, "63 is not the last field");
    assert_eq!(v.header(), d.default_header());
    let shown = format!("{v:?}");
    assert!(!shown.contains("6222"), "{shown}");
}
