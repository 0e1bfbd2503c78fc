//! Drivers: what performs the steps the algorithms ask for.

pub mod sync;

#[cfg(test)]
pub(crate) mod script;
