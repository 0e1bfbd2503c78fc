//! Drivers: what performs the steps the algorithms ask for.

pub mod sync;

#[cfg(feature = "async")]
pub mod asynchronous;

#[cfg(test)]
pub(crate) mod script;
