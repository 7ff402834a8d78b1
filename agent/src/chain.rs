//! Reaching a chain: alloy over JSON-RPC, several endpoints per chain.
//!
//! Every read goes through [`ChainClient::read`], which applies a per-request
//! timeout, falls back to the next endpoint on error, retries whole rounds
//! with exponential backoff, and counts each request by endpoint, method and
//! outcome. Safety-critical reads (what a validator signs against) use
//! [`ChainClient::read_quorum`], which asks every endpoint and needs a strict
//! majority of all of them to return the same answer.

use std::{
    fmt,
    future::Future,
    sync::atomic::{AtomicU8, AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use alloy::{
    eips::{BlockId, BlockNumberOrTag},
    network::TransactionBuilder,
    primitives::{Address, Bytes, U256},
    providers::{Provider, RootProvider},
    rpc::types::{Filter, Log, TransactionRequest},
    sol_types::SolCall,
    transports::TransportError,
};
use metalayer_contracts::{MULTICALL3_ADDRESS, bindings::Multicall3};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

pub use crate::config::{ReorgPeriod, RpcMode};

/// Calls in one JSON-RPC batch ([`ChainClient::call_batch`]): below the
/// limits public endpoints and nodes set (rollup-core: 500, geth: 1000).
pub const MAX_BATCH_CALLS: usize = 100;

/// Calls folded into one Multicall3 `aggregate3` read
/// ([`ChainClient::call_batch`] on a chain that has Multicall3).
pub const MAX_MULTICALL_CALLS: usize = 100;

/// Whether a chain has Multicall3 at [`MULTICALL3_ADDRESS`]: not yet known.
const MULTICALL_UNKNOWN: u8 = 0;
const MULTICALL_PRESENT: u8 = 1;
const MULTICALL_ABSENT: u8 = 2;

/// Failed batches in a row (whose calls then succeeded one by one) after
/// which [`ChainClient::call_batch`] stops sending batches to a chain.
pub const BATCH_REFUSALS: usize = 3;

/// Timeouts and retries for one chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Limit on one request to one endpoint.
    pub timeout: Duration,
    /// Rounds over all endpoints before giving up.
    pub rounds: u32,
    /// Pause after the first failed round; doubled after each further one.
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(10), rounds: 3, backoff: Duration::from_millis(250) }
    }
}

/// Why a chain could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A configured RPC URL does not parse.
    #[error("chain {chain}: RPC URL {url:?} is invalid: {reason}")]
    BadUrl {
        /// Chain name.
        chain: String,
        /// The URL as configured.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// No endpoint configured.
    #[error("chain {0}: no RPC URL configured")]
    NoEndpoints(String),
    /// Every endpoint failed in every round.
    #[error(
        "chain {chain}: {method} failed on every endpoint; last error from {endpoint}: {error}"
    )]
    Unavailable {
        /// Chain name.
        chain: String,
        /// What was asked.
        method: &'static str,
        /// The endpoint that failed last.
        endpoint: String,
        /// Its error.
        error: String,
    },
    /// Too few endpoints agreed.
    #[error(
        "chain {chain}: {method} reached no quorum: {agreeing} of {endpoints} endpoints agree, {needed} needed"
    )]
    NoQuorum {
        /// Chain name.
        chain: String,
        /// What was asked.
        method: &'static str,
        /// The largest group of equal answers.
        agreeing: usize,
        /// Endpoints asked.
        endpoints: usize,
        /// Majority needed.
        needed: usize,
    },
    /// An answer that does not decode as the contract's return type.
    #[error("chain {chain}: {method} returned data that does not decode: {reason}")]
    Decode {
        /// Chain name.
        chain: String,
        /// What was asked.
        method: &'static str,
        /// Decoder message.
        reason: String,
    },
    /// The node does not know a block it was asked for.
    #[error("chain {chain}: block {block} is unknown to the node")]
    UnknownBlock {
        /// Chain name.
        chain: String,
        /// The block asked for.
        block: String,
    },
}

/// Per-request RPC metrics, shared by every chain of an agent.
#[derive(Debug, Clone)]
pub struct RpcMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl RpcMetrics {
    /// Registers `rpc_requests_total` and `rpc_request_duration_seconds` in
    /// `registry` (the agent registry prefixes them with `metalayer_`).
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "rpc_requests_total",
                "JSON-RPC requests by chain, endpoint, method and outcome",
            ),
            &["chain", "endpoint", "method", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("rpc_request_duration_seconds", "JSON-RPC request latency")
                .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["chain", "method"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self { requests, duration })
    }

    /// Metrics that are recorded nowhere (tools and tests).
    pub fn unregistered() -> Self {
        // Registering into a private registry cannot collide.
        Self::new(&Registry::new()).unwrap_or_else(|_| unreachable!("fresh registry"))
    }
}

struct Endpoint {
    /// `host:port` only: URLs may carry API keys, which must not reach logs
    /// or metric labels.
    label: String,
    provider: RootProvider,
}

/// A chain reached through one or more JSON-RPC endpoints.
pub struct ChainClient {
    chain: String,
    endpoints: Vec<Endpoint>,
    preferred: AtomicUsize,
    policy: RetryPolicy,
    metrics: RpcMetrics,
    /// Batches that failed in a row while the same calls one by one did not
    /// (an endpoint that refuses batches, or ones this large).
    batch_refusals: AtomicUsize,
    /// Whether the chain has Multicall3 (`MULTICALL_*`), looked up once.
    multicall: AtomicU8,
}

impl fmt::Debug for ChainClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<&str> = self.endpoints.iter().map(|e| e.label.as_str()).collect();
        f.debug_struct("ChainClient")
            .field("chain", &self.chain)
            .field("endpoints", &labels)
            .finish()
    }
}

impl ChainClient {
    /// A client for `chain` over `urls` (`http(s)://` or `ws(s)://`), in
    /// preference order. WebSocket endpoints are connected here.
    pub async fn connect(
        chain: &str,
        urls: &[String],
        policy: RetryPolicy,
        metrics: RpcMetrics,
    ) -> Result<Self, ChainError> {
        if urls.is_empty() {
            return Err(ChainError::NoEndpoints(chain.to_owned()));
        }
        let bad = |url: &str, reason: String| ChainError::BadUrl {
            chain: chain.to_owned(),
            url: redact(url),
            reason,
        };
        let mut endpoints = Vec::with_capacity(urls.len());
        for url in urls {
            let parsed = url
                .parse::<alloy::transports::http::reqwest::Url>()
                .map_err(|e| bad(url, e.to_string()))?;
            let label = format!(
                "{}:{}",
                parsed.host_str().unwrap_or("?"),
                parsed.port_or_known_default().unwrap_or(0)
            );
            let provider = match parsed.scheme() {
                "http" | "https" => RootProvider::new_http(parsed),
                "ws" | "wss" => {
                    RootProvider::connect(url).await.map_err(|e| bad(url, e.to_string()))?
                }
                other => return Err(bad(url, format!("scheme {other:?} is not http(s) or ws(s)"))),
            };
            endpoints.push(Endpoint { label, provider });
        }
        Ok(Self {
            chain: chain.to_owned(),
            endpoints,
            preferred: AtomicUsize::new(0),
            policy,
            metrics,
            batch_refusals: AtomicUsize::new(0),
            multicall: AtomicU8::new(MULTICALL_UNKNOWN),
        })
    }

    /// The chain's name.
    pub fn chain(&self) -> &str {
        &self.chain
    }

    /// The provider of the endpoint that answered last: for sending
    /// transactions through a wallet layer.
    pub fn provider(&self) -> RootProvider {
        self.endpoints[self.preferred.load(Ordering::Relaxed) % self.endpoints.len()]
            .provider
            .clone()
    }

    /// Runs `op` on one endpoint at a time until one answers, in rounds with
    /// backoff; starts with the endpoint that answered last.
    pub async fn read<T, F, Fut>(&self, method: &'static str, op: F) -> Result<T, ChainError>
    where
        F: Fn(RootProvider) -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        let n = self.endpoints.len();
        let mut last = (String::new(), String::new());
        let mut backoff = self.policy.backoff;
        for round in 0..self.policy.rounds.max(1) {
            if round > 0 {
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
            let first = self.preferred.load(Ordering::Relaxed);
            for k in 0..n {
                let i = (first + k) % n;
                match self.attempt(i, method, &op).await {
                    Ok(value) => {
                        self.preferred.store(i, Ordering::Relaxed);
                        return Ok(value);
                    }
                    Err(error) => {
                        tracing::debug!(chain = %self.chain, endpoint = %self.endpoints[i].label, method, %error, "RPC request failed");
                        last = (self.endpoints[i].label.clone(), error);
                    }
                }
            }
        }
        Err(ChainError::Unavailable {
            chain: self.chain.clone(),
            method,
            endpoint: last.0,
            error: last.1,
        })
    }

    /// Runs `op` on every endpoint at once; returns the answer a strict
    /// majority of all endpoints gave.
    pub async fn read_quorum<T, F, Fut>(&self, method: &'static str, op: F) -> Result<T, ChainError>
    where
        T: PartialEq,
        F: Fn(RootProvider) -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        let n = self.endpoints.len();
        if n == 1 {
            return self.read(method, op).await;
        }
        let needed = n / 2 + 1;
        let answers = futures::future::join_all((0..n).map(|i| self.attempt(i, method, &op))).await;
        let mut ok: Vec<T> = answers.into_iter().filter_map(Result::ok).collect();
        let agreeing: Vec<usize> =
            ok.iter().map(|a| ok.iter().filter(|b| *b == a).count()).collect();
        match agreeing.iter().copied().enumerate().max_by_key(|&(_, n)| n) {
            Some((i, n)) if n >= needed => Ok(ok.swap_remove(i)),
            best => Err(ChainError::NoQuorum {
                chain: self.chain.clone(),
                method,
                agreeing: best.map_or(0, |(_, n)| n),
                endpoints: n,
                needed,
            }),
        }
    }

    async fn attempt<T, F, Fut>(&self, i: usize, method: &'static str, op: &F) -> Result<T, String>
    where
        F: Fn(RootProvider) -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        let endpoint = &self.endpoints[i];
        let start = Instant::now();
        let outcome =
            tokio::time::timeout(self.policy.timeout, op(endpoint.provider.clone())).await;
        self.metrics
            .duration
            .with_label_values(&[&self.chain, method])
            .observe(start.elapsed().as_secs_f64());
        let (status, result) = match outcome {
            Ok(Ok(value)) => ("ok", Ok(value)),
            Ok(Err(e)) => ("error", Err(e.to_string())),
            Err(_) => ("timeout", Err(format!("no answer within {:?}", self.policy.timeout))),
        };
        self.metrics
            .requests
            .with_label_values(&[&self.chain, &endpoint.label, method, status])
            .inc();
        result
    }

    /// The tip's block number.
    pub async fn block_number(&self) -> Result<u64, ChainError> {
        self.read("eth_blockNumber", |p| async move { p.get_block_number().await }).await
    }

    /// The newest block an agent may act on: `tip − n`, or the tagged block.
    pub async fn final_block(&self, reorg: ReorgPeriod) -> Result<u64, ChainError> {
        let tag = match reorg {
            ReorgPeriod::Blocks(n) => return Ok(self.block_number().await?.saturating_sub(n)),
            ReorgPeriod::Finalized => BlockNumberOrTag::Finalized,
            ReorgPeriod::Safe => BlockNumberOrTag::Safe,
        };
        let block = self
            .read("eth_getBlockByNumber", |p| async move { p.get_block_by_number(tag).await })
            .await?;
        block.map(|b| b.header.number).ok_or_else(|| ChainError::UnknownBlock {
            chain: self.chain.clone(),
            block: tag.to_string(),
        })
    }

    /// `eth_getLogs`.
    pub async fn logs(&self, filter: &Filter) -> Result<Vec<Log>, ChainError> {
        self.read("eth_getLogs", |p| async move { p.get_logs(filter).await }).await
    }

    /// A contract read at `block`, decoded as `C`'s return type.
    pub async fn call<C: SolCall>(
        &self,
        to: Address,
        call: &C,
        block: u64,
    ) -> Result<C::Return, ChainError> {
        let raw =
            self.read(C::SIGNATURE, |p| Self::eth_call(p, to, call.abi_encode(), block)).await?;
        self.decode::<C>(&raw)
    }

    /// The same contract read of many calls at `block`, each with its own
    /// answer in the order of `calls` (a revert fails that call only).
    ///
    /// On a chain with Multicall3 at [`MULTICALL3_ADDRESS`] (looked up once
    /// per client) the calls go as `aggregate3` reads of at most
    /// [`MAX_MULTICALL_CALLS`] each, run side by side: one execution on the
    /// node per hundred calls. The targets then see Multicall3 as the caller,
    /// so this is for reads that do not depend on it. An `aggregate3` read
    /// that fails as a whole, and every read on a chain without Multicall3,
    /// goes as JSON-RPC batches instead (see `json_batches`).
    pub async fn call_batch<C: SolCall>(
        &self,
        to: Address,
        calls: &[C],
        block: u64,
    ) -> Vec<Result<C::Return, ChainError>> {
        if calls.is_empty() || !self.has_multicall().await {
            return self.json_batches(to, calls, block).await;
        }
        let chunks: Vec<&[C]> = calls.chunks(MAX_MULTICALL_CALLS).collect();
        let answers =
            futures::future::join_all(chunks.iter().map(|chunk| self.aggregate3(to, chunk, block)))
                .await;
        let mut out = Vec::with_capacity(calls.len());
        for (chunk, answer) in chunks.into_iter().zip(answers) {
            match answer {
                Ok(answers) => out.extend(answers),
                Err(error) => {
                    tracing::debug!(chain = %self.chain, %error, "aggregate3 read failed; reading as a JSON-RPC batch");
                    out.extend(self.json_batches(to, chunk, block).await);
                }
            }
        }
        out
    }

    /// Multicall3's address if the chain has it at [`MULTICALL3_ADDRESS`]
    /// (looked up once per client, as for [`ChainClient::call_batch`]).
    pub async fn multicall(&self) -> Option<Address> {
        self.has_multicall().await.then_some(MULTICALL3_ADDRESS)
    }

    /// Whether the chain has code at [`MULTICALL3_ADDRESS`]. Looked up once;
    /// a lookup that fails is tried again on the next read.
    async fn has_multicall(&self) -> bool {
        match self.multicall.load(Ordering::Relaxed) {
            MULTICALL_PRESENT => true,
            MULTICALL_ABSENT => false,
            _ => match self.code(MULTICALL3_ADDRESS).await {
                Ok(code) => {
                    let present = !code.is_empty();
                    let state = if present { MULTICALL_PRESENT } else { MULTICALL_ABSENT };
                    self.multicall.store(state, Ordering::Relaxed);
                    present
                }
                Err(_) => false,
            },
        }
    }

    /// `calls` (at most [`MAX_MULTICALL_CALLS`]) as one `aggregate3` read,
    /// each allowed to fail on its own.
    async fn aggregate3<C: SolCall>(
        &self,
        to: Address,
        calls: &[C],
        block: u64,
    ) -> Result<Vec<Result<C::Return, ChainError>>, ChainError> {
        let call = Multicall3::aggregate3Call {
            calls: calls
                .iter()
                .map(|c| Multicall3::Call3 {
                    target: to,
                    allowFailure: true,
                    callData: c.abi_encode().into(),
                })
                .collect(),
        };
        let results = self.call(MULTICALL3_ADDRESS, &call, block).await?;
        if results.len() != calls.len() {
            return Err(ChainError::Decode {
                chain: self.chain.clone(),
                method: Multicall3::aggregate3Call::SIGNATURE,
                reason: format!("{} results for {} calls", results.len(), calls.len()),
            });
        }
        Ok(results
            .into_iter()
            .map(|result| {
                if result.success {
                    self.decode::<C>(&result.returnData)
                } else {
                    Err(ChainError::Unavailable {
                        chain: self.chain.clone(),
                        method: C::SIGNATURE,
                        endpoint: String::from("multicall"),
                        error: format!("execution reverted: {}", result.returnData),
                    })
                }
            })
            .collect())
    }

    /// The same contract read of many calls at `block`, sent as JSON-RPC
    /// batches of at most [`MAX_BATCH_CALLS`] (one request each, where one
    /// `eth_call` each would cost a round trip apiece). Each call has its
    /// own answer, in the order of `calls` (a revert fails that call only).
    /// A batch that fails is read again one call per request (16 at once);
    /// after [`BATCH_REFUSALS`] such batches in a row whose calls then
    /// succeeded alone, the endpoint is taken not to serve batches and every
    /// later read goes one call at a time.
    async fn json_batches<C: SolCall>(
        &self,
        to: Address,
        calls: &[C],
        block: u64,
    ) -> Vec<Result<C::Return, ChainError>> {
        let mut out = Vec::with_capacity(calls.len());
        for chunk in calls.chunks(MAX_BATCH_CALLS) {
            if self.batch_refusals.load(Ordering::Relaxed) >= BATCH_REFUSALS {
                let all: Vec<&C> = chunk.iter().collect();
                out.extend(self.call_each_alone(to, &all, block).await);
                continue;
            }
            let answers = match self.eth_call_batch(to, chunk, block).await {
                Ok(answers) => answers,
                Err(error) => {
                    tracing::debug!(chain = %self.chain, %error, "batched reads failed; reading one by one");
                    chunk.iter().map(|_| None).collect()
                }
            };
            // A call the node answered (a result, or its own error such as a
            // revert) keeps that answer; one left unanswered (the batch
            // refused or cut short) is read again alone.
            let missing: Vec<usize> =
                answers.iter().enumerate().filter(|(_, a)| a.is_none()).map(|(i, _)| i).collect();
            let again: Vec<&C> = missing.iter().map(|&i| &chunk[i]).collect();
            let alone = self.call_each_alone(to, &again, block).await;
            let answered_alone = alone.iter().any(Result::is_ok);
            let mut alone = alone.into_iter();
            if missing.len() == chunk.len() && !chunk.is_empty() {
                // The whole batch went unanswered: count it against batches
                // if the calls alone were answered.
                if answered_alone {
                    let refusals = self.batch_refusals.fetch_add(1, Ordering::Relaxed) + 1;
                    if refusals == BATCH_REFUSALS {
                        tracing::warn!(chain = %self.chain, "the endpoint does not answer JSON-RPC batches; reading one call per request");
                    }
                }
            } else {
                self.batch_refusals.store(0, Ordering::Relaxed);
            }
            for answer in answers {
                match answer {
                    Some(answer) => out.push(answer),
                    None => out.push(alone.next().unwrap_or_else(|| {
                        Err(ChainError::Decode {
                            chain: self.chain.clone(),
                            method: C::SIGNATURE,
                            reason: "no answer".into(),
                        })
                    })),
                }
            }
        }
        out
    }

    /// One JSON-RPC batch of `calls`: per call, `Some` with the node's answer
    /// (its result, or its error response such as a revert), or `None` when
    /// the batch's reply held nothing for it. The error is a batch no
    /// endpoint answered at all.
    async fn eth_call_batch<C: SolCall>(
        &self,
        to: Address,
        calls: &[C],
        block: u64,
    ) -> Result<Vec<Option<Result<C::Return, ChainError>>>, ChainError> {
        let requests: Vec<TransactionRequest> = calls
            .iter()
            .map(|call| TransactionRequest::default().with_to(to).with_input(call.abi_encode()))
            .collect();
        let answers = self
            .read(C::SIGNATURE, |p| {
                let requests = &requests;
                async move {
                    let mut batch = alloy::rpc::client::BatchRequest::new(p.client());
                    let waiters = requests
                        .iter()
                        .map(|tx| {
                            batch.add_call::<_, Bytes>("eth_call", &(tx, BlockId::number(block)))
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    batch.send().await?;
                    let mut answers: Vec<Option<Result<Bytes, String>>> =
                        Vec::with_capacity(waiters.len());
                    for waiter in waiters {
                        answers.push(match waiter.await {
                            Ok(raw) => Some(Ok(raw)),
                            Err(e) if e.as_error_resp().is_some() => Some(Err(e.to_string())),
                            Err(_) => None,
                        });
                    }
                    Ok(answers)
                }
            })
            .await?;
        Ok(answers
            .into_iter()
            .map(|answer| {
                answer.map(|answer| match answer {
                    Ok(raw) => self.decode::<C>(&raw),
                    Err(error) => Err(ChainError::Unavailable {
                        chain: self.chain.clone(),
                        method: C::SIGNATURE,
                        endpoint: String::from("batch"),
                        error,
                    }),
                })
            })
            .collect())
    }

    /// `calls` read one call per request, 16 requests at a time.
    async fn call_each_alone<C: SolCall>(
        &self,
        to: Address,
        calls: &[&C],
        block: u64,
    ) -> Vec<Result<C::Return, ChainError>> {
        let mut out = Vec::with_capacity(calls.len());
        for group in calls.chunks(16) {
            out.extend(
                futures::future::join_all(group.iter().map(|c| self.call(to, *c, block))).await,
            );
        }
        out
    }

    /// A contract read at `block` that a strict majority of endpoints must
    /// answer identically.
    pub async fn call_quorum<C: SolCall>(
        &self,
        to: Address,
        call: &C,
        block: u64,
    ) -> Result<C::Return, ChainError> {
        let raw = self
            .read_quorum(C::SIGNATURE, |p| Self::eth_call(p, to, call.abi_encode(), block))
            .await?;
        self.decode::<C>(&raw)
    }

    /// The same contract read from every endpoint separately, labelled by
    /// endpoint: for diagnostics when endpoints disagree.
    pub async fn call_each<C: SolCall>(
        &self,
        to: Address,
        call: &C,
        block: u64,
    ) -> Vec<(String, Result<C::Return, String>)> {
        let data = call.abi_encode();
        let op = |p| Self::eth_call(p, to, data.clone(), block);
        let answers = futures::future::join_all(
            (0..self.endpoints.len()).map(|i| self.attempt(i, C::SIGNATURE, &op)),
        )
        .await;
        self.endpoints
            .iter()
            .zip(answers)
            .map(|(e, raw)| {
                (
                    e.label.clone(),
                    raw.and_then(|raw| self.decode::<C>(&raw).map_err(|e| e.to_string())),
                )
            })
            .collect()
    }

    async fn eth_call(
        p: RootProvider,
        to: Address,
        data: Vec<u8>,
        block: u64,
    ) -> Result<Bytes, TransportError> {
        let tx = TransactionRequest::default().with_to(to).with_input(data);
        p.call(tx).block(BlockId::number(block)).await
    }

    fn decode<C: SolCall>(&self, raw: &[u8]) -> Result<C::Return, ChainError> {
        C::abi_decode_returns(raw).map_err(|e| ChainError::Decode {
            chain: self.chain.clone(),
            method: C::SIGNATURE,
            reason: e.to_string(),
        })
    }

    /// The code at `address` (empty for an account without code).
    pub async fn code(&self, address: Address) -> Result<Bytes, ChainError> {
        self.read("eth_getCode", |p| async move { p.get_code_at(address).await }).await
    }

    /// The balance of `address` at the tip.
    pub async fn balance(&self, address: Address) -> Result<U256, ChainError> {
        self.read("eth_getBalance", |p| async move { p.get_balance(address).await }).await
    }
}

/// A URL fit for an error message: scheme, host and port only.
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = host.rsplit('@').next().unwrap_or(host);
            format!("{scheme}://{host}/…")
        }
        None => String::from("(not a URL)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_urls_are_refused_without_their_secrets() {
        let m = RpcMetrics::unregistered();
        let p = RetryPolicy::default();
        let err = ChainClient::connect("a", &["ftp://user:key@host:1/path".into()], p, m.clone())
            .await
            .unwrap_err();
        let err = err.to_string();
        assert!(err.contains("is not http(s) or ws(s)") && !err.contains("key"), "{err}");
        assert!(ChainClient::connect("a", &[], p, m.clone()).await.is_err());
        assert!(ChainClient::connect("a", &["http://[::1".into()], p, m).await.is_err());
    }
}
