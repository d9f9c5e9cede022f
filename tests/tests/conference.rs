//! A conference's MLS group through the real relay (PROTOCOL.md §7.5): members on openmls (the
//! terminal's `client/src/conference.rs`) and on ts-mls (the browser's `web/conference-room.js`,
//! in node, fed the relay's text through `web/relay-message.js`) join, leave, update and talk
//! over real WebSockets for more than 20 epochs, with the relay as the delivery service that
//! names each committer. After every epoch each member's SFrame base key, epoch authenticator,
//! group code and roster are compared byte for byte, and a message from the member who
//! committed is opened by everyone else. Two members updating at once end in one group. At the
//! end a JavaScript member's media frame, keyed from the exporter with its leaf and epoch (PROTOCOL.md
//! §7.6), opens for a Rust member, not with the key of one who left, and not for one who joins
//! after it was sent.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sotto_client::conference::{ConferenceEvent, ConferenceMember};
use sotto_e2ee::{BaseKey, ConferenceFrames, Error, FrameFault, LinkSecret, Member, Stream};
use sotto_proto::{ClientMessage, ErrorCode, PeerId, RoomId, ServerMessage};
use sotto_tests::node::{Js, View, hex, unhex};
use sotto_tests::{Relay, WAIT};
use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const SECRET: [u8; 32] = [0x3c; 32];

/// Which implementation a person runs.
enum Core {
    Rust(Box<ConferenceMember>),
    Js,
}

/// One connection to the relay and the member on it.
struct Person {
    name: String,
    id: PeerId,
    core: Core,
    out: mpsc::UnboundedSender<String>,
    /// Messages from the relay not yet handed to the core.
    inbox: VecDeque<String>,
    /// While true, its inbox is kept (the test makes it slow on purpose).
    held: bool,
    /// The epoch it last reported, the group code with it, and whether it is still in.
    epoch: Option<u64>,
    code: String,
    in_group: bool,
    /// Every epoch it reported, with its code.
    history: BTreeMap<u64, String>,
    /// Application messages it opened, as (sender, text).
    heard: Vec<(PeerId, String)>,
    /// Error codes the relay sent it.
    errors: Vec<ErrorCode>,
    /// Messages it refused (did not open, broke a rule): must stay empty.
    dropped: Vec<String>,
}

struct World {
    relay: Relay,
    room: RoomId,
    js: Js,
    people: Vec<Person>,
    /// (person index, relay text) from every connection's reader.
    from_relay: mpsc::UnboundedReceiver<(usize, String)>,
    to_world: mpsc::UnboundedSender<(usize, String)>,
}

impl World {
    async fn new() -> Self {
        let config = sotto_signaling::Config {
            max_peers: 12,
            ..Default::default()
        };
        let (to_world, from_relay) = mpsc::unbounded_channel();
        Self {
            relay: Relay::start_with(config).await,
            room: RoomId::from_bytes(LinkSecret::from_bytes(SECRET).room_id().as_bytes()),
            js: Js::start(),
            people: Vec::new(),
            from_relay,
            to_world,
        }
    }

    /// `name` (Rust when it starts with `r`, JavaScript with `j`) connects, joins the room and
    /// publishes its KeyPackage. Returns its index.
    async fn join(&mut self, name: &str) -> usize {
        let url = format!("ws://{}/ws", self.relay.addr);
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("the relay takes the connection");
        let (mut sink, mut stream) = ws.split();
        let join = ClientMessage::Join {
            room: self.room.clone(),
            max: Some(sotto_proto::GroupSize::new(12).expect("a size")),
        };
        sink.send(Message::text(join.encode())).await.expect("sent");
        let welcome = loop {
            let msg = tokio::time::timeout(WAIT, stream.next())
                .await
                .expect("the relay answers the join")
                .expect("open")
                .expect("a frame");
            if let Message::Text(text) = msg {
                break text.to_string();
            }
        };
        let Ok(Some(ServerMessage::Welcome { you, max: 12, .. })) = ServerMessage::decode(&welcome)
        else {
            panic!("{name} was not welcomed into a conference room: {welcome}");
        };
        let index = self.people.len();
        let (out, mut outgoing) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(text) = outgoing.recv().await {
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let to_world = self.to_world.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                if let Message::Text(text) = msg
                    && to_world.send((index, text.to_string())).is_err()
                {
                    break;
                }
            }
        });
        let (core, first) = if name.starts_with('r') {
            let (member, first) =
                ConferenceMember::new(&LinkSecret::from_bytes(SECRET), you.clone())
                    .expect("a member");
            (Core::Rust(Box::new(member)), first.encode())
        } else {
            let r = self.js.call(json!({"cmd": "conf-create", "name": name, "secret": hex(&SECRET), "me": you.as_str()}));
            (Core::Js, r["send"].as_str().expect("text").to_owned())
        };
        out.send(first).expect("the writer runs");
        self.people.push(Person {
            name: name.to_owned(),
            id: you,
            core,
            out,
            inbox: VecDeque::new(),
            held: false,
            epoch: None,
            code: String::new(),
            in_group: false,
            history: BTreeMap::new(),
            heard: Vec::new(),
            errors: Vec::new(),
            dropped: Vec::new(),
        });
        index
    }

    /// `who` hangs up: its connection closes, the relay takes it out of the room.
    fn leave(&mut self, who: usize) {
        let p = &mut self.people[who];
        let _ = p.out.send(ClientMessage::Leave.encode());
        p.in_group = false;
        p.held = true;
    }

    /// Hands one relay message to `who`'s core and sends what it answers.
    fn feed(&mut self, who: usize, text: String) {
        let msg = ServerMessage::decode(&text).expect("the relay's text decodes");
        if let Some(ServerMessage::Error { code, .. }) = &msg {
            self.people[who].errors.push(code.clone());
        }
        let (send, events): (Vec<String>, Vec<Value>) = match &mut self.people[who].core {
            Core::Rust(member) => {
                let Some(msg) = msg else { return };
                let step = member.handle(msg);
                let events = step
                    .events
                    .into_iter()
                    .map(|e| match e {
                        ConferenceEvent::Epoch {
                            epoch,
                            code,
                            members,
                        } => json!({"type": "epoch", "epoch": epoch, "code": code.digits(),
                            "members": members.iter().map(PeerId::as_str).collect::<Vec<_>>()}),
                        ConferenceEvent::Message { from, data } => json!({"type": "message",
                            "from": from.as_str(), "text": String::from_utf8(data).expect("UTF-8")}),
                        ConferenceEvent::Removed => json!({"type": "removed"}),
                        ConferenceEvent::Refused => json!({"type": "refused"}),
                        ConferenceEvent::Dropped { from, error } => json!({"type": "dropped",
                            "from": from.map(|f| f.as_str().to_owned()), "error": error.to_string()}),
                        other => panic!("an event this test does not know: {other:?}"),
                    })
                    .collect();
                (
                    step.send.iter().map(ClientMessage::encode).collect(),
                    events,
                )
            }
            Core::Js => {
                let name = self.people[who].name.clone();
                let r = self
                    .js
                    .call(json!({"cmd": "conf-handle", "name": name, "text": text}));
                let send = r["send"]
                    .as_array()
                    .expect("send")
                    .iter()
                    .map(|s| s.as_str().expect("text").to_owned())
                    .collect();
                (send, r["events"].as_array().expect("events").clone())
            }
        };
        let p = &mut self.people[who];
        for text in send {
            let _ = p.out.send(text);
        }
        for e in events {
            match e["type"].as_str().expect("a type") {
                "epoch" => {
                    p.epoch = e["epoch"].as_u64();
                    p.code = e["code"].as_str().expect("digits").to_owned();
                    p.in_group = true;
                    p.history
                        .insert(p.epoch.unwrap_or_default(), p.code.clone());
                    eprintln!("{} is at epoch {}", p.name, p.epoch.unwrap_or_default());
                }
                "message" => p.heard.push((
                    PeerId::parse(e["from"].as_str().expect("from")).expect("an id"),
                    e["text"].as_str().expect("text").to_owned(),
                )),
                "removed" => p.in_group = false,
                _ => p.dropped.push(e.to_string()),
            }
        }
    }

    /// Delivers relay messages (not to held people) until `done` holds; fails after [`WAIT`].
    async fn until(&mut self, what: &str, done: impl Fn(&World) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            for who in 0..self.people.len() {
                while !self.people[who].held
                    && let Some(text) = self.people[who].inbox.pop_front()
                {
                    self.feed(who, text);
                }
            }
            for p in &self.people {
                assert!(p.dropped.is_empty(), "{} dropped {:?}", p.name, p.dropped);
            }
            if done(self) {
                return;
            }
            match tokio::time::timeout_at(deadline, self.from_relay.recv()).await {
                Ok(Some((who, text))) => self.people[who].inbox.push_back(text),
                Ok(None) => panic!("every connection closed"),
                Err(_) => panic!("timed out waiting until {what}"),
            }
        }
    }

    /// The people in the group.
    fn members(&self) -> Vec<usize> {
        (0..self.people.len())
            .filter(|&i| self.people[i].in_group)
            .collect()
    }

    /// Waits until every member of `expected` reports `epoch` (and nobody else is in).
    async fn at_epoch(&mut self, epoch: u64, expected: &[usize]) {
        let mut want = expected.to_vec();
        want.sort_unstable();
        self.until(&format!("epoch {epoch} for {want:?}"), |w| {
            w.members() == want && want.iter().all(|&m| w.people[m].epoch == Some(epoch))
        })
        .await;
        self.all_agree(epoch);
    }

    fn view(&mut self, who: usize) -> View {
        match &self.people[who].core {
            Core::Rust(c) => {
                assert!(c.epoch().is_some(), "a member");
                View::of(c.member())
            }
            Core::Js => {
                let name = self.people[who].name.clone();
                View::from_js(&self.js.call(json!({"cmd": "conf-info", "name": name})))
            }
        }
    }

    /// Every member holds the same keys, code and roster in `epoch`.
    fn all_agree(&mut self, epoch: u64) {
        let members = self.members();
        let first = self.view(members[0]);
        assert_eq!(first.epoch, epoch);
        assert_eq!(first.members.len(), members.len());
        for &m in &members[1..] {
            let view = self.view(m);
            assert_eq!(
                view, first,
                "{} and {} disagree in epoch {epoch}",
                self.people[m].name, self.people[members[0]].name
            );
            assert_eq!(self.people[m].code, first.code);
        }
    }

    /// `who` sends `text` to the group; every other member opens it.
    async fn say(&mut self, who: usize, text: &str) {
        let sealed = match &mut self.people[who].core {
            Core::Rust(c) => c.send(text.as_bytes()).expect("sealed").encode(),
            Core::Js => {
                let name = self.people[who].name.clone();
                let r = self
                    .js
                    .call(json!({"cmd": "conf-send", "name": name, "text": text}));
                r["send"].as_str().expect("text").to_owned()
            }
        };
        let _ = self.people[who].out.send(sealed);
        let from = self.people[who].id.clone();
        let others: Vec<usize> = self.members().into_iter().filter(|&m| m != who).collect();
        let heard = |w: &World, m: usize| {
            w.people[m]
                .heard
                .iter()
                .any(|(f, t)| *f == from && t == text)
        };
        self.until(&format!("everyone opened {text:?}"), |w| {
            others.iter().all(|&m| heard(w, m))
        })
        .await;
    }

    /// `who` commits an update.
    fn update(&mut self, who: usize) {
        let msg = match &mut self.people[who].core {
            Core::Rust(c) => c.update().expect("an update").encode(),
            Core::Js => {
                let name = self.people[who].name.clone();
                let r = self.js.call(json!({"cmd": "conf-update", "name": name}));
                r["send"].as_str().expect("text").to_owned()
            }
        };
        let _ = self.people[who].out.send(msg);
    }

    /// `who` sends something the relay refuses, and waits for the refusal: every message it
    /// sent before has been through the relay.
    async fn flushed(&mut self, who: usize) {
        let probe = json!({"type": "group-message", "epoch": 0, "data": ""}).to_string();
        let _ = self.people[who].out.send(probe);
        let before = self.people[who].errors.len();
        self.until("the relay refused the probe", |w| {
            w.people[who].errors.len() > before
        })
        .await;
    }
}

/// A receiver holding `member`'s current epoch.
fn frames_of(member: &Member) -> ConferenceFrames {
    let mut rx = ConferenceFrames::new();
    let key = member.sframe_base_key().expect("a key");
    let members = member.members();
    let own = members
        .iter()
        .find(|(_, id)| id == member.id())
        .map(|(leaf, _)| *leaf)
        .expect("in its own roster");
    rx.set_epoch(
        member.epoch().expect("an epoch"),
        BaseKey::from_exporter(&key),
        &members,
        own,
        Instant::now(),
    );
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openmls_and_ts_mls_members_keep_one_group_through_the_relay_for_more_than_twenty_epochs() {
    let mut w = World::new().await;
    // 0: Ada (Rust) creates the group.
    let r1 = w.join("r1").await;
    w.at_epoch(0, &[r1]).await;
    // 1: Rust adds JS; 2: Rust adds JS; 3: Rust adds Rust. Ada is the oldest: she commits.
    let j1 = w.join("j1").await;
    w.at_epoch(1, &[r1, j1]).await;
    w.say(r1, "epoch 1 from r1").await;
    let j2 = w.join("j2").await;
    w.at_epoch(2, &[r1, j1, j2]).await;
    let r2 = w.join("r2").await;
    w.at_epoch(3, &[r1, j1, j2, r2]).await;
    // 4: Rust updates; 5: JS updates.
    w.update(r2);
    w.at_epoch(4, &[r1, j1, j2, r2]).await;
    w.say(r2, "epoch 4 from r2").await;
    w.update(j2);
    w.at_epoch(5, &[r1, j1, j2, r2]).await;
    w.say(j2, "epoch 5 from j2").await;
    // 6: Ada leaves; Jo (JS), now the oldest, removes her.
    w.leave(r1);
    w.at_epoch(6, &[j1, j2, r2]).await;
    w.say(j1, "epoch 6 from j1").await;
    // 7: two join while Jo is slow: the relay names her for the first, and the second waits
    // for the next commit. Then 8: JS adds Rust.
    w.people[j1].held = true;
    let r3 = w.join("r3").await;
    w.flushed(r3).await;
    let j3 = w.join("j3").await;
    w.flushed(j3).await;
    w.people[j1].held = false;
    w.at_epoch(8, &[j1, j2, r2, r3, j3]).await;
    assert!(w.people[r3].history.contains_key(&7), "r3 was added alone");
    assert_eq!(
        w.people[j3].history.keys().next(),
        Some(&8),
        "j3 by the next commit"
    );
    w.say(j3, "epoch 8 from j3").await;
    // 9: two members update at once: the first to reach the relay wins, the other's commit is
    // refused, and everyone ends in one group.
    w.update(r3);
    w.update(j3);
    w.at_epoch(9, &[j1, j2, r2, r3, j3]).await;
    w.until("the losing update was refused", |w| {
        [r3, j3]
            .iter()
            .any(|&m| w.people[m].errors.contains(&ErrorCode::StaleEpoch))
    })
    .await;
    // 10: Jo leaves; Jun (JS) removes her. 11: Jun leaves; Bea (Rust) removes him.
    w.leave(j1);
    w.at_epoch(10, &[j2, r2, r3, j3]).await;
    w.leave(j2);
    w.at_epoch(11, &[r2, r3, j3]).await;
    w.say(r2, "epoch 11 from r2").await;
    // 12 to 24: people come back (a new connection, a new member), leave again, and update,
    // from either side in turn.
    let mut epoch = 11;
    let mut round = 0;
    while epoch < 24 {
        let members = w.members();
        let js_turn = round % 2 == 0;
        let committer = *members
            .iter()
            .find(|&&m| w.people[m].name.starts_with('j') == js_turn)
            .unwrap_or(&members[0]);
        match round % 3 {
            0 => {
                let name = format!("{}{}", if js_turn { "r" } else { "j" }, 10 + round);
                let back = w.join(&name).await;
                epoch += 1;
                let mut now = members.clone();
                now.push(back);
                w.at_epoch(epoch, &now).await;
            }
            1 if members.len() > 3 => {
                let leaver = *members.last().expect("members");
                w.leave(leaver);
                epoch += 1;
                let now: Vec<usize> = members.iter().copied().filter(|&m| m != leaver).collect();
                w.at_epoch(epoch, &now).await;
            }
            _ => {
                w.update(committer);
                epoch += 1;
                w.at_epoch(epoch, &members).await;
            }
        }
        let members = w.members();
        let speaker = members[round % members.len()];
        w.say(speaker, &format!("epoch {epoch} round {round}"))
            .await;
        round += 1;
    }
    assert!(epoch >= 24);
    // Media keys from the exporter, across languages: a JS member's audio frame, sealed with
    // its leaf and the epoch, opens for a Rust member, credited to it; the key Ada (Rust) held
    // when she left opens nothing sent now.
    let members = w.members();
    let js = *members
        .iter()
        .find(|&&m| w.people[m].name.starts_with('j'))
        .expect("a JS member");
    let rust = *members
        .iter()
        .find(|&&m| w.people[m].name.starts_with('r'))
        .expect("a Rust member");
    let name = w.people[js].name.clone();
    let r =
        w.js.call(json!({"cmd": "conf-frame", "name": name, "frame": "78617564696f"}));
    let frame = unhex(r["sealed"].as_str().expect("hex"));
    let Core::Rust(member) = &w.people[rust].core else {
        unreachable!("a Rust member")
    };
    let opened = frames_of(member.member())
        .open(Stream::Audio, &frame, Instant::now())
        .expect("opens");
    assert_eq!(opened.sender, w.people[js].id.to_bytes());
    assert_eq!(opened.opened.frame, b"\x78audio");
    let Core::Rust(ada) = &w.people[r1].core else {
        unreachable!("Ada is Rust")
    };
    assert!(matches!(
        frames_of(ada.member()).open(Stream::Audio, &frame, Instant::now()),
        Err(Error::FrameRejected(
            FrameFault::UnknownEpoch | FrameFault::AuthenticationFailed
        ))
    ));
    // Someone who joins now opens nothing sent before: that frame's epoch is not theirs.
    let mut now_in = w.members();
    let late = w.join("r99").await;
    now_in.push(late);
    epoch += 1;
    w.at_epoch(epoch, &now_in).await;
    let Core::Rust(late) = &w.people[late].core else {
        unreachable!("r99 is Rust")
    };
    assert!(matches!(
        frames_of(late.member()).open(Stream::Audio, &frame, Instant::now()),
        Err(Error::FrameRejected(FrameFault::UnknownEpoch))
    ));
    // Whoever was in an epoch saw the same code in it, and a new code in every epoch.
    let mut codes: BTreeMap<u64, &str> = BTreeMap::new();
    for p in &w.people {
        for (e, code) in &p.history {
            assert_eq!(
                *codes.entry(*e).or_insert(code),
                code,
                "{} in epoch {e}",
                p.name
            );
        }
    }
    assert_eq!(codes.len() as u64, epoch + 1);
    let distinct: std::collections::BTreeSet<&&str> = codes.values().collect();
    assert_eq!(distinct.len(), codes.len());
    let rust = w
        .members()
        .iter()
        .filter(|&&m| w.people[m].name.starts_with('r'))
        .count();
    assert!(
        rust > 0 && rust < w.members().len(),
        "both sides are in the group at the end"
    );
    w.relay.stop().await;
}
