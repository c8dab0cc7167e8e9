//! pack → unpack is the identity for random valid messages of every dialect.

use crate::support::message_for;
use proptest::prelude::*;
use smartpos_iso8583::Dialect;

fn check(dialect: &'static Dialect, msg: &smartpos_iso8583::Message) -> Result<(), TestCaseError> {
    let packed = dialect
        .pack(msg)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut back = dialect
        .unpack(&packed)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    // The default header is filled in on pack.
    if msg.header.is_empty() {
        prop_assert_eq!(&back.header[..], dialect.default_header());
        back.header.clear();
    }
    prop_assert_eq!(&back, msg);
    prop_assert_eq!(
        dialect.pack(&back).ok().map(|p| p.len()),
        Some(packed.len())
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn cup_round_trip(msg in message_for(Dialect::cup())) {
        check(Dialect::cup(), &msg)?;
    }

    #[test]
    fn iso87b_round_trip(msg in message_for(Dialect::iso87b())) {
        check(Dialect::iso87b(), &msg)?;
    }

    #[test]
    fn iso87a_round_trip(msg in message_for(Dialect::iso87a())) {
        check(Dialect::iso87a(), &msg)?;
    }
}
