//! A conference member fed arbitrary MLS bytes as if from the relay, sealed under the link's key
//! (the worst case: a member of the link, or a relay holding it): a commit, an application
//! message, a Welcome or a joiner's KeyPackage, chosen by the first byte; and arbitrary bytes as
//! a sealed message without the key. Never panics; nothing opens without the key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_e2ee::{ConferenceKeys, LinkSecret, Member, MlsKind};
use std::cell::RefCell;

const ADA: [u8; 16] = [0xad; 16];
const BEA: [u8; 16] = [0xbe; 16];
const CY: [u8; 16] = [0xc7; 16];

fn link() -> LinkSecret {
    LinkSecret::from_bytes([5; 32])
}

/// Ada and Bea in one group at epoch 1.
fn group() -> Option<(Member, Member)> {
    let mut ada = Member::new(&link(), ADA).ok()?;
    let mut bea = Member::new(&link(), BEA).ok()?;
    ada.create([9; 16]).ok()?;
    let commit = ada.commit(&[(BEA, bea.key_package().ok()?)], &[]).ok()?;
    ada.commit_accepted().ok()?;
    bea.join(&ADA, 1, &commit.welcome?).ok()?;
    Some((ada, bea))
}

thread_local! {
    static GROUP: RefCell<Option<(Member, Member)>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, mls)) = data.split_first() else {
        return;
    };
    let keys = ConferenceKeys::new(&link());
    GROUP.with_borrow_mut(|slot| {
        if slot.is_none() {
            *slot = group();
        }
        let Some((ada, bea)) = slot.as_mut() else {
            return;
        };
        let seal = |kind, epoch| keys.seal(kind, epoch, &ADA, mls).ok();
        let changed = match selector % 5 {
            0 => {
                assert!(
                    keys.open(MlsKind::Commit, 1, &ADA, mls).is_err(),
                    "arbitrary bytes opened without the key"
                );
                false
            }
            1 => seal(MlsKind::Commit, 1).is_some_and(|s| bea.receive_commit(&ADA, 1, &s).is_ok()),
            2 => {
                if let Some(s) = seal(MlsKind::Application, 1) {
                    let _ = bea.receive(&ADA, 1, &s);
                }
                false
            }
            3 => {
                if let (Some(s), Ok(mut joiner)) =
                    (seal(MlsKind::Welcome, 1), Member::new(&link(), CY))
                {
                    let _ = joiner.join(&ADA, 1, &s);
                }
                false
            }
            _ => {
                if let Ok(s) = keys.seal(MlsKind::KeyPackage, 0, &CY, mls)
                    && ada.commit(&[(CY, s)], &[]).is_ok()
                {
                    let _ = ada.commit_refused();
                }
                false
            }
        };
        if changed {
            // A commit that processed moved Bea on: start again from epoch 1.
            *slot = None;
        }
    });
});
