//! Integration tests of smartpos-iso8583: one binary, one module per subject.

mod support;

mod arbitrary_bytes;
mod jpos_iso87b;
mod limits;
mod reference_cup;
mod round_trip;
mod view;
