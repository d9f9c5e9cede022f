//! `sotto`: make a call link, or join a call from the terminal. Parses flags and calls the
//! library.
#![forbid(unsafe_code)]

use clap::{Args, Parser, Subcommand};
use sotto_client::ClientError;
use sotto_client::audio::{Sink, Source};
use sotto_client::call::Outcome;
use sotto_client::chat::FileOptions;
use sotto_client::conversation::Limits;
use sotto_client::known::{DataDir, ThisDevice};
use sotto_client::relay::Endpoint;
use sotto_client::session::{CallOptions, Event, run_call};
use sotto_client::status::{LineEditor, Status};
use sotto_e2ee::{Link, LinkSecret};
use sotto_proto::{GroupSize, IceServer};
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

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

// Parsed once per run: the size difference between the two commands costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Print a fresh call link. Send it to the other person; both run `sotto call LINK`.
    New {
        /// The relay's address, with any path it is served under (https://host/sotto/).
        #[arg(long, env = "SOTTO_RELAY", default_value = "http://127.0.0.1:8080")]
        relay: String,
        /// The relay's certificate must chain to this CA (PEM) instead of the system's roots.
        #[arg(long, value_name = "CA.pem")]
        ca_file: Option<PathBuf>,
        /// Print the link without checking that the relay answers.
        #[arg(long)]
        no_check: bool,
        /// A group call for up to N people (3 to 6; the relay may allow fewer) instead of a
        /// one-to-one call. Links for 7 or more are conferences, which the terminal does not
        /// join yet: make those in a browser.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(3..=6))]
        group: Option<u8>,
    },
    /// Join the call a link leads to.
    Call(CallArgs),
    /// List the microphones and speakers, with their default formats (for --input-device and
    /// --output-device).
    AudioDevices {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List the devices you verified (`/verify` during a call), or forget one.
    Known {
        /// Forget the device of this name: its next call shows as not verified.
        #[arg(long, value_name = "NAME")]
        forget: Option<String>,
    },
}

#[derive(Debug, Args)]
struct CallArgs {
    /// The call link (`https://HOST/#SECRET`). Anyone with it can join: share it privately.
    link: String,
    /// Send a sine of this frequency (20-20000 Hz) instead of the microphone.
    #[arg(long, value_name = "HZ", conflicts_with = "input", value_parser = tone_hz)]
    tone: Option<f64>,
    /// Send this WAV file (48 kHz mono 16-bit) instead of the microphone.
    #[arg(long, value_name = "FILE.wav")]
    input: Option<PathBuf>,
    /// Write what the other side says to this WAV file instead of the speakers.
    #[arg(long, value_name = "FILE.wav")]
    output: Option<PathBuf>,
    /// Hang up this many seconds after the call connected.
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    duration: Option<f64>,
    /// One JSON event per line on standard output instead of the status line.
    #[arg(long)]
    json: bool,
    /// The relay's certificate must chain to this CA (PEM) instead of the system's roots.
    #[arg(long, value_name = "CA.pem")]
    ca_file: Option<PathBuf>,
    /// A STUN server to use instead of the relay's (repeatable).
    #[arg(long = "stun", value_name = "URL", value_parser = ice_url(&["stun:", "stuns:"]))]
    stun: Vec<String>,
    /// A TURN server to use instead of the relay's.
    #[arg(long = "turn", value_name = "URL", requires_all = ["turn_user", "turn_pass"],
          value_parser = ice_url(&["turn:", "turns:"]))]
    turn: Option<String>,
    /// TURN user name.
    #[arg(long, value_name = "U", requires = "turn")]
    turn_user: Option<String>,
    /// TURN password.
    #[arg(long, value_name = "P", requires = "turn")]
    turn_pass: Option<String>,
    /// Connect through TURN only: the other side never learns your IP address.
    #[arg(long)]
    relay_only: bool,
    /// Your name, as the others see it (sealed: the relay never sees it; at most 64 bytes).
    #[arg(long, value_name = "NAME", value_parser = name)]
    name: Option<String>,
    /// Use loopback addresses only (both sides on this machine).
    #[arg(long)]
    loopback: bool,
    /// Save received files here (never over an existing file).
    #[arg(long, value_name = "DIR", default_value = ".")]
    download_dir: PathBuf,
    /// Take files up to this many bytes without asking (larger ones wait for /accept N).
    #[arg(long, value_name = "BYTES", default_value_t = 10_000_000)]
    accept_below: u64,
    /// Decline files larger than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 4_000_000_000)]
    max_file_size: u64,
    /// Send no device key and store nothing: the others cannot tell this call from your
    /// others, and cannot recognise your device either.
    #[arg(long)]
    incognito: bool,
    /// The microphone: its exact name (see `sotto audio-devices`) or a part of it that names
    /// only one.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["tone", "input"])]
    input_device: Option<String>,
    /// The speakers: an exact name or a part of one, as --input-device.
    #[arg(long, value_name = "NAME", conflicts_with = "output")]
    output_device: Option<String>,
    /// No echo cancellation (with headphones there is no echo to cancel).
    #[arg(long)]
    no_aec: bool,
    /// No noise suppression.
    #[arg(long)]
    no_ns: bool,
    /// No automatic gain control (your microphone's level as it is).
    #[arg(long)]
    no_agc: bool,
}

fn tone_hz(text: &str) -> Result<f64, String> {
    let hz: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (20.0..=20_000.0).contains(&hz) {
        Ok(hz)
    } else {
        Err(format!("{text} Hz cannot be heard: give 20 to 20000"))
    }
}

fn name(text: &str) -> Result<String, String> {
    if text.len() > sotto_proto::MAX_NAME {
        return Err(format!("{} bytes is too long: at most 64", text.len()));
    }
    sotto_proto::clean_name(text)
        .filter(|clean| clean == text)
        .ok_or_else(|| {
            "a name has no control characters and does not start or end with a space".into()
        })
}

fn seconds(text: &str) -> Result<f64, String> {
    let s: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if s.is_finite() && s > 0.0 && s <= 1e9 {
        Ok(s)
    } else {
        Err(format!("{text} is not a positive number of seconds"))
    }
}

fn ice_url(schemes: &'static [&'static str]) -> impl Fn(&str) -> Result<String, String> + Clone {
    move |text: &str| {
        if schemes.iter().any(|s| text.starts_with(s)) && text.len() > 6 {
            Ok(text.to_owned())
        } else {
            Err(format!("{text:?} must start with {}", schemes.join(" or ")))
        }
    }
}

/// Exit codes, one per way a call can fail (documented in the README).
fn exit_code(outcome: &Outcome) -> u8 {
    match outcome {
        Outcome::HungUp | Outcome::PeerHungUp => 0,
        Outcome::RelayError(..) | Outcome::ProtocolViolation(_) => 4,
        Outcome::WrongLinkOrTamperedRelay | Outcome::Tampered(_) => 5,
        Outcome::ConnectionFailed(_) => 7,
        Outcome::RelayCertificate(_) => 8,
        Outcome::RelayLost => 3,
        _ => 1,
    }
}

/// Exit codes of errors before or around a call.
fn error_code(e: &ClientError) -> u8 {
    match e {
        ClientError::BadLink(_)
        | ClientError::Audio(_)
        | ClientError::AudioDevice(_)
        | ClientError::CaFile(_)
        | ClientError::DataDir(_) => 2,
        ClientError::RelayUnreachable(_) => 3,
        ClientError::RelayCertificate(_) => 8,
        _ => 1,
    }
}

fn fail(code: u8, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("sotto: {e}");
    ExitCode::from(code)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::New {
            relay,
            ca_file,
            no_check,
            group,
        } => new_link(&relay, ca_file.as_deref(), no_check, group),
        Command::Call(args) => call(args),
        Command::AudioDevices { json } => audio_devices(json),
        Command::Known { forget } => known(forget.as_deref()),
    }
}

/// `sotto audio-devices`: every microphone and speaker with its default format.
fn audio_devices(json: bool) -> ExitCode {
    let listed = match sotto_client::devices::list() {
        Ok(listed) => listed,
        Err(e) => return fail(error_code(&e), e),
    };
    if json {
        for device in &listed {
            if let Ok(line) = serde_json::to_string(device) {
                println!("{line}");
            }
        }
        return ExitCode::SUCCESS;
    }
    if listed.is_empty() {
        println!("no audio devices (a call can still --input FILE.wav and --output FILE.wav)");
    }
    for direction in ["input", "output"] {
        let mine: Vec<_> = listed.iter().filter(|d| d.direction == direction).collect();
        if mine.is_empty() {
            continue;
        }
        println!(
            "{}:",
            if direction == "input" {
                "Microphones (--input-device)"
            } else {
                "Speakers (--output-device)"
            }
        );
        for d in mine {
            let f = &d.format;
            println!(
                "{} {}  [{}]  {} Hz, {} channel{}, {}",
                if d.default { "*" } else { " " },
                f.name,
                f.id,
                f.rate,
                f.channels,
                if f.channels == 1 { "" } else { "s" },
                f.sample_format
            );
        }
    }
    if listed.iter().any(|d| d.default) {
        println!("(* the default)");
    }
    ExitCode::SUCCESS
}

/// `sotto known`: the devices this person verified, or `--forget NAME`.
fn known(forget: Option<&str>) -> ExitCode {
    let dir = match DataDir::from_env() {
        Ok(dir) => dir,
        Err(e) => return fail(2, e),
    };
    let mut known = match dir.known_devices() {
        Ok(known) => known,
        Err(e) => return fail(2, e),
    };
    if let Some(name) = forget {
        return match known.forget(name) {
            Ok(true) => {
                println!("forgot {name:?}: its next call shows as not verified");
                ExitCode::SUCCESS
            }
            Ok(false) => fail(
                2,
                format!("no known device is called {name:?} (sotto known lists them)"),
            ),
            Err(e) => fail(2, e),
        };
    }
    if known.list().is_empty() {
        println!(
            "no known devices yet: after comparing the safety code in a call, /verify NAME \
             stores the other device"
        );
    }
    for device in known.list() {
        println!("{}  key {}", device.name, device.fingerprint());
    }
    ExitCode::SUCCESS
}

fn new_link(
    relay: &str,
    ca_file: Option<&std::path::Path>,
    no_check: bool,
    group: Option<u8>,
) -> ExitCode {
    if !relay.starts_with("http://") && !relay.starts_with("https://") {
        return fail(
            2,
            format!(
                "--relay {relay}: a relay's address starts with https:// (or http:// on this \
                 machine), e.g. https://{relay}"
            ),
        );
    }
    let link = match LinkSecret::generate() {
        Ok(secret) => match Link::new(relay, secret).and_then(|link| link.with_group(group)) {
            Ok(link) => link,
            Err(e) => return fail(2, format!("--relay {relay}: {e}")),
        },
        Err(e) => return fail(1, e),
    };
    if !no_check {
        let runtime = match tokio::runtime::Runtime::new() {
            Ok(rt) => rt,
            Err(e) => return fail(1, e),
        };
        let answered = Endpoint::new(link.relay_url(), ca_file)
            .and_then(|relay| runtime.block_on(relay.probe()));
        if let Err(e) = answered {
            return fail(
                error_code(&e),
                format!("{e}\n(no link printed; --no-check prints one anyway)"),
            );
        }
    }
    println!("{}", link.to_text().as_str());
    ExitCode::SUCCESS
}

fn call(args: CallArgs) -> ExitCode {
    let link = match Link::parse(&args.link) {
        Ok(link) => link,
        Err(e) => return fail(2, format!("not a valid Sotto link: {e}")),
    };
    if let Some(n) = link.group().filter(|&n| n > GroupSize::MESH_MAX) {
        return fail(
            2,
            format!(
                "this link is for a conference of up to {n} people; the terminal does not join \
                 conferences yet: open the link in a browser"
            ),
        );
    }
    // Checked before any device opens: a wrong CA file is the user's to fix.
    if let Err(e) = Endpoint::new(link.relay_url(), args.ca_file.as_deref()) {
        return fail(error_code(&e), e);
    }
    // This device's key, made on first use; a damaged one stops here, before any device opens.
    let device = if args.incognito {
        None
    } else {
        match DataDir::from_env().and_then(|dir| ThisDevice::open(&dir)) {
            Ok(device) => Some(device),
            Err(e) => return fail(error_code(&e), e),
        }
    };
    // The default microphone and speakers stand in for whatever the options do not give.
    let want_mic = args.tone.is_none() && args.input.is_none();
    let want_speakers = args.output.is_none();
    let choice = sotto_client::devices::Choice {
        input: args.input_device.clone(),
        output: args.output_device.clone(),
    };
    let processing = sotto_client::processing::Processing {
        echo_cancellation: !args.no_aec,
        noise_suppression: !args.no_ns,
        gain_control: !args.no_agc,
    };
    let (mic, speakers, report, _devices) = if want_mic || want_speakers {
        match sotto_client::devices::open(want_mic, want_speakers, &choice, processing) {
            Ok(d) => (d.microphone, d.speakers, Some(d.report), Some(d.devices)),
            Err(e) => return fail(2, e),
        }
    } else {
        (None, None, None, None)
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
        ice.push(IceServer {
            urls: vec![url.clone()],
            username: None,
            credential: None,
        });
    }
    if let (Some(url), Some(user), Some(pass)) = (&args.turn, &args.turn_user, &args.turn_pass) {
        ice.push(IceServer {
            urls: vec![url.clone()],
            username: Some(user.clone()),
            credential: Some(pass.clone()),
        });
    }
    match std::fs::metadata(&args.download_dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return fail(
                2,
                format!(
                    "--download-dir {}: not a directory",
                    args.download_dir.display()
                ),
            );
        }
        Err(e) => {
            return fail(
                2,
                format!("--download-dir {}: {e}", args.download_dir.display()),
            );
        }
    }
    let mut options = CallOptions {
        source,
        sink,
        duration: args.duration.map(Duration::from_secs_f64),
        ice_servers: (!ice.is_empty()).then_some(ice),
        relay_only: args.relay_only,
        name: args.name.clone(),
        loopback_only: args.loopback,
        stats_interval: Duration::from_secs(1),
        ca_file: args.ca_file.clone(),
        input: None,
        audio: report,
        files: FileOptions {
            download_dir: args.download_dir.clone(),
            limits: Limits {
                accept_below: args.accept_below,
                max_size: args.max_file_size,
            },
        },
        device,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(1, e),
    };
    // Ctrl-C, and a polite kill, hang up: the other side is told and the terminal's settings
    // are given back. Both are caught from here on, before the terminal is changed.
    let hang_up = {
        use tokio::signal::unix::{SignalKind, signal};
        let _entered = runtime.enter();
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => {
                async move {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
            }
            (Err(e), _) | (_, Err(e)) => return fail(1, format!("cannot catch Ctrl-C: {e}")),
        }
    };
    // The terminal is changed only now that Ctrl-C is caught (and so puts it back).
    let json = args.json;
    let editor = Arc::new(Mutex::new(LineEditor::default()));
    let screen = Arc::new(Mutex::new(Screen::new(
        !json && std::io::stdout().is_terminal(),
        Arc::clone(&editor),
        args.incognito,
    )));
    options.input = Some(read_input(Arc::clone(&screen), editor));
    let result = runtime.block_on(run_call(
        &link,
        options,
        |event| {
            if json {
                if let Ok(line) = serde_json::to_string(&event) {
                    println!("{line}");
                }
            } else if let Ok(mut screen) = screen.lock() {
                screen.show(&event);
            }
        },
        hang_up,
    ));
    if let Ok(mut screen) = screen.lock() {
        screen.restore();
    }
    let (code, message) = match result {
        Ok((outcome, _)) => (exit_code(&outcome), outcome.to_string()),
        Err(e) => (error_code(&e), e.to_string()),
    };
    if json && code != 0 {
        let line = serde_json::json!({"event": "error", "exit": code, "message": message});
        println!("{line}");
    }
    if code == 0 {
        if !json {
            println!("call ended: {message}");
        }
        return ExitCode::SUCCESS;
    }
    fail(code, message)
}

/// The lines the person types during the call, read by a thread of their own (a blocked read
/// of the terminal must never hold up the call): key by key through the line editor when the
/// screen is a terminal (the bottom line shows what is typed), else line by line.
fn read_input(
    screen: Arc<Mutex<Screen>>,
    editor: Arc<Mutex<LineEditor>>,
) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    let keys = screen.lock().is_ok_and(|s| s.saved.is_some());
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        if keys {
            let mut buf = [0u8; 256];
            while let Ok(n @ 1..) = stdin.read(&mut buf) {
                let lines = editor
                    .lock()
                    .map(|mut e| e.keys(&buf[..n]))
                    .unwrap_or_default();
                if let Ok(mut screen) = screen.lock() {
                    screen.redraw();
                }
                for line in lines {
                    if tx.blocking_send(line).is_err() {
                        return;
                    }
                }
            }
        } else {
            let mut line = String::new();
            while stdin.read_line(&mut line).is_ok_and(|n| n > 0) {
                if tx.blocking_send(std::mem::take(&mut line)).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// The terminal while a call runs: lines that stay, and one bottom line redrawn in place at
/// the terminal's width: the status, or what the person is typing. Keys come one by one (no
/// echo, no line editing by the terminal, Ctrl-C still a signal). Plain lines when not a
/// terminal.
struct Screen {
    status: Status,
    terminal: bool,
    editor: Arc<Mutex<LineEditor>>,
    /// The terminal's settings before they were changed, to put back.
    saved: Option<rustix::termios::Termios>,
}

impl Screen {
    fn new(terminal: bool, editor: Arc<Mutex<LineEditor>>, incognito: bool) -> Self {
        let mut saved = None;
        let stdin = std::io::stdin();
        if terminal
            && stdin.is_terminal()
            && let Ok(before) = rustix::termios::tcgetattr(&stdin)
        {
            let mut keys = before.clone();
            keys.local_modes -=
                rustix::termios::LocalModes::ECHO | rustix::termios::LocalModes::ICANON;
            if rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &keys)
                .is_ok()
            {
                saved = Some(before);
            }
        }
        Self {
            status: Status::new(terminal).incognito(incognito),
            terminal,
            editor,
            saved,
        }
    }

    fn width() -> usize {
        rustix::termios::tcgetwinsize(std::io::stdout())
            .ok()
            .map_or(80, |w| usize::from(w.ws_col).max(1))
    }

    /// The bottom line: what is being typed, else the status.
    fn bottom(&self, now: Instant) -> String {
        let width = Self::width();
        let typed = self
            .editor
            .lock()
            .map(|e| e.text().to_owned())
            .unwrap_or_default();
        if typed.is_empty() {
            return self.status.render(now, width);
        }
        // The end of a long line stays in view.
        let room = width.saturating_sub(3).max(1);
        let chars: Vec<char> = typed.chars().collect();
        let start = chars.len().saturating_sub(room);
        format!("> {}", chars[start..].iter().collect::<String>())
    }

    fn redraw(&mut self) {
        if !self.terminal {
            return;
        }
        let line = self.bottom(Instant::now());
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "\r\x1b[2K{line}");
        let _ = out.flush();
    }

    fn show(&mut self, event: &Event) {
        let now = Instant::now();
        let output = self.status.event(event, now);
        let mut out = std::io::stdout().lock();
        if self.terminal {
            let _ = write!(out, "\r\x1b[2K");
        }
        for line in &output.lines {
            let _ = writeln!(out, "{line}");
        }
        if output.redraw {
            let _ = write!(out, "{}", self.bottom(now));
        }
        let _ = out.flush();
    }

    /// Clears the bottom line and gives the terminal its settings back.
    fn restore(&mut self) {
        if self.terminal {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[2K");
            let _ = out.flush();
            self.terminal = false;
        }
        if let Some(before) = self.saved.take() {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                &before,
            );
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        self.restore();
    }
}
