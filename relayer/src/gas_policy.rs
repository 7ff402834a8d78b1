//! Gas payment enforcement (SPEC §6): whether a message's origin payment
//! covers its delivery, and the transaction gas limit that follows.

use alloy::primitives::U256;
use metalayer_agent::store::GasPaymentTotal;
use metalayer_protocol::{B256, Message};
use serde::{Deserialize, Serialize};

use crate::{matching::MatchingList, op::Reason};

/// One policy and the messages it governs. A key that is neither `type`,
/// `matching_list` nor one of the policy's own is refused, named in the
/// error (serde cannot refuse unknown keys through `flatten`, so the entry
/// is read with a private per-type shape first).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(from = "RawRule")]
pub struct GasPolicyRule {
    /// The policy.
    #[serde(flatten)]
    pub policy: GasPolicy,
    /// Messages it applies to; all when empty.
    #[serde(default)]
    pub matching_list: MatchingList,
}

/// How much origin payment a delivery needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GasPolicy {
    /// Deliver whether paid or not.
    None,
    /// A payment must exist and sum to at least `payment` (origin wei).
    Minimum {
        /// The least summed payment, decimal or `0x` hex.
        payment: U256,
    },
    /// The paid gas, less what we spent on earlier attempts, must cover
    /// `gas_fraction` of the estimate; the gas limit is at least the paid gas.
    OnChainFeeQuoting {
        /// `"n/d"`, default `"1/2"`.
        #[serde(default = "half")]
        gas_fraction: String,
    },
}

/// A gas policy entry as written: each type with exactly its own keys.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum RawRule {
    None {
        #[serde(default)]
        matching_list: MatchingList,
    },
    Minimum {
        payment: U256,
        #[serde(default)]
        matching_list: MatchingList,
    },
    OnChainFeeQuoting {
        #[serde(default = "half")]
        gas_fraction: String,
        #[serde(default)]
        matching_list: MatchingList,
    },
}

impl From<RawRule> for GasPolicyRule {
    fn from(raw: RawRule) -> Self {
        let (policy, matching_list) = match raw {
            RawRule::None { matching_list } => (GasPolicy::None, matching_list),
            RawRule::Minimum { payment, matching_list } => {
                (GasPolicy::Minimum { payment }, matching_list)
            }
            RawRule::OnChainFeeQuoting { gas_fraction, matching_list } => {
                (GasPolicy::OnChainFeeQuoting { gas_fraction }, matching_list)
            }
        };
        Self { policy, matching_list }
    }
}

fn half() -> String {
    "1/2".into()
}

/// Why a policy refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The retry reason.
    pub reason: Reason,
    /// What was missing.
    pub detail: String,
}

/// Parses `"n/d"`.
pub fn parse_fraction(text: &str) -> Result<(u64, u64), String> {
    let bad = || format!("gas fraction {text:?} is not \"n/d\" with d > 0");
    let (n, d) = text.split_once('/').ok_or_else(bad)?;
    let n: u64 = n.trim().parse().map_err(|_| bad())?;
    let d: u64 = d.trim().parse().map_err(|_| bad())?;
    if d == 0 {
        return Err(bad());
    }
    Ok((n, d))
}

/// The first rule matching the message, in order.
pub fn rule_for<'a>(
    rules: &'a [GasPolicyRule],
    id: B256,
    message: &Message,
) -> Option<&'a GasPolicyRule> {
    rules.iter().find(|r| r.matching_list.matches(id, message).unwrap_or(true))
}

/// Evaluates `policy` for a delivery estimated at `estimate` gas (0 for the
/// pre-flight), given the summed payment and the gas already spent. Returns
/// the gas limit to use.
pub fn evaluate(
    policy: Option<&GasPolicy>,
    payment: Option<GasPaymentTotal>,
    gas_spent: u64,
    estimate: u64,
) -> Result<u64, Refusal> {
    let not_found = || Refusal {
        reason: Reason::GasPaymentNotFound,
        detail: "no gas payment seen for this message and destination".into(),
    };
    match policy {
        None => Err(Refusal {
            reason: Reason::GasPaymentRequirementNotMet,
            detail: "no gas payment policy matches this message (configuration error)".into(),
        }),
        Some(GasPolicy::None) => Ok(estimate),
        Some(GasPolicy::Minimum { payment: min }) => {
            let paid = payment.ok_or_else(not_found)?.payment;
            if paid >= *min {
                Ok(estimate)
            } else {
                Err(Refusal {
                    reason: Reason::GasPaymentRequirementNotMet,
                    detail: format!("paid {paid} wei, the policy asks for at least {min}"),
                })
            }
        }
        Some(GasPolicy::OnChainFeeQuoting { gas_fraction }) => {
            let (n, d) = parse_fraction(gas_fraction).map_err(|detail| Refusal {
                reason: Reason::ErrorCheckingGasRequirement,
                detail,
            })?;
            let paid = payment.ok_or_else(not_found)?.gas_amount;
            let left = paid.saturating_sub(U256::from(gas_spent));
            let needed = U256::from(estimate) * U256::from(n) / U256::from(d);
            if left < needed {
                return Err(Refusal {
                    reason: Reason::GasPaymentRequirementNotMet,
                    detail: format!(
                        "{left} paid gas left, {needed} needed ({gas_fraction} of {estimate})"
                    ),
                });
            }
            Ok(estimate.max(u64::try_from(left).unwrap_or(u64::MAX)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paid(payment: u64, gas: u64) -> Option<GasPaymentTotal> {
        Some(GasPaymentTotal { payment: U256::from(payment), gas_amount: U256::from(gas) })
    }

    #[test]
    fn policies_decide_and_set_the_gas_limit() {
        assert_eq!(evaluate(Some(&GasPolicy::None), None, 0, 70_000), Ok(70_000));
        let min = GasPolicy::Minimum { payment: U256::from(10) };
        assert_eq!(
            evaluate(Some(&min), None, 0, 0).unwrap_err().reason,
            Reason::GasPaymentNotFound
        );
        assert_eq!(
            evaluate(Some(&min), paid(9, 0), 0, 0).unwrap_err().reason,
            Reason::GasPaymentRequirementNotMet
        );
        assert_eq!(evaluate(Some(&min), paid(10, 0), 0, 5), Ok(5));
        let zero = GasPolicy::Minimum { payment: U256::ZERO };
        assert!(evaluate(Some(&zero), None, 0, 0).is_err(), "minimum 0 still needs a payment");
        let quote = GasPolicy::OnChainFeeQuoting { gas_fraction: "1/2".into() };
        assert_eq!(evaluate(Some(&quote), paid(1, 100_000), 0, 150_000), Ok(150_000));
        assert_eq!(evaluate(Some(&quote), paid(1, 100_000), 0, 60_000), Ok(100_000));
        assert!(evaluate(Some(&quote), paid(1, 100_000), 40_000, 150_000).is_err());
        assert!(evaluate(None, paid(1, 1), 0, 0).is_err());
    }

    #[test]
    fn rules_refuse_unknown_keys_by_name() {
        let rule = |json: &str| serde_json::from_str::<GasPolicyRule>(json);
        let ok = rule(
            r#"{"type": "minimum", "payment": "0x10", "matching_list": [{"origin_domain": 1}]}"#,
        )
        .unwrap();
        assert_eq!(ok.policy, GasPolicy::Minimum { payment: U256::from(16) });
        assert_eq!(
            rule(r#"{"type": "on_chain_fee_quoting"}"#).unwrap().policy,
            GasPolicy::OnChainFeeQuoting { gas_fraction: "1/2".into() }
        );
        assert_eq!(rule(r#"{"type": "none"}"#).unwrap().policy, GasPolicy::None);
        for (json, key) in [
            (r#"{"type": "minimum", "payment": "1", "paymnet": "2"}"#, "paymnet"),
            (r#"{"type": "on_chain_fee_quoting", "gasFraction": "1/3"}"#, "gasFraction"),
            (r#"{"type": "none", "matchinglist": []}"#, "matchinglist"),
            // A key of another policy type is unknown to this one.
            (r#"{"type": "none", "payment": "1"}"#, "payment"),
        ] {
            let error = rule(json).unwrap_err().to_string();
            assert!(error.contains(key), "{json}: {error}");
        }
        let error = rule(r#"{"type": "maximum"}"#).unwrap_err().to_string();
        assert!(error.contains("maximum"), "{error}");
    }

    #[test]
    fn fractions_parse() {
        assert_eq!(parse_fraction("3 / 4"), Ok((3, 4)));
        assert!(parse_fraction("1/0").is_err());
        assert!(parse_fraction("half").is_err());
    }
}
