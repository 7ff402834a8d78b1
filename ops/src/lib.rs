//! The `metalayer` command line and operator material.
//!
//! It will hold the devnet launcher, deploy, send, status and key commands, and
//! the operator configs, dashboards, alert rules and service units. Not written
//! yet.
