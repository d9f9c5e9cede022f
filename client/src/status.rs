//! What a person sees in the terminal, as text: lines that stay (the relay, the safety code,
//! what went wrong and what happens about it) and one status line that is redrawn in place
//! (state, elapsed time, counters, the hang-up key). Pure: events and `now` in, text out; the
//! CLI writes it, redrawing on a terminal or printing plain lines to a pipe.

use crate::chat::ChatEvent;
use crate::session::{Counters, Event, IdentityStatus};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How often a pipe gets a line of counters (a terminal redraws every second).
const PLAIN_STATS_EVERY: Duration = Duration::from_secs(10);

/// The text for one event.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Lines to print above the status line, in order.
    pub lines: Vec<String>,
    /// The status line changed (only when drawing for a terminal).
    pub redraw: bool,
}

/// What the view was told of one person.
#[derive(Debug, Default)]
struct Seen {
    /// The name they gave.
    name: Option<String>,
    /// Whether their microphone and camera are on, as last told (both, until told).
    media: Option<(bool, bool)>,
    /// What their device was last said to be.
    identity: Option<IdentityStatus>,
}

/// The terminal's view of one call.
#[derive(Debug)]
pub struct Status {
    terminal: bool,
    state: String,
    connected_at: Option<Instant>,
    counters: Option<Counters>,
    last_plain_stats: Option<Instant>,
    /// How to type a message was said (once per call, however many people).
    messages_ready_told: bool,
    /// Files under way, for the status line's progress bars: (person, direction, id) -> (done,
    /// size); the person is "" in a one-to-one call (ids are per pair).
    transfers: BTreeMap<(String, &'static str, u32), (u64, u64)>,
    /// What was told of each person, by relay id ("" for the other person of a one-to-one
    /// call): one entry per person, gone with them.
    people: BTreeMap<String, Seen>,
    /// This call sends no identity and stores nothing: `/verify` is not offered.
    incognito: bool,
}

impl Status {
    /// A view for a terminal (`true`: one status line redrawn in place) or a pipe (plain
    /// lines).
    pub fn new(terminal: bool) -> Self {
        Self {
            terminal,
            state: "connecting to the relay".to_owned(),
            connected_at: None,
            counters: None,
            last_plain_stats: None,
            messages_ready_told: false,
            transfers: BTreeMap::new(),
            people: BTreeMap::new(),
            incognito: false,
        }
    }

    /// The same view for an incognito call (no device stored, so no `/verify` to suggest).
    pub fn incognito(mut self, incognito: bool) -> Self {
        self.incognito = incognito;
        self
    }

    /// How a person is named here: the name they gave, else the first six characters of their
    /// relay id (in a one-to-one call, "them").
    fn who(&self, peer: Option<&str>) -> String {
        let name = self
            .people
            .get(peer.unwrap_or_default())
            .and_then(|p| p.name.as_ref());
        match (name, peer) {
            (Some(name), _) => terminal_safe(name),
            (None, Some(peer)) => short(peer),
            (None, None) => "them".to_owned(),
        }
    }

    /// What was told of `peer` (`None`: the other person of a one-to-one call).
    fn person(&mut self, peer: Option<&str>) -> &mut Seen {
        self.people
            .entry(peer.unwrap_or_default().to_owned())
            .or_default()
    }

    /// Takes one event of the call.
    pub fn event(&mut self, event: &Event, now: Instant) -> Output {
        let mut out = Output::default();
        match event {
            Event::Relay { url } => out.lines.push(format!("relay: {url}")),
            Event::State {
                state,
                peer: Some(peer),
            } => {
                // A group's pair: its steps are lines of their own; the call's line says the
                // call is on once anyone is connected.
                let (text, line) = describe(state);
                if line || !self.terminal {
                    out.lines.push(format!("{}: {text}", self.who(Some(peer))));
                }
                if state == "connected" && self.connected_at.is_none() {
                    self.connected_at = Some(now);
                    self.state = "in the call".to_owned();
                }
            }
            Event::State { state, peer: None } => {
                let (text, line) = describe(state);
                if state == "connected" && self.connected_at.is_none() {
                    self.connected_at = Some(now);
                }
                if state == "peer-left"
                    || state == "waiting-for-peer"
                    || state == "connection-dropped"
                {
                    self.connected_at = None;
                    self.counters = None;
                    // The peer's channel, and every file on it, is gone; whoever comes next gives
                    // their own name and states.
                    self.transfers.clear();
                    self.people.remove("");
                }
                if line || !self.terminal {
                    out.lines.push(text.to_owned());
                }
                self.state = text.to_owned();
            }
            Event::Reconnecting { attempt, delay_ms } => {
                let secs = (*delay_ms as f64 / 1000.0).max(0.1);
                if *attempt == 1 || !self.terminal {
                    out.lines.push(format!(
                        "lost the relay; trying again in {secs:.1} s (attempt {attempt})"
                    ));
                }
                self.state = format!("relay lost: attempt {attempt} in {secs:.1} s");
            }
            Event::Candidate { typ } => {
                if !self.terminal {
                    out.lines.push(format!("network: {typ} candidate"));
                }
            }
            Event::Name { name, peer } => {
                let was = self.who(peer.as_deref());
                self.person(peer.as_deref()).name = Some(name.clone());
                // One-to-one, the other person was "them" until now.
                let was = if peer.is_none() && was == "them" {
                    "the other person".to_owned()
                } else {
                    was
                };
                out.lines
                    .push(format!("{was} is called {}", terminal_safe(name)));
            }
            Event::Sas { code, peer } => {
                let with = peer
                    .as_ref()
                    .map(|p| format!(" with {}", self.who(Some(p))))
                    .unwrap_or_default();
                out.lines.extend([
                    format!(
                        "SAFETY CODE{with}: {} {}",
                        code.get(..3).unwrap_or(code),
                        code.get(3..).unwrap_or("")
                    ),
                    "Read it aloud. Different digits on the other side? Hang up.".to_owned(),
                ]);
            }
            Event::Identity { status, name, peer } => {
                let who = peer.as_deref().map(|p| self.who(Some(p)));
                let to_verify = match &who {
                    Some(w) => format!("/verify {w} = NAME"),
                    None => "/verify NAME".to_owned(),
                };
                let prefix = who.map(|w| format!("{w}: ")).unwrap_or_default();
                let before = self.person(peer.as_deref()).identity.replace(*status);
                out.lines.push(match (status, name) {
                    // Just stored with /verify.
                    (IdentityStatus::Known, Some(name))
                        if before == Some(IdentityStatus::Unknown) =>
                    {
                        format!(
                            "{prefix}stored as {}: its next calls are verified",
                            terminal_safe(name)
                        )
                    }
                    (IdentityStatus::Known, Some(name)) => {
                        format!("{prefix}VERIFIED: {} (known device)", terminal_safe(name))
                    }
                    (IdentityStatus::Known | IdentityStatus::Unknown, _) if self.incognito => {
                        format!("{prefix}device not verified: compare the code")
                    }
                    (IdentityStatus::Known | IdentityStatus::Unknown, _) => {
                        format!("{prefix}device not verified: compare the code, then {to_verify}")
                    }
                    (IdentityStatus::None, _) => {
                        format!("{prefix}no device key sent: compare the code")
                    }
                });
            }
            Event::VerifyError { error } => out.lines.push(format!("/verify: {error}")),
            Event::Audio {
                input,
                output,
                echo_cancellation,
                noise_suppression,
                gain_control,
            } => {
                let device = |f: &crate::devices::Format| {
                    format!("{} ({} Hz)", terminal_safe(&f.name), f.rate)
                };
                if let Some(f) = input {
                    let mut off = Vec::new();
                    for (on, what) in [
                        (echo_cancellation, "echo cancellation"),
                        (noise_suppression, "noise suppression"),
                        (gain_control, "gain control"),
                    ] {
                        if !on {
                            off.push(what);
                        }
                    }
                    let off = if off.is_empty() {
                        String::new()
                    } else {
                        format!("; {} off", off.join(", "))
                    };
                    out.lines.push(format!("microphone: {}{off}", device(f)));
                }
                if let Some(f) = output {
                    out.lines.push(format!("speakers: {}", device(f)));
                }
            }
            Event::PeerGone { peer, reason } => {
                out.lines.push(format!(
                    "{}: {}",
                    self.who(Some(peer)),
                    terminal_safe(reason)
                ));
                self.people.remove(peer);
            }
            Event::Stats(c) => {
                self.counters = Some(*c);
                if !self.terminal
                    && self
                        .last_plain_stats
                        .is_none_or(|at| now.duration_since(at) >= PLAIN_STATS_EVERY)
                {
                    self.last_plain_stats = Some(now);
                    out.lines.push(self.render(now, usize::MAX));
                }
            }
            // The CLI says once, itself, how the call ended.
            Event::Ended { .. } => {}
            Event::Chat { peer, event } => {
                self.track(peer.as_deref().unwrap_or_default(), event);
                if matches!(event, ChatEvent::MessagesReady)
                    && std::mem::replace(&mut self.messages_ready_told, true)
                {
                    return out;
                }
                let who = self.who(peer.as_deref());
                if let ChatEvent::Media { microphone, camera } = *event {
                    let (mic, cam) = self
                        .person(peer.as_deref())
                        .media
                        .replace((microphone, camera))
                        .unwrap_or((true, true));
                    let on = |b: bool| if b { "on" } else { "off" };
                    if mic != microphone {
                        out.lines
                            .push(format!("{who}: microphone {}", on(microphone)));
                    }
                    if cam != camera {
                        out.lines.push(format!("{who}: camera {}", on(camera)));
                    }
                    out.redraw = self.terminal;
                    return out;
                }
                let mut lines = chat_lines(event, &who);
                // In a group a text goes to each person over their own pair: say to whom.
                if peer.is_some()
                    && let ChatEvent::MessageSent { id, text } = event
                {
                    lines = vec![format!("you → {who} ({id}): {}", terminal_safe(text))];
                } else if peer.is_some()
                    && let ChatEvent::MessageDelivered { id } = event
                {
                    lines = vec![format!("(message {id} delivered to {who})")];
                }
                out.lines.extend(lines);
            }
        }
        out.redraw = self.terminal;
        out
    }

    /// Keeps the files under way with `peer` up to date.
    fn track(&mut self, peer: &str, e: &ChatEvent) {
        match e {
            ChatEvent::FileProgress {
                id,
                direction,
                done,
                size,
            } if done < size => {
                self.transfers
                    .insert((peer.to_owned(), direction, *id), (*done, *size));
            }
            ChatEvent::FileProgress { id, direction, .. }
            | ChatEvent::FileStopped { id, direction, .. } => {
                self.transfers.remove(&(peer.to_owned(), *direction, *id));
            }
            ChatEvent::FileReceived { id, .. } => {
                self.transfers.remove(&(peer.to_owned(), "incoming", *id));
            }
            _ => {}
        }
    }

    /// The status line, at most `width - 1` characters (a line as wide as the terminal would
    /// wrap on some terminals). Parts that do not fit are left out, least useful first.
    pub fn render(&self, now: Instant, width: usize) -> String {
        let mut head = self.state.clone();
        if let Some(at) = self.connected_at {
            let s = now.duration_since(at).as_secs();
            head = format!("{head} {:02}:{:02}", s / 60, s % 60);
            if s >= 3600 {
                head = format!(
                    "{} {}:{:02}:{:02}",
                    self.state,
                    s / 3600,
                    s / 60 % 60,
                    s % 60
                );
            }
        }
        // Most useful first; dropped from the end until the line fits. A file under way is
        // what the person watches: its bar comes right after the call's state.
        let mut parts = vec![head];
        for ((peer, direction, id), (done, size)) in &self.transfers {
            let who = (!peer.is_empty()).then(|| self.who(Some(peer)));
            parts.push(progress_bar(direction, *id, who.as_deref(), *done, *size));
        }
        parts.push("Ctrl-C hangs up".to_owned());
        if let Some(c) = &self.counters {
            parts.push(format!(
                "rtt {} loss {}",
                c.rtt_ms.map_or("-".into(), |v| format!("{v:.0} ms")),
                c.loss.map_or("-".into(), |v| format!("{:.1}%", v * 100.0)),
            ));
            if c.input_level_db.is_some() || c.output_level_db.is_some() {
                let level = |db: Option<f64>| db.map_or("-".into(), |v| format!("{v:.0}"));
                parts.push(format!(
                    "mic {} out {} dB",
                    level(c.input_level_db),
                    level(c.output_level_db)
                ));
            }
            match c.echo_converged {
                Some(true) => parts.push("echo cancelled".into()),
                Some(false) => parts.push("echo: converging".into()),
                None => {}
            }
            parts.push(format!(
                "sent {} received {}",
                c.frames_sent, c.frames_received
            ));
            if c.frames_failed > 0 {
                // Never dropped before the rest: frames that fail to authenticate matter.
                parts.insert(1, format!("{} FAILED to authenticate", c.frames_failed));
            }
            if c.frames_concealed > 0 {
                parts.push(format!("concealed {}", c.frames_concealed));
            }
        }
        let max = width.saturating_sub(1);
        while parts.len() > 1 && parts.join(" | ").chars().count() > max {
            parts.pop();
        }
        let line = parts.join(" | ");
        if line.chars().count() <= max {
            line
        } else if max == 0 {
            String::new()
        } else {
            let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
            cut.push('…');
            cut
        }
    }
}

/// `file 3 sending [#####.....] 52%` (in a group `file 3 to Ada ...` or `from Ada`): ten steps
/// of the bar, the percentage rounded down.
fn progress_bar(direction: &str, id: u32, who: Option<&str>, done: u64, size: u64) -> String {
    let percent = (u128::from(done) * 100 / u128::from(size.max(1))).min(100) as u64;
    let filled = (percent / 10) as usize;
    let what = match (direction == "incoming", who) {
        (true, None) => "receiving".to_owned(),
        (false, None) => "sending".to_owned(),
        (true, Some(who)) => format!("from {who}"),
        (false, Some(who)) => format!("to {who}"),
    };
    format!(
        "file {id} {what} [{}{}] {percent}%",
        "#".repeat(filled),
        ".".repeat(10 - filled)
    )
}

/// A state's words, and whether it deserves a line of its own on a terminal.
fn describe(state: &str) -> (&str, bool) {
    match state {
        "waiting-for-peer" => ("waiting for the other person", false),
        "handshake" => ("the other person is here: exchanging keys", false),
        "keys-confirmed" => ("keys confirmed", false),
        "connecting" => ("connecting", false),
        "connected" => ("connected", true),
        "receiving-audio" => ("in the call", false),
        "disconnected" => ("connection interrupted; waiting for it to come back", true),
        "peer-left" => ("the other person left; waiting for them to come back", true),
        "peer-lost-relay" => ("the other person lost the relay; the call goes on", true),
        "connection-dropped" => ("your connection dropped; reconnecting", true),
        "failed" => ("the connection failed", false),
        "closed" => ("connection closed", false),
        other => (other, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(s: &str) -> Event {
        Event::State {
            state: s.to_owned(),
            peer: None,
        }
    }

    fn stats() -> Event {
        Event::Stats(Counters {
            frames_sent: 1234,
            frames_received: 1200,
            rtt_ms: Some(12.0),
            loss: Some(0.0),
            ..Counters::default()
        })
    }

    #[test]
    fn the_status_line_shows_the_levels_and_whether_echo_cancellation_converged() {
        let t0 = Instant::now();
        let mut s = Status::new(true);
        let audio = s.event(
            &Event::Audio {
                input: Some(crate::devices::Format {
                    name: "Built-in\x1b[2J Mic".into(),
                    id: "alsa_input.pci".into(),
                    rate: 44_100,
                    channels: 2,
                    sample_format: "i16".into(),
                }),
                output: None,
                echo_cancellation: true,
                noise_suppression: false,
                gain_control: false,
            },
            t0,
        );
        assert_eq!(
            audio.lines,
            ["microphone: Built-in?[2J Mic (44100 Hz); noise suppression, gain control off"]
        );
        s.event(&state("connected"), t0);
        let mut c = Counters {
            input_level_db: Some(-23.4),
            output_level_db: None,
            echo_converged: Some(false),
            ..Counters::default()
        };
        s.event(&Event::Stats(c), t0);
        assert_eq!(
            s.render(t0, 200),
            "connected 00:00 | Ctrl-C hangs up | rtt - loss - | mic -23 out - dB | echo: \
             converging | sent 0 received 0"
        );
        c.output_level_db = Some(-30.0);
        c.echo_converged = Some(true);
        s.event(&Event::Stats(c), t0);
        assert!(
            s.render(t0, 200)
                .contains("| mic -23 out -30 dB | echo cancelled |")
        );
    }

    #[test]
    fn the_status_line_fits_any_width_and_keeps_state_and_hang_up_key_first() {
        let t0 = Instant::now();
        let mut s = Status::new(true);
        s.event(&state("connected"), t0);
        s.event(&stats(), t0);
        let now = t0 + Duration::from_secs(83);
        let wide = s.render(now, 200);
        assert_eq!(
            wide,
            "connected 01:23 | Ctrl-C hangs up | rtt 12 ms loss 0.0% | sent 1234 received 1200"
        );
        for width in [0, 1, 10, 20, 40, 60, 80] {
            let line = s.render(now, width);
            assert!(
                line.chars().count() < width.max(1) || line.is_empty(),
                "{width}: {line:?} ({} chars)",
                line.chars().count()
            );
        }
        assert_eq!(
            s.render(now, 60),
            "connected 01:23 | Ctrl-C hangs up | rtt 12 ms loss 0.0%"
        );
        assert_eq!(s.render(now, 20), "connected 01:23");
    }

    #[test]
    fn failed_frames_are_shown_before_the_other_counters() {
        let t0 = Instant::now();
        let mut s = Status::new(true);
        s.event(&state("connected"), t0);
        s.event(
            &Event::Stats(Counters {
                frames_failed: 7,
                ..Counters::default()
            }),
            t0,
        );
        assert_eq!(
            s.render(t0, 50),
            "connected 00:00 | 7 FAILED to authenticate"
        );
    }

    #[test]
    fn a_terminal_gets_lasting_lines_only_for_what_matters() {
        let t0 = Instant::now();
        let mut s = Status::new(true);
        let lines = |s: &mut Status, e: Event| s.event(&e, t0).lines;
        assert!(lines(&mut s, state("waiting-for-peer")).is_empty());
        assert!(lines(&mut s, state("handshake")).is_empty());
        assert_eq!(
            lines(
                &mut s,
                Event::Sas {
                    code: "034666".into(),
                    peer: None,
                }
            ),
            [
                "SAFETY CODE: 034 666",
                "Read it aloud. Different digits on the other side? Hang up."
            ]
        );
        assert_eq!(lines(&mut s, state("connected")), ["connected"]);
        assert!(lines(&mut s, stats()).is_empty());
        assert_eq!(
            lines(&mut s, state("peer-left")),
            ["the other person left; waiting for them to come back"]
        );
        // The end is said once, by the CLI.
        let end = Event::Ended {
            reason: "you hung up".into(),
            counters: Counters::default(),
        };
        assert!(lines(&mut s, end).is_empty());
    }

    #[test]
    fn every_lasting_line_fits_a_60_column_terminal() {
        let t0 = Instant::now();
        let mut s = Status::new(true);
        let events = [
            Event::Relay {
                url: "wss://call.example.org/ws".into(),
            },
            state("waiting-for-peer"),
            Event::Sas {
                code: "034666".into(),
                peer: None,
            },
            state("connected"),
            state("disconnected"),
            state("peer-left"),
            Event::Reconnecting {
                attempt: 1,
                delay_ms: 500,
            },
        ];
        for e in events {
            for line in s.event(&e, t0).lines {
                assert!(line.chars().count() <= 60, "{line:?}");
            }
            assert!(s.render(t0, 60).chars().count() < 60);
        }
        // Waiting, the hang-up key still fits beside the state.
        s.event(&state("waiting-for-peer"), t0);
        assert_eq!(
            s.render(t0, 60),
            "waiting for the other person | Ctrl-C hangs up"
        );
    }

    #[test]
    fn names_replace_ids_and_mute_changes_are_said_once() {
        let t0 = Instant::now();
        let mut s = Status::new(true);
        let peer = Some("abcdef0123".to_owned());
        let mut lines = |e: Event| s.event(&e, t0).lines;
        assert_eq!(
            lines(Event::Name {
                name: "Ada".into(),
                peer: peer.clone()
            }),
            ["abcdef is called Ada"]
        );
        assert_eq!(
            lines(Event::Sas {
                code: "034666".into(),
                peer: peer.clone()
            })[0],
            "SAFETY CODE with Ada: 034 666"
        );
        let media = |microphone, camera| Event::Chat {
            peer: peer.clone(),
            event: ChatEvent::Media { microphone, camera },
        };
        assert_eq!(lines(media(false, true)), ["Ada: microphone off"]);
        assert!(lines(media(false, true)).is_empty());
        assert_eq!(
            lines(media(true, false)),
            ["Ada: microphone on", "Ada: camera off"]
        );
        // One-to-one: the name is the call's other person's, until they leave; whoever comes
        // next is "them" until they give theirs.
        let text = || Event::Chat {
            peer: None,
            event: ChatEvent::Message {
                id: 0,
                text: "hi".into(),
            },
        };
        lines(Event::Name {
            name: "Bea".into(),
            peer: None,
        });
        assert_eq!(lines(text()), ["Bea: hi"]);
        lines(state("peer-left"));
        assert_eq!(lines(text()), ["them: hi"]);
    }

    #[test]
    fn a_known_device_is_said_verified_by_name_and_any_other_says_to_compare_the_code() {
        let t0 = Instant::now();
        let mut s = Status::new(true);
        let identity = |status, name: Option<&str>, peer: Option<&str>| Event::Identity {
            status,
            name: name.map(str::to_owned),
            peer: peer.map(str::to_owned),
        };
        let mut lines = |e: Event| s.event(&e, t0).lines;
        assert_eq!(
            lines(identity(IdentityStatus::Known, Some("Ada's laptop"), None)),
            ["VERIFIED: Ada's laptop (known device)"]
        );
        assert_eq!(
            lines(identity(IdentityStatus::Unknown, None, None)),
            ["device not verified: compare the code, then /verify NAME"]
        );
        assert_eq!(
            lines(identity(IdentityStatus::None, None, Some("abcdef0123"))),
            ["abcdef: no device key sent: compare the code"]
        );
        lines(Event::Name {
            name: "Bea".into(),
            peer: Some("abcdef0123".into()),
        });
        assert_eq!(
            lines(identity(IdentityStatus::Unknown, None, Some("abcdef0123"))),
            ["Bea: device not verified: compare the code, then /verify Bea = NAME"]
        );
        // /verify stored it.
        assert_eq!(
            lines(identity(
                IdentityStatus::Known,
                Some("Bea's phone"),
                Some("abcdef0123")
            )),
            ["Bea: stored as Bea's phone: its next calls are verified"]
        );
        // Incognito: nothing to store, so no /verify to suggest.
        let mut s = Status::new(true).incognito(true);
        assert_eq!(
            s.event(&identity(IdentityStatus::Unknown, None, None), t0)
                .lines,
            ["device not verified: compare the code"]
        );
    }

    #[test]
    fn reconnection_is_announced_once_and_counted_on_the_status_line() {
        let t0 = Instant::now();
        let mut s = Status::new(true);
        let first = s.event(
            &Event::Reconnecting {
                attempt: 1,
                delay_ms: 500,
            },
            t0,
        );
        assert_eq!(
            first.lines,
            ["lost the relay; trying again in 0.5 s (attempt 1)"]
        );
        let third = s.event(
            &Event::Reconnecting {
                attempt: 3,
                delay_ms: 2000,
            },
            t0,
        );
        assert!(third.lines.is_empty());
        assert_eq!(
            s.render(t0, 80),
            "relay lost: attempt 3 in 2.0 s | Ctrl-C hangs up"
        );
    }

    #[test]
    fn a_pipe_gets_plain_lines_and_counters_every_ten_seconds() {
        let t0 = Instant::now();
        let mut s = Status::new(false);
        let out = s.event(&state("waiting-for-peer"), t0);
        assert_eq!(out.lines, ["waiting for the other person"]);
        assert!(!out.redraw);
        s.event(&state("connected"), t0);
        assert_eq!(s.event(&stats(), t0).lines.len(), 1);
        assert!(
            s.event(&stats(), t0 + Duration::from_secs(5))
                .lines
                .is_empty()
        );
        assert_eq!(
            s.event(&stats(), t0 + Duration::from_secs(10)).lines,
            ["connected 00:10 | Ctrl-C hangs up | rtt 12 ms loss 0.0% | sent 1234 received 1200"]
        );
    }
}

/// The peer's text made safe for a terminal: control characters (which could move the
/// cursor, recolour or retitle the terminal) become `?`; line breaks start an indented line.
fn terminal_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' => "\n  ".to_owned(),
            '\t' => "\t".to_owned(),
            c if c.is_control() => "?".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// A size for people: `900 B`, `4.8 MB`.
fn size(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", bytes as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", bytes as f64 / 1e6),
        _ => format!("{:.2} GB", bytes as f64 / 1e9),
    }
}

/// How a person of a group call is named on the terminal until names exist: the first six
/// characters of their relay id.
fn short(peer: &str) -> String {
    peer.chars().take(6).collect()
}

/// The lines of a message or file event, `who` being the other person ("them" in a one-to-one
/// call). Progress shows at each quarter.
fn chat_lines(e: &ChatEvent, who: &str) -> Vec<String> {
    match e {
        ChatEvent::MessagesReady => {
            vec!["messages: type and press Enter; /send PATH sends a file".to_owned()]
        }
        ChatEvent::Message { text, .. } => vec![format!("{who}: {}", terminal_safe(text))],
        ChatEvent::MessageSent { id, text } => {
            vec![format!("you ({id}): {}", terminal_safe(text))]
        }
        ChatEvent::MessageDelivered { id } => vec![format!("(message {id} delivered)")],
        ChatEvent::FileOffered {
            id,
            name,
            size: n,
            accepted: true,
        } => {
            vec![format!(
                "{who}: file {id} \"{}\" ({}), receiving",
                terminal_safe(name),
                size(*n)
            )]
        }
        ChatEvent::FileOffered {
            id,
            name,
            size: n,
            accepted: false,
        } => vec![format!(
            "{who}: file {id} \"{}\" ({}): /accept {id} or /decline {id}",
            terminal_safe(name),
            size(*n)
        )],
        ChatEvent::FileSent { id, name, size: n } => {
            vec![format!(
                "you: file {id} \"{}\" ({}), offered",
                terminal_safe(name),
                size(*n)
            )]
        }
        ChatEvent::FileProgress {
            id,
            direction,
            done,
            size: n,
        } => {
            let quarter = |x: u64| if *n == 0 { 4 } else { x.saturating_mul(4) / n };
            let chunk = 16_000u64;
            if *done < *n && quarter(*done) == quarter(done.saturating_sub(chunk)) {
                return Vec::new();
            }
            let what = if *direction == "incoming" {
                "receiving"
            } else {
                "sending"
            };
            vec![format!(
                "file {id}: {what} {}%",
                if *n == 0 { 100 } else { done * 100 / n }
            )]
        }
        ChatEvent::FileReceived { id, path } => {
            vec![format!("file {id} received: {}", terminal_safe(path))]
        }
        ChatEvent::FileDelivered { id } => vec![format!("file {id} delivered")],
        ChatEvent::FileStopped { id, by, reason, .. } => {
            let who = if *by == "us" {
                "stopped here"
            } else {
                "stopped by the other side"
            };
            vec![format!("file {id} {who}: {reason}")]
        }
        ChatEvent::MessagesError { error } => vec![format!("messages: {}", terminal_safe(error))],
        // Said as a change, by the caller, which knows what was on before.
        ChatEvent::Media { .. } => Vec::new(),
    }
}

/// What the person types during a call, when the terminal gives us keys one by one (echo and
/// line editing off): printable text, Backspace, Ctrl-U (clear), Enter (done). Pure: bytes in,
/// finished lines out; the CLI draws [`LineEditor::text`] on the bottom line.
#[derive(Debug, Default)]
pub struct LineEditor {
    text: String,
    /// Bytes of a UTF-8 character split across reads.
    partial: Vec<u8>,
}

/// The longest line kept (a message is at most 4096 bytes; longer input is refused when sent).
const MAX_LINE: usize = 8192;

impl LineEditor {
    /// Takes the bytes of some keys; returns the lines Enter finished, in order.
    pub fn keys(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut done = Vec::new();
        let mut escape = false;
        for &b in bytes {
            if escape {
                // Arrow keys and the like (ESC [ ... letter): ignored whole.
                if b.is_ascii_alphabetic() || b == b'~' {
                    escape = false;
                }
                continue;
            }
            match b {
                b'\r' | b'\n' => {
                    self.partial.clear();
                    done.push(std::mem::take(&mut self.text));
                }
                0x7f | 0x08 => {
                    self.partial.clear();
                    self.text.pop();
                }
                0x15 => {
                    self.partial.clear();
                    self.text.clear();
                }
                0x1b => escape = true,
                b if b < 0x20 => {}
                b => {
                    self.partial.push(b);
                    match std::str::from_utf8(&self.partial) {
                        Ok(s) => {
                            if self.text.len() + s.len() <= MAX_LINE {
                                self.text.push_str(s);
                            }
                            self.partial.clear();
                        }
                        Err(e) if e.error_len().is_some() || self.partial.len() >= 4 => {
                            self.partial.clear();
                        }
                        Err(_) => {}
                    }
                }
            }
        }
        done
    }

    /// What is typed so far.
    pub fn text(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod chat_tests {
    use super::*;

    #[test]
    fn the_editor_builds_lines_from_keys() {
        let mut e = LineEditor::default();
        assert!(e.keys(b"hel").is_empty());
        assert_eq!(e.text(), "hel");
        assert_eq!(e.keys(b"lo\x7f\x7fp\r"), vec!["help".to_owned()]);
        assert_eq!(e.text(), "");
        // A character split across reads, an arrow key, Ctrl-U.
        assert!(e.keys(&"é".as_bytes()[..1]).is_empty());
        assert!(e.keys(&"é".as_bytes()[1..]).is_empty());
        assert!(e.keys(b"\x1b[Dx").is_empty());
        assert_eq!(e.text(), "éx");
        assert!(e.keys(b"\x15").is_empty());
        assert_eq!(e.keys(b"a\nb\n"), vec!["a".to_owned(), "b".to_owned()]);
    }

    #[test]
    fn the_peers_text_cannot_drive_the_terminal() {
        let lines = chat_lines(
            &ChatEvent::Message {
                id: 1,
                text: "hi\x1b]0;pwned\x07\r\nnext".into(),
            },
            "them",
        );
        assert_eq!(lines, vec!["them: hi?]0;pwned??\n  next".to_owned()]);
        let lines = chat_lines(
            &ChatEvent::FileOffered {
                id: 2,
                name: "a\x1b[2Jb".into(),
                size: 20_000_000,
                accepted: false,
            },
            "them",
        );
        assert_eq!(
            lines,
            vec!["them: file 2 \"a?[2Jb\" (20.0 MB): /accept 2 or /decline 2".to_owned()]
        );
    }

    #[test]
    fn a_file_under_way_has_a_progress_bar_on_the_status_line_until_it_ends() {
        let now = Instant::now();
        let mut status = Status::new(true);
        let progress = |direction, done| Event::Chat {
            peer: None,
            event: ChatEvent::FileProgress {
                id: 3,
                direction,
                done,
                size: 1_000_000,
            },
        };
        status.event(&progress("outgoing", 520_000), now);
        status.event(&progress("incoming", 16_000), now);
        let line = status.render(now, 200);
        assert!(
            line.starts_with(
                "connecting to the relay | file 3 receiving [..........] 1% \
                 | file 3 sending [#####.....] 52% | Ctrl-C hangs up"
            ),
            "{line}"
        );
        // Finished either way, or stopped: the bar goes.
        status.event(&progress("outgoing", 1_000_000), now);
        status.event(
            &Event::Chat {
                peer: None,
                event: ChatEvent::FileReceived {
                    id: 3,
                    path: "x".into(),
                },
            },
            now,
        );
        assert!(!status.render(now, 200).contains("file 3"));
        status.event(&progress("incoming", 16_000), now);
        status.event(
            &Event::Chat {
                peer: None,
                event: ChatEvent::FileStopped {
                    id: 3,
                    direction: "incoming",
                    by: "peer",
                    reason: "cancelled",
                },
            },
            now,
        );
        assert!(!status.render(now, 200).contains("file 3"));
    }

    #[test]
    fn in_a_group_the_same_file_number_from_two_people_has_two_bars_named_for_them() {
        let now = Instant::now();
        let mut status = Status::new(true);
        let progress = |peer: &str, done| Event::Chat {
            peer: Some(peer.to_owned()),
            event: ChatEvent::FileProgress {
                id: 0,
                direction: "incoming",
                done,
                size: 100,
            },
        };
        status.event(
            &Event::Name {
                name: "Ada".into(),
                peer: Some("aaaaaa11".into()),
            },
            now,
        );
        status.event(&progress("aaaaaa11", 10), now);
        status.event(&progress("bbbbbb22", 70), now);
        let line = status.render(now, 200);
        assert!(
            line.contains("file 0 from Ada [#.........] 10% | file 0 from bbbbbb [#######...] 70%"),
            "{line}"
        );
        status.event(&progress("aaaaaa11", 100), now);
        assert!(!status.render(now, 200).contains("from Ada"));
        assert!(status.render(now, 200).contains("from bbbbbb"));
    }

    #[test]
    fn progress_shows_at_each_quarter_only() {
        let p = |done| {
            chat_lines(
                &ChatEvent::FileProgress {
                    id: 1,
                    direction: "incoming",
                    done,
                    size: 160_000,
                },
                "them",
            )
        };
        assert!(p(16_000).is_empty());
        assert_eq!(p(48_000), vec!["file 1: receiving 30%".to_owned()]);
        assert!(p(64_000).is_empty());
        assert_eq!(p(160_000), vec!["file 1: receiving 100%".to_owned()]);
    }
}
