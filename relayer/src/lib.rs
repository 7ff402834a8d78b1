//! The Metalayer relayer daemon.
//!
//! It will index every origin, gather a threshold of validator signatures per
//! message, build ISM metadata, and deliver messages to destination Mailboxes
//! through persistent prepare, submit and confirm queues. Not written yet.
