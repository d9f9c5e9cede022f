//! `sotto`: make a call link, or join a call from the terminal. Parses flags and calls the
//! library.
#![forbid(unsafe_code)]

use clap::{Args, Parser, Subcommand};
use sotto_client::ClientError;
use sotto_client::audio::{Sink, Source};
use sotto_client::call::Outcome;
use sotto_client::session::{CallOptions, Event, run_call};
use sotto_e2ee::{Link, LinkSecret};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "sotto",
    version,
    about = "End-to-end encrypted calls from the terminal."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a fresh call link. Send it to the other person; both run `sotto call LINK`.
    New {
        /// The relay's address.
        #[arg(long, env = "SOTTO_RELAY", default_value = "http://127.0.0.1:8080")]
        relay: String,
    },
    /// Join the call a link leads to.
    Call(CallArgs),
}

#[derive(Debug, Args)]
struct CallArgs {
    /// The call link (`https://HOST/#SECRET`). Anyone with it can join: share it privately.
    link: String,
    /// Send a sine of this frequency instead of the microphone.
    #[arg(long, value_name = "HZ", conflicts_with = "input")]
    tone: Option<f64>,
    /// Send this WAV file (48 kHz mono 16-bit) instead of the microphone.
    #[arg(long, value_name = "FILE.wav")]
    input: Option<PathBuf>,
    /// Write what the other side says to this WAV file instead of the speakers.
    #[arg(long, value_name = "FILE.wav")]
    output: Option<PathBuf>,
    /// Hang up this many seconds after the call connected.
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// One JSON event per line on standard output instead of the status line.
    #[arg(long)]
    json: bool,
    /// A STUN server to use instead of the relay's (repeatable).
    #[arg(long = "stun", value_name = "URL")]
    stun: Vec<String>,
    /// A TURN server to use instead of the relay's.
    #[arg(long = "turn", value_name = "URL", requires_all = ["turn_user", "turn_pass"])]
    turn: Option<String>,
    /// TURN user name.
    #[arg(long, value_name = "U")]
    turn_user: Option<String>,
    /// TURN password.
    #[arg(long, value_name = "P")]
    turn_pass: Option<String>,
    /// Connect through TURN only: the other side never learns your IP address.
    #[arg(long)]
    relay_only: bool,
    /// Use loopback addresses only (both sides on this machine).
    #[arg(long)]
    loopback: bool,
}

/// Exit codes, one per way a call can fail (documented in the README).
fn exit_code(outcome: &Outcome) -> u8 {
    match outcome {
        Outcome::HungUp | Outcome::PeerHungUp => 0,
        Outcome::RelayError(..) | Outcome::ProtocolViolation(_) => 4,
        Outcome::WrongLinkOrTamperedRelay | Outcome::Tampered(_) => 5,
        Outcome::PeerLeft => 6,
        Outcome::ConnectionFailed(_) => 7,
        Outcome::RelayLost => 3,
    }
}

fn fail(code: u8, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("sotto: {e}");
    ExitCode::from(code)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::New { relay } => {
            let link = LinkSecret::generate()
                .map_err(|e| e.to_string())
                .and_then(|s| Link::new(&relay, s).map_err(|e| e.to_string()));
            match link {
                Ok(link) => {
                    println!("{}", link.to_text().as_str());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(2, e),
            }
        }
        Command::Call(args) => call(args),
    }
}

fn call(args: CallArgs) -> ExitCode {
    let link = match Link::parse(&args.link) {
        Ok(link) => link,
        Err(e) => return fail(2, e),
    };
    // The default microphone and speakers stand in for whatever the options do not give.
    let want_mic = args.tone.is_none() && args.input.is_none();
    let want_speakers = args.output.is_none();
    let (mic, speakers, _devices) = if want_mic || want_speakers {
        match sotto_client::devices::open(want_mic, want_speakers) {
            Ok(d) => (d.0, d.1, Some(d.2)),
            Err(e) => return fail(2, e),
        }
    } else {
        (None, None, None)
    };
    let source = match (&args.tone, &args.input, mic) {
        (Some(hz), _, _) => Source::tone(*hz),
        (None, Some(path), _) => match Source::wav(path) {
            Ok(s) => s,
            Err(e) => return fail(2, e),
        },
        (None, None, Some(queue)) => Source::Device(queue),
        (None, None, None) => Source::Silence,
    };
    let sink = match (&args.output, speakers) {
        (Some(path), _) => match Sink::wav(path) {
            Ok(s) => s,
            Err(e) => return fail(2, e),
        },
        (None, Some(queue)) => Sink::Device(queue),
        (None, None) => Sink::Discard,
    };
    let mut ice = Vec::new();
    for url in &args.stun {
        ice.push((vec![url.clone()], String::new(), String::new()));
    }
    if let (Some(url), Some(user), Some(pass)) = (&args.turn, &args.turn_user, &args.turn_pass) {
        ice.push((vec![url.clone()], user.clone(), pass.clone()));
    }
    let options = CallOptions {
        source,
        sink,
        duration: args.duration.map(Duration::from_secs_f64),
        ice_servers: (!ice.is_empty()).then_some(ice),
        relay_only: args.relay_only,
        loopback_only: args.loopback,
        stats_interval: Duration::from_secs(1),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(1, e),
    };
    let json = args.json;
    let tty = std::io::stdout().is_terminal();
    let result = runtime.block_on(run_call(
        &link,
        options,
        move |event| show(&event, json, tty),
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    ));
    let (code, message) = match result {
        Ok((outcome, _)) => (exit_code(&outcome), outcome.to_string()),
        Err(e @ ClientError::RelayUnreachable(_)) => (3, e.to_string()),
        Err(e) => (1, e.to_string()),
    };
    if code == 0 {
        return ExitCode::SUCCESS;
    }
    if json {
        let line = serde_json::json!({"event": "error", "exit": code, "message": message});
        println!("{line}");
    }
    fail(code, message)
}

/// Prints one event: JSON lines, or a human status line (rewritten in place on a terminal).
fn show(event: &Event, json: bool, tty: bool) {
    let mut out = std::io::stdout().lock();
    if json {
        if let Ok(line) = serde_json::to_string(event) {
            let _ = writeln!(out, "{line}");
        }
        return;
    }
    let line = match event {
        Event::Relay { url } => format!("relay: {url}"),
        Event::State { state } => format!("call: {state}"),
        Event::Candidate { typ } => format!("network: {typ} candidate"),
        Event::Sas { code } => format!(
            "SAFETY CODE: {} {}  -- read it aloud; if the other side sees different digits, hang up",
            &code[..3.min(code.len())],
            code.get(3..).unwrap_or("")
        ),
        Event::Stats(c) => {
            let status = format!(
                "sent {} | received {} | failed {} | concealed {} | rtt {} | loss {}",
                c.frames_sent,
                c.frames_received,
                c.frames_failed,
                c.frames_concealed,
                c.rtt_ms.map_or("-".into(), |v| format!("{v:.0} ms")),
                c.loss.map_or("-".into(), |v| format!("{:.1}%", v * 100.0)),
            );
            if tty {
                let _ = write!(out, "\r\x1b[2K{status}");
                let _ = out.flush();
                return;
            }
            status
        }
        Event::Ended { reason, .. } => {
            format!("{}call ended: {reason}", if tty { "\n" } else { "" })
        }
    };
    let _ = writeln!(out, "{line}");
}
