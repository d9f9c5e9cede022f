//! One member of a conference's MLS group (RFC 9420, ciphersuite 1), sans-IO: sealed bytes in,
//! sealed bytes and new epochs out (PROTOCOL.md §7). The relay delivers; it never sees an MLS
//! message in the clear (every one is sealed under the link's key, [`ConferenceKeys`]) and
//! cannot join: every commit carries the link's external PSK, so a Welcome opens only for
//! someone who holds the link.
//!
//! The configuration is the one ts-mls must use too (DESIGN §5): handshake messages encrypted
//! (PrivateMessage), the ratchet tree inside every Welcome, one past epoch kept for late
//! application messages, a basic credential holding the member's 16-byte relay id and a fresh
//! Ed25519 key per join.

use super::{ConferenceKeys, GroupCode, MlsKind};
use crate::Error;
use crate::link::LinkSecret;
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls::schedule::{ExternalPsk, PreSharedKeyId, Psk};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use zeroize::Zeroizing;

/// MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519.
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
/// RFC 9605 §5.2: the exporter label of a conference's SFrame base key.
pub const SFRAME_EXPORTER_LABEL: &str = "SFrame 1.0 Base Key";
/// The SFrame base key's length: AES-128-GCM's key length (RFC 9605 §5.2: `AEAD.Nk`).
pub const SFRAME_BASE_KEY_LEN: usize = 16;

/// A member's 16-byte relay id: its MLS credential's identity.
pub type MemberId = [u8; 16];

/// A commit this member made, for the relay: it counts only once the relay delivers it back
/// ([`Member::commit_accepted`]); refused, it is dropped ([`Member::commit_refused`]).
#[derive(Debug)]
pub struct Commit {
    /// The epoch it was made in (the relay's check: the first commit for it wins).
    pub epoch: u64,
    /// The sealed commit, for every member.
    pub commit: Vec<u8>,
    /// The sealed Welcome, for the joiners; `None` when it adds no one.
    pub welcome: Option<Vec<u8>>,
    /// The joiners whose KeyPackage was refused (it did not open, did not validate, or is not
    /// theirs): the relay turns them away.
    pub refused: Vec<MemberId>,
}

/// What a commit from another member did here.
#[derive(Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The group moved to this epoch.
    Epoch(u64),
    /// The commit removed this member: nothing sent from now on can be opened here.
    Removed,
}

/// One member of one conference. Keys zeroize with openmls' own types; no Debug.
pub struct Member {
    id: MemberId,
    keys: ConferenceKeys,
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
    group: Option<MlsGroup>,
}

fn failed<E>(why: &'static str) -> impl FnOnce(E) -> Error {
    move |_| Error::GroupFailed(why)
}

fn tampered<E>(why: &'static str) -> impl FnOnce(E) -> Error {
    move |_| Error::GroupTampered(why)
}

/// The identity a basic credential holds, if it is a relay id.
fn identity_of(credential: &Credential) -> Option<MemberId> {
    if credential.credential_type() != CredentialType::Basic {
        return None;
    }
    credential.serialized_content().try_into().ok()
}

impl Member {
    /// A member-to-be with relay id `id`, on `secret`'s link: a fresh signing key, the link's
    /// PSK stored for the group's commits.
    pub fn new(secret: &LinkSecret, id: MemberId) -> Result<Self, Error> {
        let provider = OpenMlsRustCrypto::default();
        let signer = SignatureKeyPair::new(CIPHERSUITE.signature_algorithm())
            .map_err(failed("no signing key"))?;
        signer
            .store(provider.storage())
            .map_err(failed("signing key not stored"))?;
        let credential = CredentialWithKey {
            credential: BasicCredential::new(id.to_vec()).into(),
            signature_key: signer.public().into(),
        };
        let keys = ConferenceKeys::new(secret);
        // openmls finds a PSK by its id (not its nonce, which is fresh in every commit): the
        // link's is stored once, and a commit or Welcome naming any other does not process.
        PreSharedKeyId::external(keys.psk_id(), vec![0; 32])
            .store(&provider, keys.psk())
            .map_err(failed("PSK not stored"))?;
        Ok(Self {
            id,
            keys,
            provider,
            signer,
            credential,
            group: None,
        })
    }

    /// This member's relay id.
    pub fn id(&self) -> &MemberId {
        &self.id
    }

    /// The link's PSK id with a fresh 32-byte nonce, for one commit.
    fn psk(&self) -> Result<PreSharedKeyId, Error> {
        PreSharedKeyId::new(
            CIPHERSUITE,
            self.provider.rand(),
            Psk::External(ExternalPsk::new(self.keys.psk_id())),
        )
        .map_err(failed("no PSK nonce"))
    }

    /// A sealed KeyPackage to publish on joining: whoever commits the join adds it.
    pub fn key_package(&self) -> Result<Vec<u8>, Error> {
        let bundle = KeyPackage::builder()
            // Used within seconds; a short lifetime would only fail on skewed clocks.
            .key_package_lifetime(Lifetime::init(0, i64::MAX as u64))
            .build(
                CIPHERSUITE,
                &self.provider,
                &self.signer,
                self.credential.clone(),
            )
            .map_err(failed("no key package"))?;
        let message = MlsMessageOut::from(bundle.key_package().clone())
            .tls_serialize_detached()
            .map_err(failed("key package not encoded"))?;
        self.keys.seal(MlsKind::KeyPackage, 0, &self.id, &message)
    }

    /// The group's first member makes it, at epoch 0.
    pub fn create(&mut self, group_id: [u8; 16]) -> Result<(), Error> {
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(CIPHERSUITE)
            .use_ratchet_tree_extension(true)
            .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
            .max_past_epochs(1)
            .build();
        let group = MlsGroup::new_with_group_id(
            &self.provider,
            &self.signer,
            &config,
            GroupId::from_slice(&group_id),
            self.credential.clone(),
        )
        .map_err(failed("group not made"))?;
        self.group = Some(group);
        Ok(())
    }

    fn group(&self) -> Result<&MlsGroup, Error> {
        self.group
            .as_ref()
            .ok_or(Error::CallerMisuse("not a member of the group yet"))
    }

    /// The group, the provider it works with and this member's signing key, once a member.
    fn parts(&mut self) -> Result<(&mut MlsGroup, &OpenMlsRustCrypto, &SignatureKeyPair), Error> {
        match self.group.as_mut() {
            Some(group) => Ok((group, &self.provider, &self.signer)),
            None => Err(Error::CallerMisuse("not a member of the group yet")),
        }
    }

    /// The current epoch, once a member.
    pub fn epoch(&self) -> Option<u64> {
        self.group.as_ref().map(|g| g.epoch().as_u64())
    }

    /// A joiner's sealed KeyPackage, opened and checked: ciphersuite 1, valid, its credential
    /// that joiner's relay id, and not someone already here.
    fn joiner(&self, who: &MemberId, sealed: &[u8]) -> Option<KeyPackage> {
        let group = self.group.as_ref()?;
        let bytes = self.keys.open(MlsKind::KeyPackage, 0, who, sealed).ok()?;
        let MlsMessageBodyIn::KeyPackage(kp) =
            MlsMessageIn::tls_deserialize_exact(bytes).ok()?.extract()
        else {
            return None;
        };
        let kp = kp
            .validate(self.provider.crypto(), ProtocolVersion::Mls10)
            .ok()?;
        let identity = identity_of(kp.leaf_node().credential())?;
        let present = group
            .members()
            .any(|m| identity_of(&m.credential) == Some(identity));
        (kp.ciphersuite() == CIPHERSUITE && identity == *who && !present).then_some(kp)
    }

    /// The commit the relay asked this member for: `adds` (each joiner's relay id and sealed
    /// KeyPackage) in, `removes` (relay ids) out, and the link's PSK. Pending until the relay
    /// delivers it back.
    pub fn commit(
        &mut self,
        adds: &[(MemberId, Vec<u8>)],
        removes: &[MemberId],
    ) -> Result<Commit, Error> {
        let group = self.group()?;
        let epoch = group.epoch().as_u64();
        let mut joining = Vec::new();
        let mut joiners = Vec::new();
        let mut refused = Vec::new();
        for (who, sealed) in adds {
            match self.joiner(who, sealed) {
                Some(kp) if !joiners.contains(who) => {
                    joining.push(kp);
                    joiners.push(*who);
                }
                _ => refused.push(*who),
            }
        }
        let leaving: Vec<LeafNodeIndex> = group
            .members()
            .filter(|m| identity_of(&m.credential).is_some_and(|id| removes.contains(&id)))
            .filter(|m| m.index != group.own_leaf_index())
            .map(|m| m.index)
            .collect();
        let psk = self.psk()?;
        let (group, provider, signer) = self.parts()?;
        let bundle = group
            .commit_builder()
            .propose_adds(joining)
            .propose_removals(leaving)
            .add_proposal(Proposal::PreSharedKey(Box::new(PreSharedKeyProposal::new(
                psk,
            ))))
            .load_psks(provider.storage())
            .map_err(failed("PSK not loaded"))?
            .build(provider.rand(), provider.crypto(), signer, |_| true)
            .map_err(failed("commit not built"))?
            .stage_commit(provider)
            .map_err(failed("commit not staged"))?;
        let commit = bundle
            .commit()
            .tls_serialize_detached()
            .map_err(failed("commit not encoded"))?;
        let welcome = match bundle.to_welcome_msg() {
            Some(w) => Some(
                w.tls_serialize_detached()
                    .map_err(failed("welcome not encoded"))?,
            ),
            None => None,
        };
        Ok(Commit {
            epoch,
            commit: self.keys.seal(MlsKind::Commit, epoch, &self.id, &commit)?,
            welcome: match welcome {
                Some(w) => Some(self.keys.seal(MlsKind::Welcome, epoch + 1, &self.id, &w)?),
                None => None,
            },
            refused,
        })
    }

    /// The relay delivered this member's own commit: it is the group's next epoch.
    pub fn commit_accepted(&mut self) -> Result<u64, Error> {
        let (group, provider, _) = self.parts()?;
        if group.pending_commit().is_none() {
            return Err(Error::CallerMisuse("no commit of ours is pending"));
        }
        group
            .merge_pending_commit(provider)
            .map_err(failed("own commit not merged"))?;
        Ok(group.epoch().as_u64())
    }

    /// The relay refused this member's commit (another won the epoch): it is forgotten.
    pub fn commit_refused(&mut self) -> Result<(), Error> {
        let (group, provider, _) = self.parts()?;
        group
            .clear_pending_commit(provider.storage())
            .map_err(failed("pending commit not cleared"))
    }

    /// Opens a sealed PrivateMessage of `kind` from `from` in `epoch`, for this group.
    fn private_message(
        &self,
        kind: MlsKind,
        from: &MemberId,
        epoch: u64,
        sealed: &[u8],
    ) -> Result<ProtocolMessage, Error> {
        let bytes = self.keys.open(kind, epoch, from, sealed)?;
        let message =
            MlsMessageIn::tls_deserialize_exact(bytes).map_err(tampered("not an MLS message"))?;
        let MlsMessageBodyIn::PrivateMessage(pm) = message.extract() else {
            return Err(Error::GroupTampered("not a PrivateMessage"));
        };
        let pm: ProtocolMessage = pm.into();
        let group = self.group()?;
        if pm.epoch().as_u64() != epoch || pm.group_id() != group.group_id() {
            return Err(Error::GroupTampered(
                "another epoch or group than the relay said",
            ));
        }
        Ok(pm)
    }

    /// A sealed PrivateMessage of `kind` from `from` in `epoch`, opened, decoded and processed
    /// by MLS; its MLS sender must be `from`.
    fn process(
        &mut self,
        kind: MlsKind,
        from: &MemberId,
        epoch: u64,
        sealed: &[u8],
    ) -> Result<ProcessedMessageContent, Error> {
        let pm = self.private_message(kind, from, epoch, sealed)?;
        let (did_not_process, impostor) = match kind {
            MlsKind::Commit => (
                "the commit did not process",
                "a commit from someone else than the relay said",
            ),
            _ => (
                "the message did not open",
                "a message from someone else than the relay said",
            ),
        };
        let (group, provider, _) = self.parts()?;
        let processed = group
            .process_message(provider, pm)
            .map_err(tampered(did_not_process))?;
        if identity_of(processed.credential()) != Some(*from) {
            return Err(Error::GroupTampered(impostor));
        }
        Ok(processed.into_content())
    }

    /// A commit from `from` for `epoch` (the relay delivers it to everyone, in order). It must
    /// carry the link's PSK and nothing but adds, removes and that PSK; its sender must be
    /// `from`. A commit that fails leaves this member out of step with the group.
    pub fn receive_commit(
        &mut self,
        from: &MemberId,
        epoch: u64,
        sealed: &[u8],
    ) -> Result<CommitOutcome, Error> {
        let ProcessedMessageContent::StagedCommitMessage(staged) =
            self.process(MlsKind::Commit, from, epoch, sealed)?
        else {
            return Err(Error::GroupTampered("not a commit"));
        };
        check_commit(&staged, &self.keys.psk_id())?;
        let removed = staged.self_removed();
        let (group, provider, _) = self.parts()?;
        group
            .merge_staged_commit(provider, *staged)
            .map_err(tampered("the commit did not merge"))?;
        if removed {
            return Ok(CommitOutcome::Removed);
        }
        Ok(CommitOutcome::Epoch(group.epoch().as_u64()))
    }

    /// Joins from the sealed Welcome `from` made for `epoch`. A member joins once: a client
    /// that joins the conference again (after a removal) makes a new member.
    pub fn join(&mut self, from: &MemberId, epoch: u64, sealed: &[u8]) -> Result<u64, Error> {
        let bytes = self.keys.open(MlsKind::Welcome, epoch, from, sealed)?;
        let MlsMessageBodyIn::Welcome(welcome) = MlsMessageIn::tls_deserialize_exact(bytes)
            .map_err(tampered("not an MLS message"))?
            .extract()
        else {
            return Err(Error::GroupTampered("not a Welcome"));
        };
        let config = MlsGroupJoinConfig::builder()
            .use_ratchet_tree_extension(true)
            .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
            .max_past_epochs(1)
            .build();
        let group = StagedWelcome::new_from_welcome(&self.provider, &config, welcome, None)
            .map_err(tampered("the Welcome did not open"))?
            .into_group(&self.provider)
            .map_err(tampered("the Welcome's group is not valid"))?;
        if group.epoch().as_u64() != epoch {
            return Err(Error::GroupTampered("a Welcome for another epoch"));
        }
        let joined = group.epoch().as_u64();
        self.group = Some(group);
        Ok(joined)
    }

    /// An application message to everyone (sealed for the relay).
    pub fn send(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let (group, provider, signer) = self.parts()?;
        let epoch = group.epoch().as_u64();
        let message = group
            .create_message(provider, signer, plaintext)
            .map_err(failed("message not made"))?
            .tls_serialize_detached()
            .map_err(failed("message not encoded"))?;
        self.keys
            .seal(MlsKind::Application, epoch, &self.id, &message)
    }

    /// An application message from `from` in `epoch`: its plaintext, if it opens and its MLS
    /// sender is `from`.
    pub fn receive(
        &mut self,
        from: &MemberId,
        epoch: u64,
        sealed: &[u8],
    ) -> Result<Vec<u8>, Error> {
        match self.process(MlsKind::Application, from, epoch, sealed)? {
            ProcessedMessageContent::ApplicationMessage(m) => Ok(m.into_bytes()),
            _ => Err(Error::GroupTampered("not an application message")),
        }
    }

    /// The epoch's SFrame base key: `MLS-Exporter("SFrame 1.0 Base Key", "", 16)`.
    pub fn sframe_base_key(&self) -> Result<Zeroizing<[u8; SFRAME_BASE_KEY_LEN]>, Error> {
        let secret = self
            .group()?
            .export_secret(
                self.provider.crypto(),
                SFRAME_EXPORTER_LABEL,
                b"",
                SFRAME_BASE_KEY_LEN,
            )
            .map_err(failed("no exporter secret"))?;
        let secret = Zeroizing::new(secret);
        let mut key = Zeroizing::new([0u8; SFRAME_BASE_KEY_LEN]);
        key.copy_from_slice(&secret);
        Ok(key)
    }

    /// The epoch authenticator (RFC 9420 §8.7): the same for everyone in the same group.
    pub fn epoch_authenticator(&self) -> Result<Vec<u8>, Error> {
        Ok(self.group()?.epoch_authenticator().as_slice().to_vec())
    }

    /// The code everyone compares, for this epoch.
    pub fn group_code(&self) -> Result<GroupCode, Error> {
        Ok(GroupCode::from_epoch_authenticator(
            self.group()?.epoch_authenticator().as_slice(),
        ))
    }

    /// Everyone in the group, by leaf index, with their relay id.
    pub fn members(&self) -> Vec<(u32, MemberId)> {
        self.group.as_ref().map_or_else(Vec::new, |g| {
            g.members()
                .filter_map(|m| Some((m.index.u32(), identity_of(&m.credential)?)))
                .collect()
        })
    }
}

/// A commit's proposals: adds, removes and exactly one PSK, the link's (external, its id).
fn check_commit(staged: &StagedCommit, psk_id: &[u8]) -> Result<(), Error> {
    let mut psks = 0;
    for queued in staged.queued_proposals() {
        match queued.proposal() {
            Proposal::Add(_) | Proposal::Remove(_) => {}
            Proposal::PreSharedKey(psk) => {
                // PreSharedKeyID: psktype external (1), then psk_id<V> (31 bytes: one length byte).
                let bytes = psk
                    .tls_serialize_detached()
                    .map_err(tampered("a PSK proposal that does not encode"))?;
                let mut want = vec![1, psk_id.len() as u8];
                want.extend_from_slice(psk_id);
                if !bytes.starts_with(&want) {
                    return Err(Error::GroupTampered("a PSK other than the link's"));
                }
                psks += 1;
            }
            _ => return Err(Error::GroupTampered("a proposal a conference never makes")),
        }
    }
    if psks != 1 {
        return Err(Error::GroupTampered("a commit without the link's PSK"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADA: MemberId = [0xad; 16];
    const BEA: MemberId = [0xbe; 16];
    const CY: MemberId = [0xc7; 16];

    fn link(b: u8) -> LinkSecret {
        LinkSecret::from_bytes([b; 32])
    }

    fn member(id: MemberId) -> Member {
        Member::new(&link(1), id).expect("a member")
    }

    /// Everyone in `members` holds the same epoch, SFrame key, authenticator and code.
    fn same_epoch(members: &[&Member]) -> u64 {
        let first = members[0];
        for m in members {
            assert_eq!(m.epoch(), first.epoch());
            assert_eq!(
                *m.sframe_base_key().expect("a key"),
                *first.sframe_base_key().expect("a key")
            );
            assert_eq!(
                m.epoch_authenticator().expect("an authenticator"),
                first.epoch_authenticator().expect("an authenticator")
            );
            assert_eq!(
                m.group_code().expect("a code"),
                first.group_code().expect("a code")
            );
        }
        first.epoch().expect("a member")
    }

    /// Ada makes the group and adds Bea and Cy, who join from the Welcome: epoch 1.
    fn three() -> (Member, Member, Member) {
        let (mut ada, mut bea, mut cy) = (member(ADA), member(BEA), member(CY));
        ada.create([7; 16]).expect("created");
        let adds = [
            (BEA, bea.key_package().expect("kp")),
            (CY, cy.key_package().expect("kp")),
        ];
        let commit = ada.commit(&adds, &[]).expect("a commit");
        assert_eq!((commit.epoch, commit.refused.as_slice()), (0, &[][..]));
        assert_eq!(ada.commit_accepted().expect("merged"), 1);
        let welcome = commit.welcome.expect("a Welcome for the joiners");
        assert_eq!(bea.join(&ADA, 1, &welcome).expect("Bea joins"), 1);
        assert_eq!(cy.join(&ADA, 1, &welcome).expect("Cy joins"), 1);
        (ada, bea, cy)
    }

    #[test]
    fn members_who_join_and_leave_share_each_epochs_keys_and_code_and_the_removed_open_nothing_after()
     {
        let (mut ada, mut bea, mut cy) = three();
        assert_eq!(same_epoch(&[&ada, &bea, &cy]), 1);
        let epoch1_key = *cy.sframe_base_key().expect("a key");
        assert_eq!(ada.members().len(), 3);

        // Bea removes Cy; the relay delivers the commit to all three.
        let commit = bea.commit(&[], &[CY]).expect("a commit");
        assert!(commit.welcome.is_none());
        assert_eq!(bea.commit_accepted().expect("merged"), 2);
        assert_eq!(
            ada.receive_commit(&BEA, 1, &commit.commit)
                .expect("Ada follows"),
            CommitOutcome::Epoch(2)
        );
        assert_eq!(
            cy.receive_commit(&BEA, 1, &commit.commit)
                .expect("Cy is told"),
            CommitOutcome::Removed
        );
        assert_eq!(same_epoch(&[&ada, &bea]), 2);
        assert_ne!(*ada.sframe_base_key().expect("a key"), epoch1_key);
        assert_eq!(
            ada.members().iter().map(|m| m.1).collect::<Vec<_>>(),
            [ADA, BEA]
        );

        // What Ada says now reaches Bea, and Cy cannot open it.
        let hello = ada.send(br#"{"t":"hello","name":"Ada"}"#).expect("sealed");
        assert_eq!(
            bea.receive(&ADA, 2, &hello).expect("Bea reads it"),
            br#"{"t":"hello","name":"Ada"}"#
        );
        assert!(cy.receive(&ADA, 2, &hello).is_err());
    }

    #[test]
    fn a_joiner_opens_nothing_sent_before_it_joined() {
        let (mut ada, mut bea) = (member(ADA), member(BEA));
        ada.create([7; 16]).expect("created");
        let before = ada.send(b"before").expect("sealed");
        let commit = ada
            .commit(&[(BEA, bea.key_package().expect("kp"))], &[])
            .expect("a commit");
        ada.commit_accepted().expect("merged");
        bea.join(&ADA, 1, &commit.welcome.expect("a Welcome"))
            .expect("joins");
        assert!(bea.receive(&ADA, 0, &before).is_err());
        let after = ada.send(b"after").expect("sealed");
        assert_eq!(bea.receive(&ADA, 1, &after).expect("opens"), b"after");
    }

    #[test]
    fn two_commits_for_one_epoch_end_in_one_group() {
        let (mut ada, mut bea, mut cy) = three();
        // Ada and Bea both commit for epoch 1; the relay takes Ada's and refuses Bea's.
        let ada_commit = ada.commit(&[], &[]).expect("Ada's commit");
        let _bea_commit = bea.commit(&[], &[]).expect("Bea's commit");
        ada.commit_accepted().expect("merged");
        bea.commit_refused().expect("forgotten");
        for m in [&mut bea, &mut cy] {
            assert_eq!(
                m.receive_commit(&ADA, 1, &ada_commit.commit)
                    .expect("follows"),
                CommitOutcome::Epoch(2)
            );
        }
        assert_eq!(same_epoch(&[&ada, &bea, &cy]), 2);
    }

    #[test]
    fn a_key_package_or_welcome_from_another_link_is_refused() {
        let mut ada = member(ADA);
        ada.create([7; 16]).expect("created");
        let stranger = Member::new(&link(2), BEA).expect("a member of another link");
        let commit = ada
            .commit(&[(BEA, stranger.key_package().expect("kp"))], &[])
            .expect("a commit");
        assert_eq!(commit.refused, [BEA]);
        assert!(commit.welcome.is_none());
        ada.commit_accepted().expect("merged");

        // A Welcome made on this link does not open for someone on another.
        let bea = member(BEA);
        let commit = ada
            .commit(&[(BEA, bea.key_package().expect("kp"))], &[])
            .expect("a commit");
        let mut stranger = Member::new(&link(2), BEA).expect("a member of another link");
        assert_eq!(
            stranger.join(&ADA, 2, &commit.welcome.expect("a Welcome")),
            Err(Error::GroupTampered("a sealed MLS message did not open"))
        );
    }

    #[test]
    fn a_key_package_is_refused_for_anyone_but_its_owner_and_twice_in_one_commit() {
        let (mut ada, bea) = (member(ADA), member(BEA));
        ada.create([7; 16]).expect("created");
        let kp = bea.key_package().expect("kp");
        // The relay presents Bea's key package as Cy's: it does not open (the sender is bound).
        let commit = ada
            .commit(&[(CY, kp.clone()), (BEA, kp.clone()), (BEA, kp)], &[])
            .expect("a commit");
        assert_eq!(commit.refused, [CY, BEA]);
        assert!(commit.welcome.is_some());
    }

    #[test]
    fn a_key_package_whose_signature_does_not_verify_refuses_that_joiner_only() {
        let (mut ada, bea, mut cy) = (member(ADA), member(BEA), member(CY));
        ada.create([7; 16]).expect("created");
        let keys = ConferenceKeys::new(&link(1));
        let sealed = bea.key_package().expect("kp");
        let mut kp = keys
            .open(MlsKind::KeyPackage, 0, &BEA, &sealed)
            .expect("opens");
        let last = kp.len() - 1;
        kp[last] ^= 1; // the signature's last byte
        let broken = keys
            .seal(MlsKind::KeyPackage, 0, &BEA, &kp)
            .expect("sealed");
        let commit = ada
            .commit(&[(BEA, broken), (CY, cy.key_package().expect("kp"))], &[])
            .expect("a commit");
        assert_eq!(commit.refused, [BEA]);
        ada.commit_accepted().expect("merged");
        assert_eq!(
            cy.join(&ADA, 1, &commit.welcome.expect("a Welcome"))
                .expect("joins"),
            1
        );
    }

    #[test]
    fn a_commit_the_relay_moves_to_another_epoch_or_sender_does_not_open() {
        let (mut ada, mut bea, _cy) = three();
        let commit = ada.commit(&[], &[]).expect("a commit");
        assert_eq!(
            bea.receive_commit(&CY, 1, &commit.commit),
            Err(Error::GroupTampered("a sealed MLS message did not open"))
        );
        assert_eq!(
            bea.receive_commit(&ADA, 2, &commit.commit),
            Err(Error::GroupTampered("a sealed MLS message did not open"))
        );
        // As an application message.
        assert!(bea.receive(&ADA, 1, &commit.commit).is_err());
    }

    #[test]
    fn a_member_who_seals_its_own_message_in_another_members_name_is_refused_by_its_mls_sender() {
        let (_ada, mut bea, mut cy) = three();
        // Cy holds the link, so it can seal anything as anyone: only MLS' own sender tells.
        let keys = ConferenceKeys::new(&link(1));
        let sent = cy.send(b"I am Ada").expect("sealed");
        let mls = keys
            .open(MlsKind::Application, 1, &CY, &sent)
            .expect("opens");
        let forged = keys
            .seal(MlsKind::Application, 1, &ADA, &mls)
            .expect("sealed");
        assert_eq!(
            bea.receive(&ADA, 1, &forged),
            Err(Error::GroupTampered(
                "a message from someone else than the relay said"
            ))
        );
        let commit = cy.commit(&[], &[]).expect("a commit");
        let mls = keys
            .open(MlsKind::Commit, 1, &CY, &commit.commit)
            .expect("opens");
        let forged = keys.seal(MlsKind::Commit, 1, &ADA, &mls).expect("sealed");
        assert_eq!(
            bea.receive_commit(&ADA, 1, &forged),
            Err(Error::GroupTampered(
                "a commit from someone else than the relay said"
            ))
        );
    }

    #[test]
    fn a_commit_without_the_links_psk_is_refused() {
        let (mut ada, mut bea, _cy) = three();
        // Ada's client is faulty (or hostile): a commit with no PSK, sealed correctly.
        let (provider, signer) = (&ada.provider, &ada.signer);
        let group = ada.group.as_mut().expect("a member");
        let bundle = group
            .commit_builder()
            .load_psks(provider.storage())
            .expect("no PSKs to load")
            .build(provider.rand(), provider.crypto(), signer, |_| true)
            .expect("built")
            .stage_commit(provider)
            .expect("staged");
        let bytes = bundle.commit().tls_serialize_detached().expect("encoded");
        let sealed = ada
            .keys
            .seal(MlsKind::Commit, 1, &ADA, &bytes)
            .expect("sealed");
        assert_eq!(
            bea.receive_commit(&ADA, 1, &sealed),
            Err(Error::GroupTampered("a commit without the link's PSK"))
        );
    }
}
