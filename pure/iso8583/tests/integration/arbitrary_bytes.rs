//! Decoding hostile bytes never panics; whatever decodes re-encodes to a message that decodes
//! the same.

use crate::support::{dialects, message_for};
use proptest::prelude::*;
use smartpos_iso8583::Dialect;

fn no_panic(bytes: &[u8]) -> Result<(), TestCaseError> {
    for d in dialects() {
        if let Ok(msg) = d.unpack(bytes) {
            let packed = d
                .pack(&msg)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(d.unpack(&packed).ok(), Some(msg));
        }
        let _ = d.mac_input(bytes);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        no_panic(&bytes)?;
    }

    #[test]
    fn mutated_valid_messages_never_panic(
        msg in message_for(Dialect::cup()),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<usize>(),
    ) {
        for d in dialects() {
            let Ok(mut packed) = d.pack(&msg) else { continue };
            for (at, b) in &flips {
                let len = packed.len();
                packed[at % len] ^= b;
            }
            no_panic(&packed)?;
            let cut = cut % (packed.len() + 1);
            no_panic(&packed[..cut])?;
        }
    }

    #[test]
    fn truncated_valid_messages_are_incomplete(msg in message_for(Dialect::iso87b()), cut in any::<usize>()) {
        for d in dialects() {
            let Ok(packed) = d.pack(&msg) else { continue };
            let cut = cut % packed.len();
            let err = d.unpack(&packed[..cut]);
            prop_assert!(
                matches!(err, Err(smartpos_iso8583::DecodeError::Incomplete { .. })),
                "{}: cut at {} of {}: {:?}", d.name(), cut, packed.len(), err
            );
        }
    }
}
