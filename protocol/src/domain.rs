//! Domain ids and the chain metadata every crate shares.

use serde::{Deserialize, Serialize};

/// A Hyperlane domain id: the 4-byte chain identifier inside messages. It is
/// often, but not necessarily, the EVM chain id.
pub type Domain = u32;

/// What every part of Metalayer needs to know about one chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChainMetadata {
    /// Operator-facing name, unique in a deployment (e.g. `rollupa`).
    pub name: String,
    /// The domain id messages carry.
    pub domain_id: Domain,
    /// The EVM chain id transactions are signed for.
    pub chain_id: u64,
}

/// Why chain metadata is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainMetadataError {
    /// The name is empty or holds characters other than `[a-z0-9_-]`.
    #[error("chain name {0:?} must be non-empty and use only a-z, 0-9, '-' and '_'")]
    BadName(String),
    /// Domain id 0 is reserved as "unset".
    #[error("chain {0:?} has domain id 0, which is reserved")]
    ZeroDomain(String),
    /// Two chains share a name or a domain id.
    #[error("chains {0:?} and {1:?} share a name or a domain id")]
    Duplicate(String, String),
}

impl ChainMetadata {
    /// Checks the name and domain id.
    pub fn validate(&self) -> Result<(), ChainMetadataError> {
        let name_ok = !self.name.is_empty()
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(ChainMetadataError::BadName(self.name.clone()));
        }
        if self.domain_id == 0 {
            return Err(ChainMetadataError::ZeroDomain(self.name.clone()));
        }
        Ok(())
    }

    /// Checks every chain and that names and domain ids are unique.
    pub fn validate_all(chains: &[Self]) -> Result<(), ChainMetadataError> {
        for (i, a) in chains.iter().enumerate() {
            a.validate()?;
            if let Some(b) =
                chains[..i].iter().find(|b| b.name == a.name || b.domain_id == a.domain_id)
            {
                return Err(ChainMetadataError::Duplicate(b.name.clone(), a.name.clone()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(name: &str, domain_id: u32) -> ChainMetadata {
        ChainMetadata { name: name.into(), domain_id, chain_id: u64::from(domain_id) }
    }

    #[test]
    fn validation_names_the_offending_chain() {
        assert!(ChainMetadata::validate_all(&[chain("rollupa", 1), chain("rollupb", 2)]).is_ok());
        assert_eq!(
            chain("Rollup A", 1).validate(),
            Err(ChainMetadataError::BadName("Rollup A".into()))
        );
        assert_eq!(chain("a", 0).validate(), Err(ChainMetadataError::ZeroDomain("a".into())));
        assert_eq!(
            ChainMetadata::validate_all(&[chain("a", 1), chain("b", 1)]),
            Err(ChainMetadataError::Duplicate("a".into(), "b".into()))
        );
    }

    #[test]
    fn json_uses_camel_case_and_refuses_unknown_keys() {
        let c: ChainMetadata =
            serde_json::from_str(r#"{"name":"a","domainId":7,"chainId":9}"#).unwrap();
        assert_eq!(c, ChainMetadata { name: "a".into(), domain_id: 7, chain_id: 9 });
        assert!(
            serde_json::from_str::<ChainMetadata>(r#"{"name":"a","domainId":7,"chainId":9,"x":1}"#)
                .is_err()
        );
    }
}
