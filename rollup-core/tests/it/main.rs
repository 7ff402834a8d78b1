//! Integration tests: a node started in-process on a loopback port, driven
//! through real clients (alloy providers over HTTP and WebSocket, raw HTTP
//! requests, web3.py).

mod bad_input;
mod chain;
mod common;
mod contracts;
mod persistence;
mod reorg;
mod web3py;
