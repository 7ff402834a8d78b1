//! Hyperlane's matching lists: which messages a whitelist, blacklist, gas
//! policy or operator retry applies to.
//!
//! A list holds elements; a message matches the list if it matches any
//! element, and an element if it matches every field the element sets. A
//! field is `"*"`, one value or a list of values (domains in decimal or
//! `0x` hex; ids and addresses as `0x` hex, 20-byte addresses compared in
//! their 32-byte form). `body_regex` is a regular expression (the `regex`
//! crate's syntax) searched for in the body written as lowercase hex
//! without `0x`, so binary bodies can be matched: `^00` matches bodies
//! starting with a zero byte, `68656c6c6f` ("hello") one containing it.
//!
//! Field names are snake_case (`origin_domain`), as the rest of the
//! configuration; Hyperlane's camelCase (`originDomain`) and the lowercase
//! form its configuration loader makes of it (`origindomain`) are read too,
//! so a list copied from a Hyperlane relayer's configuration works as it is.

use alloy::primitives::B256;
use metalayer_protocol::Message;
use serde::{Deserialize, Serialize};

/// One field's filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(try_from = "RawFilter", bound(deserialize = "T: FilterValue"))]
pub enum Filter<T> {
    /// Anything.
    #[default]
    Any,
    /// One of these.
    OneOf(Vec<T>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawItem {
    Num(u64),
    Str(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawFilter {
    One(RawItem),
    Many(Vec<RawItem>),
}

/// A value a filter can hold.
pub trait FilterValue: Sized {
    /// Parses one item.
    fn parse_number(n: u64) -> Result<Self, String>;
    /// Parses one item given as text.
    fn parse_text(s: &str) -> Result<Self, String>;
}

impl FilterValue for u32 {
    fn parse_number(n: u64) -> Result<Self, String> {
        Self::try_from(n).map_err(|_| format!("domain {n} does not fit in 32 bits"))
    }
    fn parse_text(s: &str) -> Result<Self, String> {
        match s.strip_prefix("0x") {
            Some(hex) => Self::from_str_radix(hex, 16).map_err(|e| format!("domain {s:?}: {e}")),
            None => s.parse().map_err(|e| format!("domain {s:?}: {e}")),
        }
    }
}

impl FilterValue for B256 {
    fn parse_number(n: u64) -> Result<Self, String> {
        Err(format!("{n}: ids and addresses are 0x hex strings"))
    }
    fn parse_text(s: &str) -> Result<Self, String> {
        let hex = s.strip_prefix("0x").unwrap_or(s);
        let bytes = alloy::hex::decode(hex).map_err(|e| format!("{s:?} is not hex: {e}"))?;
        match bytes.len() {
            32 => Ok(Self::from_slice(&bytes)),
            20 => Ok(Self::left_padding_from(&bytes)),
            n => Err(format!("{s:?} is {n} bytes, expected a 20-byte address or 32 bytes")),
        }
    }
}

fn item<T: FilterValue>(raw: RawItem) -> Result<Option<T>, String> {
    match raw {
        RawItem::Str(s) if s == "*" => Ok(None),
        RawItem::Str(s) => T::parse_text(&s).map(Some),
        RawItem::Num(n) => T::parse_number(n).map(Some),
    }
}

impl<T: FilterValue> TryFrom<RawFilter> for Filter<T> {
    type Error = String;
    fn try_from(raw: RawFilter) -> Result<Self, String> {
        let items = match raw {
            RawFilter::One(one) => vec![one],
            RawFilter::Many(many) => many,
        };
        let mut values = Vec::with_capacity(items.len());
        for raw in items {
            match item(raw)? {
                Some(v) => values.push(v),
                None => return Ok(Self::Any),
            }
        }
        Ok(Self::OneOf(values))
    }
}

impl<T: PartialEq> Filter<T> {
    fn matches(&self, value: &T) -> bool {
        match self {
            Self::Any => true,
            Self::OneOf(values) => values.contains(value),
        }
    }
}

/// One element: every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListElement {
    /// Message ids.
    #[serde(alias = "messageId", alias = "messageid")]
    pub message_id: Filter<B256>,
    /// Origin domains.
    #[serde(alias = "originDomain", alias = "origindomain")]
    pub origin_domain: Filter<u32>,
    /// Senders.
    #[serde(alias = "senderAddress", alias = "senderaddress")]
    pub sender_address: Filter<B256>,
    /// Destination domains.
    #[serde(alias = "destinationDomain", alias = "destinationdomain")]
    pub destination_domain: Filter<u32>,
    /// Recipients.
    #[serde(alias = "recipientAddress", alias = "recipientaddress")]
    pub recipient_address: Filter<B256>,
    /// A pattern the body, as lowercase hex, must contain.
    #[serde(alias = "bodyRegex", alias = "bodyregex")]
    pub body_regex: Option<BodyRegex>,
}

/// A compiled `body_regex`; equal when the patterns are.
#[derive(Debug, Clone)]
pub struct BodyRegex(regex::Regex);

impl BodyRegex {
    /// Compiles `pattern`; the error names it.
    pub fn new(pattern: &str) -> Result<Self, String> {
        regex::Regex::new(pattern)
            .map(Self)
            .map_err(|e| format!("body_regex {pattern:?} is not a valid regular expression: {e}"))
    }

    /// Whether the pattern occurs in `body` written as lowercase hex.
    pub fn matches(&self, body: &[u8]) -> bool {
        self.0.is_match(&alloy::hex::encode(body))
    }
}

impl PartialEq for BodyRegex {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Eq for BodyRegex {}

impl Serialize for BodyRegex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for BodyRegex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pattern = String::deserialize(d)?;
        Self::new(&pattern).map_err(serde::de::Error::custom)
    }
}

impl ListElement {
    /// Whether `message` (with id `id`) matches every field.
    pub fn matches(&self, id: B256, message: &Message) -> bool {
        self.message_id.matches(&id)
            && self.origin_domain.matches(&message.origin)
            && self.sender_address.matches(&message.sender)
            && self.destination_domain.matches(&message.destination)
            && self.recipient_address.matches(&message.recipient)
            && self.body_regex.as_ref().is_none_or(|r| r.matches(&message.body))
    }
}

/// A matching list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MatchingList(pub Vec<ListElement>);

impl MatchingList {
    /// Whether any element matches; `None` if the list is empty ("unset").
    pub fn matches(&self, id: B256, message: &Message) -> Option<bool> {
        if self.0.is_empty() {
            return None;
        }
        Some(self.0.iter().any(|e| e.matches(id, message)))
    }

    /// A list that matches everything.
    pub fn any() -> Self {
        Self(vec![ListElement::default()])
    }
}

/// Whether any of `needles` appears as a contiguous byte string in the
/// message's sender, recipient or body (Hyperlane's `addressBlacklist`).
pub fn address_blacklisted(needles: &[Vec<u8>], message: &Message) -> bool {
    let contains = |hay: &[u8], needle: &[u8]| {
        !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
    };
    needles.iter().any(|n| {
        contains(message.sender.as_slice(), n)
            || contains(message.recipient.as_slice(), n)
            || contains(&message.body, n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::Bytes;

    fn message() -> Message {
        Message {
            version: 3,
            nonce: 4,
            origin: 10,
            sender: B256::left_padding_from(&[0xaa; 20]),
            destination: 20,
            recipient: B256::left_padding_from(&[0xbb; 20]),
            body: Bytes::from_static(b"hello \xcc\xcc world"),
        }
    }

    #[test]
    fn elements_parse_from_toml_and_match_every_set_field() {
        let list: MatchingList = toml::from_str::<toml::Table>(
            r#"l = [ { origin_domain = [10, "0x1e"], destination_domain = "*" },
                     { sender_address = "0xcccccccccccccccccccccccccccccccccccccccc", origin_domain = 10 } ]"#,
        )
        .map(|t| t["l"].clone())
        .and_then(|v| v.try_into())
        .unwrap();
        let m = message();
        assert_eq!(list.matches(m.id(), &m), Some(true));
        let mut other = m.clone();
        other.origin = 11;
        assert_eq!(list.matches(other.id(), &other), Some(false));
        assert_eq!(MatchingList::default().matches(m.id(), &m), None);
        assert_eq!(MatchingList::any().matches(m.id(), &m), Some(true));
        let by_sender = &list.0[1];
        assert!(!by_sender.matches(m.id(), &m));
    }

    #[test]
    fn hyperlane_camel_case_and_lowercase_field_names_are_read() {
        let m = message();
        let camel: MatchingList = serde_json::from_str(
            r#"[{"originDomain": 10, "senderAddress": "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                 "destinationDomain": [20], "recipientAddress": "*", "bodyRegex": "cccc"}]"#,
        )
        .unwrap();
        assert_eq!(camel.matches(m.id(), &m), Some(true));
        let lower: MatchingList = serde_json::from_str(&format!(
            r#"[{{"messageid": "{}", "origindomain": 10}}]"#,
            m.id()
        ))
        .unwrap();
        assert_eq!(lower.matches(m.id(), &m), Some(true));
        let other = serde_json::json!([{ "messageId": B256::ZERO }]);
        let other: MatchingList = serde_json::from_value(other).unwrap();
        assert_eq!(other.matches(m.id(), &m), Some(false));
    }

    #[test]
    fn bad_values_are_refused_with_the_value() {
        let err = serde_json::from_str::<ListElement>(r#"{"origin_domain": "0xzz"}"#).unwrap_err();
        assert!(err.to_string().contains("0xzz"), "{err}");
        let err =
            serde_json::from_str::<ListElement>(r#"{"sender_address": "0x1234"}"#).unwrap_err();
        assert!(err.to_string().contains("2 bytes"), "{err}");
        assert!(serde_json::from_str::<ListElement>(r#"{"nonce": 1}"#).is_err());
    }

    #[test]
    fn body_regex_searches_the_body_as_hex() {
        let m = message();
        let element = |pattern: &str| -> ListElement {
            serde_json::from_value(serde_json::json!({ "body_regex": pattern })).unwrap()
        };
        // "hello " is 68656c6c6f20; the body starts with it and holds cc cc.
        assert!(element("^68656c6c6f20").matches(m.id(), &m));
        assert!(element("cccc").matches(m.id(), &m));
        assert!(!element("^cccc").matches(m.id(), &m));
        assert!(!element("HELLO|68656c6c6f21").matches(m.id(), &m));
        // With another field: both must match.
        let both: ListElement = serde_json::from_value(
            serde_json::json!({ "body_regex": "cccc", "origin_domain": 11 }),
        )
        .unwrap();
        assert!(!both.matches(m.id(), &m));
        let err = serde_json::from_str::<ListElement>(r#"{"body_regex": "(unclosed"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("(unclosed") && err.contains("not a valid regular expression"),
            "{err}"
        );
        // Serialised, the pattern is written back as given.
        let e = element("^00");
        assert_eq!(serde_json::to_value(&e).unwrap()["body_regex"], "^00");
        assert_eq!(e, element("^00"));
        assert_ne!(e, element("^01"));
    }

    #[test]
    fn address_blacklist_finds_substrings() {
        let m = message();
        assert!(address_blacklisted(&[vec![0xcc, 0xcc]], &m));
        assert!(address_blacklisted(&[vec![0xaa; 20]], &m));
        assert!(!address_blacklisted(&[vec![0xdd], vec![]], &m));
    }
}
