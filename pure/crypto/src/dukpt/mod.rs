//! Derived Unique Key Per Transaction: [`tdes`] (ANSI X9.24-1:2009) and [`aes`]
//! (ANSI X9.24-3-2017).

pub mod aes;
pub mod tdes;
