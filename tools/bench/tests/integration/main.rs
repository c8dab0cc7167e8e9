//! Smoke runs of every harness with tiny counts: they complete and report what they measured.
//! No timing is asserted (benchmarks are not tests).

mod harness;
