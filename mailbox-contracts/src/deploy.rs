//! Deploys a full core stack through any alloy provider.
