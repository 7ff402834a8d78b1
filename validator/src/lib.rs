//! The Metalayer validator daemon.
//!
//! It will announce its checkpoint storage, rebuild the origin Mailbox's Merkle
//! tree from indexed insertions, check it against the chain's latest checkpoint
//! at the reorg-lagged height, and sign and publish one checkpoint per leaf behind
//! a durable double-sign protection record. Not written yet.
