//! `call-setup`: how long a native call takes to start. For each of `--calls` calls, starts two
//! `sotto call` processes on one link, one right after the other, and reads their JSON events:
//! the time from both processes started to the first authenticated audio frame decoded on each
//! side (the `receiving-audio` state), with the steps before it. Prints the medians.
#![forbid(unsafe_code)]

use clap::Parser;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(name = "call-setup", about = "Time native call set-up end to end.")]
struct Args {
    /// The `sotto` binary.
    #[arg(long, default_value = "target/release/sotto")]
    sotto: PathBuf,
    /// The relay, as `sotto new --relay` takes it.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    relay: String,
    /// Calls to time.
    #[arg(long, default_value_t = 10)]
    calls: usize,
}

/// The steps timed, in the order a call reaches them, as the CLI names its states.
const STEPS: [&str; 3] = ["keys-confirmed", "connected", "receiving-audio"];

/// One side of a call: its process and the time each step was first seen.
struct Side {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
}

impl Side {
    fn start(args: &Args, link: &str, hz: &str, out: &str) -> std::io::Result<Self> {
        let mut child = Command::new(&args.sotto)
            .args(["call", link, "--tone", hz, "--json", "--loopback"])
            .args(["--output", out, "--duration", "0.5"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Ok(Self { child, lines })
    }

    /// Milliseconds from `t0` to each step, until the process ends.
    fn steps(mut self, t0: Instant) -> Result<[f64; 3], String> {
        let mut at = [f64::NAN; 3];
        while let Ok((when, line)) = self.lines.recv_timeout(Duration::from_secs(20)) {
            for (i, step) in STEPS.iter().enumerate() {
                if at[i].is_nan() && line.contains(&format!("\"state\":\"{step}\"")) {
                    at[i] = when.duration_since(t0).as_secs_f64() * 1000.0;
                }
            }
            if line.contains("\"event\":\"ended\"") {
                break;
            }
        }
        let status = self.child.wait().map_err(|e| e.to_string())?;
        if !status.success() || at.iter().any(|t| t.is_nan()) {
            let _ = self.child.kill();
            return Err(format!("a call did not complete ({status}; steps {at:?})"));
        }
        Ok(at)
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn run(args: &Args) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("sotto-call-setup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let out = |side: &str| dir.join(format!("{side}.wav")).display().to_string();
    // Per call: the later of the two sides for each step.
    let mut per_step: [Vec<f64>; 3] = Default::default();
    for _ in 0..args.calls {
        let new = Command::new(&args.sotto)
            .args(["new", "--relay", &args.relay])
            .output()
            .map_err(|e| format!("{}: {e}", args.sotto.display()))?;
        let link = String::from_utf8_lossy(&new.stdout).trim().to_owned();
        let t0 = Instant::now();
        let a = Side::start(args, &link, "440", &out("a")).map_err(|e| e.to_string())?;
        let b = Side::start(args, &link, "880", &out("b")).map_err(|e| e.to_string())?;
        let (a, b) = (a.steps(t0)?, b.steps(t0)?);
        for (i, times) in per_step.iter_mut().enumerate() {
            times.push(a[i].max(b[i]));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let [keys, connected, audio] = per_step.map(median);
    println!(
        "scenario=call-setup kind=native calls={} keys_confirmed_ms={keys:.0} connected_ms={connected:.0} \
         first_audio_ms={audio:.0}",
        args.calls
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("call-setup: {e}");
            ExitCode::FAILURE
        }
    }
}
