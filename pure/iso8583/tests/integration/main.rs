//! Integration tests of smartpos-iso8583: one binary, one module per subject.

mod support;

mod arbitrary_bytes;
mod limits;
mod reference_cup;
mod round_trip;
