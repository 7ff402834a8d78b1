//! A destination core stack on a revm chain, an origin tree kept by the protocol crate,
//! and validators whose keys sign with the protocol crate.

use alloy::primitives::{Address, B256, Bytes};
use alloy::sol_types::SolConstructor;
use metalayer_contracts::bindings::{
    Mailbox, NullRecipient, StaticMerkleRootMultisigIsmFactory, StaticMessageIdMultisigIsmFactory,
    TestRecipient,
};
use metalayer_protocol::merkle::MerkleProver;
use metalayer_protocol::metadata::{MerkleRootMultisigMetadata, MessageIdMultisigMetadata};
use metalayer_protocol::{
    Checkpoint, CheckpointWithMessageId, LocalSigner, Message, Signature, Signer,
    address_to_bytes32,
};

use crate::harness::{Chain, Receipt};

/// Origin domain of the messages delivered in tests.
pub(crate) const ORIGIN: u32 = 1000;
/// Domain of the destination stack.
pub(crate) const DESTINATION: u32 = 2000;

/// Creation code followed by ABI-encoded constructor arguments.
pub(crate) fn creation(code: &Bytes, args: &[u8]) -> Bytes {
    [code.as_ref(), args].concat().into()
}

/// Module type of the embedded ISM of a Mailbox without a validator set.
pub(crate) const NO_MODULE: u8 = 0;
/// Module type of an embedded MerkleRoot ISM.
pub(crate) const MERKLE_ROOT: u8 = metalayer_contracts::MERKLE_ROOT_MODULE_TYPE;
/// Module type of an embedded MessageId ISM.
pub(crate) const MESSAGE_ID: u8 = metalayer_contracts::MESSAGE_ID_MODULE_TYPE;

/// Creation code of a Mailbox for [`DESTINATION`] owned by `owner`, embedding
/// `validators` with `threshold` as an ISM of `module_type` (none: empty, 0 and
/// [`NO_MODULE`]).
pub(crate) fn mailbox_creation(
    owner: Address,
    validators: Vec<Address>,
    threshold: u8,
    module_type: u8,
) -> Bytes {
    let args = Mailbox::constructorCall {
        domain: DESTINATION,
        initialOwner: owner,
        validators,
        threshold,
        embeddedModuleType: module_type,
    };
    creation(&Mailbox::BYTECODE, &args.abi_encode())
}

/// A validator set with its keys, in list order.
pub(crate) struct Validators {
    /// Keys, in validator-list order.
    pub(crate) signers: Vec<LocalSigner>,
    /// Threshold.
    pub(crate) threshold: u8,
}

impl Validators {
    /// `n` validators with deterministic keys (derived from `seed`), threshold `t`.
    pub(crate) fn new(n: usize, t: u8, seed: u8) -> Self {
        let signers = (0..n)
            .map(|i| {
                let mut key = B256::repeat_byte(seed);
                key[30] = seed;
                key[31] = i as u8 + 1;
                LocalSigner::from_bytes(&key).expect("a valid secret key")
            })
            .collect();
        Self { signers, threshold: t }
    }

    /// Addresses, in list order.
    pub(crate) fn addresses(&self) -> Vec<Address> {
        self.signers.iter().map(|s| s.address()).collect()
    }

    /// Signatures over `checkpoint` by the validators at `which` (in that order).
    pub(crate) fn sign(
        &self,
        checkpoint: &CheckpointWithMessageId,
        which: &[usize],
    ) -> Vec<Signature> {
        let digest = checkpoint.digest();
        which
            .iter()
            .map(|&i| self.signers[i].sign_digest(digest).expect("signing succeeds"))
            .collect()
    }

    /// Signatures by the first `threshold` validators.
    pub(crate) fn sign_threshold(&self, checkpoint: &CheckpointWithMessageId) -> Vec<Signature> {
        let which: Vec<usize> = (0..usize::from(self.threshold)).collect();
        self.sign(checkpoint, &which)
    }
}

/// The origin side, simulated: its merkle tree hook address and its tree.
pub(crate) struct Origin {
    /// Origin domain.
    pub(crate) domain: u32,
    /// The origin merkle tree hook, 32-byte form.
    pub(crate) hook: B256,
    /// Every leaf so far.
    pub(crate) tree: MerkleProver,
    /// Next nonce.
    pub(crate) nonce: u32,
}

impl Origin {
    /// An origin with an empty tree.
    pub(crate) fn new() -> Self {
        let hook = address_to_bytes32(Address::repeat_byte(0xab));
        Self { domain: ORIGIN, hook, tree: MerkleProver::new(), nonce: 0 }
    }

    /// Builds the next message to `recipient` on DESTINATION and inserts it into the tree.
    pub(crate) fn dispatch(&mut self, recipient: Address, body: &[u8]) -> Message {
        let message = Message {
            version: 3,
            nonce: self.nonce,
            origin: self.domain,
            sender: address_to_bytes32(Address::repeat_byte(0x5e)),
            destination: DESTINATION,
            recipient: address_to_bytes32(recipient),
            body: Bytes::copy_from_slice(body),
        };
        self.nonce += 1;
        self.tree.insert(message.id()).expect("tree not full");
        message
    }

    /// The checkpoint at leaf `index`, as validators sign it.
    pub(crate) fn checkpoint_at(&self, index: u32) -> CheckpointWithMessageId {
        let count = u64::from(index) + 1;
        CheckpointWithMessageId {
            checkpoint: Checkpoint {
                merkle_tree_hook: self.hook,
                origin: self.domain,
                root: self.tree.root_at(count).expect("index within the tree"),
                index,
            },
            message_id: self.tree.leaf(index).expect("index within the tree"),
        }
    }

    /// MessageId metadata for the message at leaf `index`, signed by the threshold.
    pub(crate) fn message_id_metadata(&self, validators: &Validators, index: u32) -> Vec<u8> {
        let checkpoint = self.checkpoint_at(index);
        message_id_metadata(&checkpoint, validators.sign_threshold(&checkpoint))
    }

    /// MerkleRoot metadata proving leaf `index` against the checkpoint at `signed`.
    pub(crate) fn merkle_root_metadata(
        &self,
        validators: &Validators,
        index: u32,
        signed: u32,
    ) -> Vec<u8> {
        let checkpoint = self.checkpoint_at(signed);
        let proof = self.tree.prove_at(index, u64::from(signed) + 1).expect("provable leaf");
        MerkleRootMultisigMetadata {
            merkle_tree_hook: self.hook,
            message_index: index,
            signed_message_id: checkpoint.message_id,
            proof: proof.path,
            signed_index: signed,
            signatures: validators.sign_threshold(&checkpoint),
        }
        .encode()
    }
}

/// MessageId metadata for `checkpoint` with the given signatures.
pub(crate) fn message_id_metadata(
    checkpoint: &CheckpointWithMessageId,
    signatures: Vec<Signature>,
) -> Vec<u8> {
    MessageIdMultisigMetadata {
        merkle_tree_hook: checkpoint.checkpoint.merkle_tree_hook,
        root: checkpoint.checkpoint.root,
        index: checkpoint.checkpoint.index,
        signatures,
    }
    .encode()
}

/// A destination chain with a Mailbox (embedded tree as default hook, the validator set
/// embedded as a MessageId ISM or, with [`Stack::with_embedded`], a MerkleRoot ISM), both
/// static multisig ISMs for the same set (the MessageId one as default ISM), and two
/// recipients.
pub(crate) struct Stack {
    /// The chain.
    pub(crate) chain: Chain,
    /// Deployer and owner of everything.
    pub(crate) owner: Address,
    /// Submits deliveries.
    pub(crate) relayer: Address,
    /// The Mailbox.
    pub(crate) mailbox: Address,
    /// StaticMessageIdMultisigIsm for the validators (the default ISM).
    pub(crate) message_id_ism: Address,
    /// StaticMerkleRootMultisigIsm for the validators.
    pub(crate) merkle_root_ism: Address,
    /// A TestRecipient (uses the default ISM until told otherwise).
    pub(crate) recipient: Address,
    /// A recipient whose handle does nothing.
    pub(crate) null_recipient: Address,
}

impl Stack {
    /// Deploys the stack for `validators`, embedded in the Mailbox as a MessageId ISM.
    pub(crate) fn new(validators: &Validators) -> Self {
        Self::with_embedded(validators, MESSAGE_ID)
    }

    /// Deploys the stack for `validators`, embedded in the Mailbox as an ISM of
    /// `module_type` ([`MESSAGE_ID`] or [`MERKLE_ROOT`]).
    pub(crate) fn with_embedded(validators: &Validators, module_type: u8) -> Self {
        let mut chain = Chain::new();
        let owner = Address::repeat_byte(0x01);
        let relayer = Address::repeat_byte(0x02);
        let set = validators.addresses();
        let t = validators.threshold;
        // The Mailbox embeds the same set (its own ISM), but the static ISM is the default.
        let mailbox = chain.deploy(owner, mailbox_creation(owner, set.clone(), t, module_type));
        let id_factory = chain.deploy(owner, StaticMessageIdMultisigIsmFactory::BYTECODE.clone());
        let message_id_ism = deploy_ism(&mut chain, owner, id_factory, &set, t);
        let root_factory =
            chain.deploy(owner, StaticMerkleRootMultisigIsmFactory::BYTECODE.clone());
        let merkle_root_ism = deploy_ism(&mut chain, owner, root_factory, &set, t);
        let recipient_args = TestRecipient::constructorCall { initialOwner: owner }.abi_encode();
        let recipient = chain.deploy(owner, creation(&TestRecipient::BYTECODE, &recipient_args));
        let null_recipient = chain.deploy(owner, NullRecipient::BYTECODE.clone());
        let init = Mailbox::initializeCall {
            newOwner: owner,
            ism: message_id_ism,
            hook: mailbox,
            required: Address::ZERO,
        };
        chain.send_call(owner, mailbox, &init).ok();
        chain.next_block();
        Self {
            chain,
            owner,
            relayer,
            mailbox,
            message_id_ism,
            merkle_root_ism,
            recipient,
            null_recipient,
        }
    }

    /// Submits `process(metadata, message)` from the relayer.
    pub(crate) fn process(&mut self, metadata: &[u8], message: &Message) -> Receipt {
        let call = Mailbox::processCall {
            metadata: metadata.to_vec().into(),
            message: message.encode().into(),
        };
        self.chain.send_call(self.relayer, self.mailbox, &call)
    }

    /// Whether the Mailbox reports `id` delivered.
    pub(crate) fn delivered(&mut self, id: B256) -> bool {
        self.chain.view(self.mailbox, &Mailbox::deliveredCall { id })
    }

    /// Makes the Mailbox's embedded ISM (the same validator set) the default ISM.
    pub(crate) fn use_embedded_ism(&mut self) {
        self.set_default_ism(self.mailbox);
    }

    /// Sets the Mailbox's default ISM.
    pub(crate) fn set_default_ism(&mut self, module: Address) {
        let call = Mailbox::setDefaultIsmCall { module };
        self.chain.send_call(self.owner, self.mailbox, &call).ok();
    }

    /// Sets the TestRecipient's ISM.
    pub(crate) fn set_recipient_ism(&mut self, ism: Address) {
        let call = TestRecipient::setInterchainSecurityModuleCall { ism };
        self.chain.send_call(self.owner, self.recipient, &call).ok();
    }
}

/// Deploys the ISM for `set`/`t` through `factory` and returns its address.
pub(crate) fn deploy_ism(
    chain: &mut Chain,
    from: Address,
    factory: Address,
    set: &[Address],
    t: u8,
) -> Address {
    let deploy =
        StaticMessageIdMultisigIsmFactory::deployCall { validators: set.to_vec(), threshold: t };
    chain.send_call(from, factory, &deploy).ok();
    let predicted = StaticMessageIdMultisigIsmFactory::getAddressCall {
        validators: set.to_vec(),
        threshold: t,
    };
    chain.view(factory, &predicted)
}
