//! Cryptography for Sluice: SigV4 request verification (and signing, for our own clients and
//! tests), envelope encryption, TOTP for MFA devices, the audit chain, and `Secret<T>`, the only
//! way plaintext secrets travel.
//!
//! This crate never reads the clock, the environment or the OS random number generator, and does
//! no I/O: keys, times and random bytes are arguments.

pub mod audit;
pub mod envelope;
pub mod secret;
pub mod sigv4;
pub mod totp;

pub use secret::Secret;
