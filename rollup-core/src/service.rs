//! A node with its JSON-RPC server: what the binary, the tests and the bench start.

use std::net::SocketAddr;
use std::sync::Arc;

use jsonrpsee::server::ServerHandle;

use crate::error::NodeError;
use crate::node::{Node, NodeConfig};
use crate::rpc::{RpcLimits, serve};

/// A started node and its RPC server.
#[derive(Debug)]
pub struct RunningNode {
    /// The node.
    pub node: Arc<Node>,
    /// Address the RPC server listens on (HTTP and WebSocket).
    pub rpc_addr: SocketAddr,
    handle: ServerHandle,
}

impl RunningNode {
    /// Opens the chain in `config.data_dir` and serves JSON-RPC on `listen`
    /// (port 0 picks a free port).
    pub async fn start(
        config: NodeConfig,
        listen: SocketAddr,
        limits: RpcLimits,
    ) -> Result<Self, NodeError> {
        let node = Node::start(config)?;
        let (rpc_addr, handle) = serve(node.clone(), listen, limits)
            .await
            .map_err(|e| NodeError::Config(format!("cannot serve JSON-RPC on {listen}: {e}")))?;
        Ok(Self { node, rpc_addr, handle })
    }

    /// HTTP URL of the RPC server.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.rpc_addr)
    }

    /// WebSocket URL of the RPC server.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.rpc_addr)
    }

    /// Stops serving, stops the miner and waits for both; the store closes
    /// once the returned node handle (if kept) is dropped.
    pub async fn stop(self) {
        let _ = self.handle.stop();
        self.handle.clone().stopped().await;
        self.node.stop();
    }
}

/// A node dropped without [`RunningNode::stop`] (a failed test, say) stops
/// serving and mining rather than running on with its data directory
/// possibly gone; it does not wait for the miner.
impl Drop for RunningNode {
    fn drop(&mut self) {
        let _ = self.handle.stop();
        self.node.request_stop();
    }
}
