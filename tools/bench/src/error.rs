//! The harnesses' error type.

use thiserror::Error;

/// Why a harness could not complete a measurement.
#[derive(Debug, Error, PartialEq)]
#[non_exhaustive]
pub enum BenchError {
    /// Setting up a fixture (host, journal, terminal, directory) failed.
    #[error("setup of {what} failed: {reason}")]
    Setup {
        /// Which fixture.
        what: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// A measured operation failed (a sale that errored, a socket that closed).
    #[error("{what} failed: {reason}")]
    Run {
        /// Which operation.
        what: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// A sale finished in a state other than approved, so its timing would not be comparable.
    #[error("sale {index} was not approved: {state}")]
    NotApproved {
        /// Index of the sale in the run.
        index: usize,
        /// The state it finished in.
        state: String,
    },
}

impl BenchError {
    /// A setup failure from any displayable error.
    pub fn setup(what: &'static str, e: impl std::fmt::Display) -> BenchError {
        BenchError::Setup {
            what,
            reason: e.to_string(),
        }
    }

    /// A run failure from any displayable error.
    pub fn run(what: &'static str, e: impl std::fmt::Display) -> BenchError {
        BenchError::Run {
            what,
            reason: e.to_string(),
        }
    }
}
