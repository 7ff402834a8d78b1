"""Drives a metalayer-rollup node with web3.py: reads, dev-account sends,
raw signed sends, a contract deployment, logs and a revert."""
import sys

from eth_account import Account
from web3 import Web3

url, bytecode = sys.argv[1], sys.argv[2]
w3 = Web3(Web3.HTTPProvider(url))
assert w3.is_connected(), "not connected"
assert w3.eth.chain_id == 31337, w3.eth.chain_id
accounts = w3.eth.accounts
assert len(accounts) == 10 and accounts[0] == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", accounts
start = w3.eth.block_number

# A dev-account transfer through eth_sendTransaction.
h = w3.eth.send_transaction({"from": accounts[0], "to": accounts[1], "value": 12345})
r = w3.eth.wait_for_transaction_receipt(h)
assert r.status == 1 and r.blockNumber == start + 1, r

# A raw EIP-1559 transaction signed locally by eth_account.
acct = Account.from_key("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
assert acct.address == accounts[1]
tx = {
    "chainId": 31337,
    "nonce": w3.eth.get_transaction_count(acct.address, "pending"),
    "to": accounts[2],
    "value": 7,
    "gas": 21000,
    "maxFeePerGas": w3.eth.gas_price * 2,
    "maxPriorityFeePerGas": w3.eth.max_priority_fee,
    "type": 2,
}
signed = acct.sign_transaction(tx)
h = w3.eth.send_raw_transaction(signed.raw_transaction)
r = w3.eth.wait_for_transaction_receipt(h)
assert r.status == 1 and r["from"] == acct.address, r
got = w3.eth.get_transaction(h)
assert got["value"] == 7 and got["blockNumber"] == r.blockNumber

# Deploy TestRecipient (owner = accounts[0]) and call handle.
abi = [
    {"type": "function", "name": "handle", "stateMutability": "payable", "outputs": [],
     "inputs": [{"name": "origin", "type": "uint32"}, {"name": "sender", "type": "bytes32"}, {"name": "body", "type": "bytes"}]},
    {"type": "function", "name": "handledCount", "stateMutability": "view", "inputs": [], "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "function", "name": "setInterchainSecurityModule", "stateMutability": "nonpayable", "outputs": [],
     "inputs": [{"name": "ism", "type": "address"}]},
    {"type": "constructor", "stateMutability": "nonpayable", "inputs": [{"name": "initialOwner", "type": "address"}]},
    {"type": "event", "name": "ReceivedMessage", "anonymous": False, "inputs": [
        {"name": "origin", "type": "uint32", "indexed": True}, {"name": "sender", "type": "bytes32", "indexed": True},
        {"name": "value", "type": "uint256", "indexed": False}, {"name": "body", "type": "bytes", "indexed": False}]},
    {"type": "error", "name": "NotOwner", "inputs": [{"name": "caller", "type": "address"}]},
]
Factory = w3.eth.contract(abi=abi, bytecode=bytecode)
h = Factory.constructor(accounts[0]).transact({"from": accounts[0]})
r = w3.eth.wait_for_transaction_receipt(h)
c = w3.eth.contract(address=r.contractAddress, abi=abi)
h = c.functions.handle(5, b"\x01" * 32, b"from web3.py").transact({"from": accounts[0]})
w3.eth.wait_for_transaction_receipt(h)
assert c.functions.handledCount().call() == 1
events = c.events.ReceivedMessage().get_logs(from_block=0)
assert len(events) == 1 and events[0].args.body == b"from web3.py", events

# A revert from a non-owner comes back as a contract error with data.
try:
    c.functions.setInterchainSecurityModule(accounts[3]).call({"from": accounts[3]})
    raise SystemExit("expected a revert")
except Exception as e:  # web3 raises ContractCustomError with the revert data
    assert "0x" in str(e) or "NotOwner" in str(e), repr(e)

block = w3.eth.get_block("latest", full_transactions=True)
assert block.number == w3.eth.block_number and len(block.transactions) == 1
print("web3.py OK")
