// The hardhat node the throughput bench compares against: same chain id,
// dev mnemonic and automine (one block per transaction) as the other nodes.
module.exports = {
  networks: {
    hardhat: {
      chainId: 31337,
      mining: { auto: true, interval: 0 },
      accounts: { mnemonic: "test test test test test test test test test test test junk", count: 10 },
      initialBaseFeePerGas: 1000000000,
      blockGasLimit: 30000000,
    },
  },
};
