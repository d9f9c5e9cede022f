//! The shared scenarios (tests/vectors/scenarios.json) in the native client's room: the same
//! steps, the same things told to each person, as the browser's cores (web/test/
//! scenarios.test.js). A rule that drifts on either side fails that side's run.

use super::tests::{World, group, peer};
use super::*;
use serde_json::Value;

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/vectors/scenarios.json"
);

fn load() -> Value {
    serde_json::from_str(&std::fs::read_to_string(PATH).expect("tests/vectors/scenarios.json"))
        .expect("JSON")
}

/// A scenario's world: people are numbered by the order their names first appear.
struct Run {
    world: World,
    group: Option<GroupSize>,
}

impl Run {
    fn id(&mut self, name: &str) -> PeerId {
        let n = match self.world.names.iter().position(|n| n == name) {
            Some(i) => i + 1,
            None => {
                self.world.names.push(name.to_owned());
                self.world.names.len()
            }
        };
        peer(u8::try_from(n).expect("few people"))
    }

    fn person(&mut self, name: &str) -> PeerId {
        let id = self.id(name);
        assert!(
            self.world.people.iter().any(|p| p.id == id),
            "{name} has not joined"
        );
        id
    }

    /// A relay message written with people's names where their ids go.
    fn relay_message(&mut self, message: &Value) -> ServerMessage {
        let mut m = message.clone();
        for field in ["peer", "from", "you"] {
            if let Some(name) = m[field].as_str().map(str::to_owned) {
                m[field] = Value::String(self.id(&name).as_str().to_owned());
            }
        }
        ServerMessage::decode(&m.to_string())
            .expect("a relay message")
            .expect("a known relay message")
    }

    fn step(&mut self, step: &Value) {
        let str_of = |key: &str| step[key].as_str().map(str::to_owned);
        let triple = |key: &str| -> Vec<String> {
            step[key]
                .as_array()
                .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
                .unwrap_or_default()
        };
        if let Some(name) = str_of("join") {
            let n = u8::try_from(
                self.world
                    .names
                    .iter()
                    .position(|n| *n == name)
                    .map_or_else(
                        || {
                            self.world.names.push(name.clone());
                            self.world.names.len()
                        },
                        |i| i + 1,
                    ),
            )
            .expect("few people");
            self.world.join(n, self.group);
        } else if let Some(name) = str_of("hang-up") {
            let id = self.person(&name);
            self.world.input(&id, |room, _| room.hang_up());
        } else if let Some(name) = str_of("lose-relay") {
            let id = self.person(&name);
            self.world.lose_relay(&id);
        } else if let Some(name) = str_of("relay-back") {
            let id = self.person(&name);
            self.world.input(&id, |room, _| room.relay_connected());
        } else if let Some(name) = str_of("relay-refuses") {
            let id = self.person(&name);
            self.world.input(&id, |room, _| room.reconnect_failed());
        } else if step.get("connection").is_some() {
            let [who, other, state] = <[String; 3]>::try_from(triple("connection")).unwrap();
            let (who, other) = (self.person(&who), self.id(&other));
            let state = match state.as_str() {
                "connected" => ConnectionState::Connected,
                "disconnected" => ConnectionState::Disconnected,
                "failed" => ConnectionState::Failed,
                "closed" => ConnectionState::Closed,
                other => panic!("unknown connection state {other}"),
            };
            self.world
                .input(&who, |room, now| room.connection_state(&other, state, now));
        } else if step.get("forge").is_some() {
            let [to, from] = <[String; 2]>::try_from(triple("forge")).unwrap();
            let (to, from) = (self.person(&to), self.id(&from));
            let data = Payload::from_bytes(&[0x09]);
            self.world
                .relay
                .push_back((to, ServerMessage::Signal { from, data }));
            self.world.run();
        } else if step.get("forge-commit").is_some() {
            let [to, from] = <[String; 2]>::try_from(triple("forge-commit")).unwrap();
            let (to, from) = (self.person(&to), self.id(&from));
            let mut commit = vec![0u8; 33];
            commit[0] = 0x01;
            let data = Payload::from_bytes(&commit);
            self.world
                .relay
                .push_back((to, ServerMessage::Signal { from, data }));
            self.world.run();
        } else if let Some(says) = step.get("relay-says") {
            let to = self.person(says["to"].as_str().unwrap());
            let msg = self.relay_message(&says["message"]);
            self.world.relay.push_back((to, msg));
            self.world.run();
        } else if let Some(name) = str_of("hold") {
            let id = self.id(&name);
            self.world.hold(&id);
        } else if let Some(name) = str_of("release") {
            let id = self.id(&name);
            self.world.release(&id);
        } else if let Some(seconds) = step["tick"].as_f64() {
            self.world.tick(Duration::from_secs_f64(seconds));
        } else {
            panic!("unknown step {step}");
        }
    }

    fn check(&mut self, expect: &Value, at: &str) {
        let sorted = |mut v: Vec<String>| {
            v.sort();
            Value::from(v)
        };
        for i in 0..self.world.people.len() {
            let id = self.world.people[i].id.clone();
            let name = self.world.name_of(&id);
            let want = expect
                .get(&name)
                .cloned()
                .unwrap_or(serde_json::json!({"events": []}));
            let told = Value::from(std::mem::take(&mut self.world.people[i].events));
            assert_eq!(told, want["events"], "{at}: what {name} was told");
            if let Some(pairs) = want.get("pairs") {
                let have = self.world.people[i].room.peers();
                let have = sorted(have.iter().map(|p| self.world.name_of(p)).collect());
                assert_eq!(&have, pairs, "{at}: {name}'s pairs");
            }
            if let Some(connected) = want.get("connected") {
                let have = self.world.people[i].connected.clone();
                let have = sorted(have.iter().map(|p| self.world.name_of(p)).collect());
                assert_eq!(&have, connected, "{at}: whom {name} is connected to");
                // Every two connected both ways show one code and open each other's frames.
                for other in self.world.people[i].connected.clone() {
                    let back = self
                        .world
                        .people
                        .iter()
                        .any(|p| p.id == other && p.connected.contains(&id));
                    if back {
                        self.world.assert_pairs_work(&[id.clone(), other]);
                    }
                }
            }
        }
        for name in expect.as_object().unwrap().keys() {
            let id = self.id(name);
            assert!(
                self.world.people.iter().any(|p| p.id == id),
                "{at}: {name} never joined"
            );
        }
    }
}

fn run(scenario: &Value) {
    let mut run = Run {
        world: World::new(scenario["capacity"].as_u64().map_or(6, |c| c as usize)),
        group: scenario["group"].as_u64().and_then(group),
    };
    let mut expects = 0;
    for (i, step) in scenario["steps"].as_array().unwrap().iter().enumerate() {
        match step.get("expect") {
            Some(expect) => {
                expects += 1;
                run.check(expect, &format!("step {} (expect {expects})", i + 1));
            }
            None => {
                for _ in 0..step["times"].as_u64().unwrap_or(1) {
                    run.step(step);
                }
            }
        }
    }
    assert!(expects > 0, "a scenario checks something");
}

#[test]
fn every_shared_scenario_tells_each_person_what_the_browser_tells_them() {
    let file = load();
    let scenarios = file["scenarios"].as_array().unwrap();
    assert!(scenarios.len() >= 10);
    for scenario in scenarios {
        let name = scenario["name"].as_str().unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(scenario)));
        if let Err(e) = result {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            panic!("scenario {name:?}: {why}");
        }
    }
}

#[test]
fn a_scenario_with_a_wrong_expectation_fails() {
    let mut scenario = load()["scenarios"][0].clone();
    scenario["steps"][1]["expect"]["A"]["events"] = serde_json::json!([["found", "B", "offerer"]]);
    let result = std::panic::catch_unwind(|| run(&scenario));
    assert!(result.is_err());
}
