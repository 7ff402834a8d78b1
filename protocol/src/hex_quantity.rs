//! Serde for a U256 as an Ethereum JSON quantity: `0x` and minimal hex, no
//! leading zeros (`0x0` for zero). Odd-length input is accepted.

use alloy_primitives::U256;
use serde::{Deserialize, Deserializer, Serializer, de::Error};

pub(crate) fn serialize<S: Serializer>(value: &U256, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format!("{value:#x}"))
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<U256, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    let digits = text
        .strip_prefix("0x")
        .ok_or_else(|| D::Error::custom(format!("quantity {text:?} does not start with 0x")))?;
    if digits.is_empty() || digits.len() > 64 {
        return Err(D::Error::custom(format!("quantity {text:?} must have 1 to 64 hex digits")));
    }
    U256::from_str_radix(digits, 16)
        .map_err(|_| D::Error::custom(format!("quantity {text:?} is not hex")))
}
