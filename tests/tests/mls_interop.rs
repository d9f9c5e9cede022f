//! openmls (sotto-e2ee's `Member`) and ts-mls (the browser's `web/crypto/member.js`, in node)
//! in one conference group: adds, removes and updates committed from either side for more than
//! 20 epochs, every member's SFrame base key, epoch authenticator, group code and roster
//! compared byte for byte after each, and an application message from the committer opened by
//! everyone else. The test delivers as the relay does (the commit to every member, its sender
//! included; the Welcome to the joiners), so that it can make commits of every shape (several
//! adds, an add and a remove at once) on demand; `tests/tests/conference.rs` runs the clients'
//! conference cores through the real relay, which decides who commits what.

use serde_json::json;
use sotto_e2ee::{CommitOutcome, LinkSecret, Member, MemberId};
use sotto_tests::node::{Js, View, hex, unhex};

const SECRET: [u8; 32] = [0x5a; 32];

enum Side {
    Rust(Box<Member>),
    Js,
}

struct Person {
    name: &'static str,
    id: MemberId,
    side: Side,
}

struct World {
    js: Js,
    people: Vec<Person>,
    /// Indices into `people` of the group's members, in no order.
    members: Vec<usize>,
    epoch: u64,
}

impl World {
    fn new() -> Self {
        let mut js = Js::start();
        let mut people = Vec::new();
        for (i, name) in ["r1", "r2", "r3", "j1", "j2", "j3"].into_iter().enumerate() {
            let id = [i as u8 + 1; 16];
            let side = if name.starts_with('r') {
                Side::Rust(Box::new(
                    Member::new(&LinkSecret::from_bytes(SECRET), id).expect("a member"),
                ))
            } else {
                js.call(
                    json!({"cmd": "create", "name": name, "secret": hex(&SECRET), "id": hex(&id)}),
                );
                Side::Js
            };
            people.push(Person { name, id, side });
        }
        Self {
            js,
            people,
            members: Vec::new(),
            epoch: 0,
        }
    }

    /// `who` joins again after a removal: as a client does, with a new member (new keys).
    fn fresh(&mut self, who: usize) {
        let Person { name, id, side } = &mut self.people[who];
        match side {
            Side::Rust(m) => {
                **m = Member::new(&LinkSecret::from_bytes(SECRET), *id).expect("a member")
            }
            Side::Js => {
                self.js.call(
                    json!({"cmd": "create", "name": *name, "secret": hex(&SECRET), "id": hex(id)}),
                );
            }
        }
    }

    fn key_package(&mut self, who: usize) -> Vec<u8> {
        match &self.people[who].side {
            Side::Rust(m) => m.key_package().expect("a key package"),
            Side::Js => {
                let r = self
                    .js
                    .call(json!({"cmd": "key-package", "name": self.people[who].name}));
                unhex(r["sealed"].as_str().expect("hex"))
            }
        }
    }

    fn view(&mut self, who: usize) -> View {
        match &self.people[who].side {
            Side::Rust(m) => View::of(m),
            Side::Js => View::from_js(
                &self
                    .js
                    .call(json!({"cmd": "info", "name": self.people[who].name})),
            ),
        }
    }

    /// Every member holds the same view of the current epoch.
    fn all_agree(&mut self) {
        let members = self.members.clone();
        let first = self.view(members[0]);
        assert_eq!(first.epoch, self.epoch);
        assert_eq!(first.members.len(), members.len());
        for &m in &members[1..] {
            let view = self.view(m);
            assert_eq!(
                view, first,
                "{} and {} disagree in epoch {}",
                self.people[m].name, self.people[members[0]].name, self.epoch
            );
        }
    }

    /// `committer` adds `adds` and removes `removes`; the commit is delivered to every member
    /// (its sender included, who merges it) and the Welcome to the joiners.
    fn commit(&mut self, committer: usize, adds: &[usize], removes: &[usize]) {
        let add_kps: Vec<(MemberId, Vec<u8>)> = adds
            .iter()
            .map(|&a| (self.people[a].id, self.key_package(a)))
            .collect();
        let remove_ids: Vec<MemberId> = removes.iter().map(|&r| self.people[r].id).collect();
        eprintln!(
            "epoch {}: {} adds {:?}, removes {:?}",
            self.epoch,
            self.people[committer].name,
            adds.iter()
                .map(|&a| self.people[a].name)
                .collect::<Vec<_>>(),
            removes
                .iter()
                .map(|&r| self.people[r].name)
                .collect::<Vec<_>>()
        );
        let from = self.people[committer].id;
        let (epoch, commit, welcome) = match &mut self.people[committer].side {
            Side::Rust(m) => {
                let c = m.commit(&add_kps, &remove_ids).expect("a commit");
                assert!(c.refused.is_empty(), "{:?}", c.refused);
                let epoch = m.commit_accepted().expect("merged");
                assert_eq!(epoch, c.epoch + 1);
                (c.epoch, c.commit, c.welcome)
            }
            Side::Js => {
                let name = self.people[committer].name;
                let r = self.js.call(json!({
                    "cmd": "commit", "name": name,
                    "adds": add_kps.iter().map(|(id, kp)| json!({"id": hex(id), "sealed": hex(kp)})).collect::<Vec<_>>(),
                    "removes": remove_ids.iter().map(|id| hex(id)).collect::<Vec<_>>(),
                }));
                assert_eq!(r["refused"], json!([]));
                self.js.call(json!({"cmd": "accepted", "name": name}));
                (
                    r["epoch"]
                        .as_str()
                        .expect("epoch")
                        .parse()
                        .expect("a number"),
                    unhex(r["commit"].as_str().expect("hex")),
                    r["welcome"].as_str().map(unhex),
                )
            }
        };
        assert_eq!(epoch, self.epoch);
        for m in self.members.clone() {
            if m == committer {
                continue;
            }
            let removed = removes.contains(&m);
            let name = self.people[m].name;
            match &mut self.people[m].side {
                Side::Rust(member) => {
                    let outcome = member
                        .receive_commit(&from, epoch, &commit)
                        .expect("processed");
                    let want = if removed {
                        CommitOutcome::Removed
                    } else {
                        CommitOutcome::Epoch(epoch + 1)
                    };
                    assert_eq!(outcome, want, "{name}");
                }
                Side::Js => {
                    let r = self.js.call(json!({"cmd": "receive-commit", "name": name, "from": hex(&from), "epoch": epoch.to_string(), "sealed": hex(&commit)}));
                    let want = if removed {
                        "removed".to_owned()
                    } else {
                        (epoch + 1).to_string()
                    };
                    assert_eq!(r["outcome"], json!(want), "{name}");
                }
            }
        }
        self.epoch += 1;
        self.members.retain(|m| !removes.contains(m));
        for &a in adds {
            let welcome = welcome.as_ref().expect("a Welcome for the joiners");
            let name = self.people[a].name;
            match &mut self.people[a].side {
                Side::Rust(m) => {
                    assert_eq!(
                        m.join(&from, self.epoch, welcome).expect("joins"),
                        self.epoch
                    )
                }
                Side::Js => {
                    let r = self.js.call(json!({"cmd": "join", "name": name, "from": hex(&from), "epoch": self.epoch.to_string(), "sealed": hex(welcome)}));
                    assert_eq!(r["epoch"], json!(self.epoch.to_string()));
                }
            }
            self.members.push(a);
        }
        self.all_agree();
        self.say(
            committer,
            &format!("epoch {} from {}", self.epoch, self.people[committer].name),
        );
    }

    /// `sender` sends `text`; every other member opens it.
    fn say(&mut self, sender: usize, text: &str) {
        let from = self.people[sender].id;
        let sealed = match &mut self.people[sender].side {
            Side::Rust(m) => m.send(text.as_bytes()).expect("sealed"),
            Side::Js => {
                let r = self
                    .js
                    .call(json!({"cmd": "send", "name": self.people[sender].name, "text": text}));
                unhex(r["sealed"].as_str().expect("hex"))
            }
        };
        for m in self.members.clone() {
            if m == sender {
                continue;
            }
            let name = self.people[m].name;
            let got = match &mut self.people[m].side {
                Side::Rust(member) => {
                    String::from_utf8(member.receive(&from, self.epoch, &sealed).expect("opens"))
                        .expect("UTF-8")
                }
                Side::Js => {
                    let r = self.js.call(json!({"cmd": "receive", "name": name, "from": hex(&from), "epoch": self.epoch.to_string(), "sealed": hex(&sealed)}));
                    r["text"].as_str().expect("text").to_owned()
                }
            };
            assert_eq!(got, text, "{name}");
        }
    }
}

#[test]
fn openmls_and_ts_mls_members_agree_on_every_epoch_through_adds_removes_and_updates_from_either_side()
 {
    let mut w = World::new();
    let [r1, r2, r3, j1, j2, j3] = [0, 1, 2, 3, 4, 5];
    match &mut w.people[r1].side {
        Side::Rust(m) => m.create([0x42; 16]).expect("created"),
        Side::Js => unreachable!("r1 is Rust"),
    }
    w.members.push(r1);
    w.all_agree();
    w.commit(r1, &[j1], &[]); // 1: Rust adds JS
    w.commit(j1, &[r2], &[]); // 2: JS adds Rust
    w.commit(r2, &[], &[]); // 3: Rust updates
    w.commit(j1, &[j2, r3], &[]); // 4: JS adds JS and Rust at once
    w.commit(r3, &[j3], &[j1]); // 5: Rust adds JS and removes JS
    w.commit(j2, &[], &[]); // 6: JS updates
    w.commit(j3, &[], &[r1]); // 7: JS removes Rust
    // 8 to 24: the members take turns, by language, updating, removing and adding back.
    let mut out: Vec<usize> = vec![j1, r1];
    for round in 0..17 {
        let js_turn = round % 2 == 0;
        let committer = *w
            .members
            .iter()
            .find(|&&m| matches!(w.people[m].side, Side::Js) == js_turn)
            .expect("someone of that side");
        match round % 3 {
            0 if !out.is_empty() => {
                let back = out.remove(0);
                w.fresh(back);
                w.commit(committer, &[back], &[]);
            }
            1 if w.members.len() > 3 => {
                let leaver = *w
                    .members
                    .iter()
                    .find(|&&m| m != committer)
                    .expect("another member");
                w.commit(committer, &[], &[leaver]);
                out.push(leaver);
            }
            _ => w.commit(committer, &[], &[]),
        }
    }
    assert!(w.epoch >= 24, "epoch {}", w.epoch);
}
