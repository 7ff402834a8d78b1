//! Fuzzes the message decoder: it must never panic, and whatever it accepts
//! must encode back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metalayer_protocol::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::decode(data) {
        assert_eq!(message.encode(), data);
    }
});
