//! The `sotto` binary on a real, clocked sound card: a PulseAudio server of the test's own
//! (Debian's `pulseaudio`, installed by the test command) with two null sinks, "Sotto
//! loopback" at 44.1 kHz (the default) and "Sotto spare" at 48 kHz, reached through ALSA's
//! PulseAudio plugin as on a desktop. A null sink's monitor is a microphone that hears exactly
//! what the sink plays, so a device client's speakers come back into its own microphone: the
//! worst echo there is, and a loop that shows what went through the device path (the 44.1 kHz
//! sink resampled to and from the rate the plugin offers).
//!
//! The tests share the one server and its sinks, so they take turns.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// The server's socket directory; the server itself, once started.
struct Pulse {
    dir: PathBuf,
    _server: Child,
}

fn pulse_env<'a>(cmd: &'a mut Command, dir: &Path) -> &'a mut Command {
    cmd.env(
        "PULSE_SERVER",
        format!("unix:{}", dir.join("native").display()),
    )
    .env("PULSE_RUNTIME_PATH", dir)
}

fn pactl(dir: &Path, args: &[&str]) -> Output {
    pulse_env(&mut Command::new("pactl"), dir)
        .args(args)
        .output()
        .expect("pactl from Debian's pulseaudio-utils (the test command installs it)")
}

/// The server, started on first use; the guard makes the tests take turns.
fn pulse() -> (MutexGuard<'static, ()>, &'static Path) {
    static TURN: Mutex<()> = Mutex::new(());
    static PULSE: OnceLock<Pulse> = OnceLock::new();
    let turn = TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let pulse = PULSE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("sotto-pulse-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("native");
        let server = pulse_env(&mut Command::new("pulseaudio"), &dir)
            .args([
                "--daemonize=no",
                "-n",
                "--use-pid-file=no",
                "--disallow-exit",
                // It outlives the test process by this much, then ends by itself.
                "--exit-idle-time=20",
                "--log-target=stderr",
                "--log-level=error",
            ])
            .arg(format!(
                "--load=module-native-protocol-unix auth-anonymous=1 socket={}",
                socket.display()
            ))
            .arg(
                "--load=module-null-sink sink_name=sotto_loop rate=44100 \
                 sink_properties=device.description=Sotto-loopback",
            )
            .arg(
                "--load=module-null-sink sink_name=sotto_spare rate=48000 \
                 sink_properties=device.description=Sotto-spare",
            )
            .stdout(Stdio::null())
            .spawn()
            .expect("pulseaudio from Debian's package (the test command installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !pactl(&dir, &["info"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "PulseAudio did not answer in 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        for args in [
            ["set-default-sink", "sotto_loop"],
            ["set-default-source", "sotto_loop.monitor"],
        ] {
            assert!(pactl(&dir, &args).status.success(), "pactl {args:?}");
        }
        Pulse {
            dir,
            _server: server,
        }
    });
    (turn, &pulse.dir)
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("sotto-dev-{}-{name}", std::process::id()))
}

/// `sotto` with the test's PulseAudio server and a data directory of its own (each process its
/// own device).
fn sotto(pulse: &Path, args: &[&str]) -> Command {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let data = temp(&format!("data-{n}"));
    std::fs::create_dir_all(&data).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sotto"));
    pulse_env(&mut cmd, pulse)
        .args(args)
        .env("XDG_DATA_HOME", data)
        .stdin(Stdio::null());
    cmd
}

/// The real relay on a free loopback port, on a thread of its own.
fn start_relay() -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let _ = sotto_signaling::run(
                listener,
                sotto_signaling::Config::default(),
                std::future::pending::<()>(),
            )
            .await;
        })
    });
    rx.recv().unwrap()
}

fn link(addr: std::net::SocketAddr, n: u8) -> String {
    // 42 characters and a last one whose low bits are zero: canonical base64url of 32 bytes.
    let mut secret: String = std::iter::repeat_n(char::from(b'B' + n % 24), 42).collect();
    secret.push('A');
    format!("http://{addr}/#{secret}")
}

/// Reads a 48 kHz mono WAV file.
fn read_wav(path: &Path) -> Vec<i16> {
    hound::WavReader::open(path)
        .unwrap()
        .into_samples::<i16>()
        .map(Result::unwrap)
        .collect()
}

/// Goertzel power of `f` Hz in 48 kHz samples, per sample.
fn tone_power(x: &[i16], f: f64) -> f64 {
    let c = 2.0 * (2.0 * std::f64::consts::PI * f / 48_000.0).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) / 32768.0 + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - c * s1 * s2) / x.len().max(1) as f64
}

fn power(x: &[i16]) -> f64 {
    x.iter()
        .map(|&s| (f64::from(s) / 32768.0).powi(2))
        .sum::<f64>()
        / x.len().max(1) as f64
}

/// A call between a file client (`--input`/`--tone`, `--output` a WAV file) and a device
/// client (`device_args`: the microphone and speakers are the server's). Returns what the file
/// client heard and the device client's JSON lines.
fn file_to_device_call(
    pulse: &Path,
    tag: &str,
    file_args: &[&str],
    device_args: &[&str],
    device_env: &[(&str, &str)],
    seconds: &str,
) -> (Vec<i16>, Vec<String>) {
    let addr = start_relay();
    let link = link(addr, tag.len() as u8 % 26);
    let heard = temp(&format!("{tag}-heard.wav"));
    let heard_arg = heard.display().to_string();
    let mut file_side = sotto(
        pulse,
        &[
            &[
                "call",
                &link,
                "--loopback",
                "--duration",
                seconds,
                "--output",
                &heard_arg,
            ],
            file_args,
        ]
        .concat(),
    )
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    let device_side = sotto(
        pulse,
        &[
            &["call", &link, "--loopback", "--json", "--duration", seconds],
            device_args,
        ]
        .concat(),
    )
    .envs(device_env.iter().copied())
    .output()
    .unwrap();
    let lines: Vec<String> = String::from_utf8_lossy(&device_side.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    if device_side.status.code() != Some(0) {
        // It never joined: the file side would wait for it forever.
        let _ = file_side.kill();
    }
    assert_eq!(
        device_side.status.code(),
        Some(0),
        "device side: {}\n{}",
        String::from_utf8_lossy(&device_side.stderr),
        lines.join("\n")
    );
    assert_eq!(file_side.wait().unwrap().code(), Some(0));
    let samples = read_wav(&heard);
    let _ = std::fs::remove_file(&heard);
    (samples, lines)
}

fn audio_event(lines: &[String]) -> serde_json::Value {
    let line = lines
        .iter()
        .find(|l| l.contains(r#""event":"audio""#))
        .unwrap_or_else(|| panic!("no audio event in {lines:?}"));
    serde_json::from_str(line).unwrap()
}

#[test]
fn a_tone_comes_back_through_speakers_and_microphone_at_its_pitch() {
    let (_turn, pulse) = pulse();
    let (heard, lines) = file_to_device_call(
        pulse,
        "tone",
        &["--tone", "440"],
        // The loop is a perfect echo: with the canceller on it would (rightly) be removed.
        &["--no-aec", "--no-ns", "--no-agc"],
        &[],
        "4",
    );
    let audio = audio_event(&lines);
    assert_eq!(audio["input"]["id"], "default", "{audio}");
    assert_eq!(audio["output"]["id"], "default", "{audio}");
    assert!(
        audio["output"]["rate"].as_u64().unwrap() >= 8_000,
        "{audio}"
    );
    assert_eq!(audio["echo_cancellation"], false);
    // Its own tone came back, at 440 Hz: not at 479 or 404 Hz, as it would from a 44.1 kHz
    // stream read or written anywhere as if it ran at 48 kHz.
    let tail = &heard[heard.len().saturating_sub(2 * 48_000)..];
    let (p440, p479, p404) = (
        tone_power(tail, 440.0),
        tone_power(tail, 479.0),
        tone_power(tail, 404.25),
    );
    assert!(p440 > 1e-3, "no 440 Hz came back: {p440}");
    assert!(
        p440 > 100.0 * p479.max(p404),
        "440 Hz {p440} vs 479 Hz {p479} and 404 Hz {p404}"
    );
    // The stats carry the levels, the status line's figures.
    let stats = lines
        .iter()
        .rev()
        .find(|l| l.contains(r#""event":"stats""#))
        .expect("stats");
    let stats: serde_json::Value = serde_json::from_str(stats).unwrap();
    let (sent, played) = (
        stats["input_level_db"].as_f64().unwrap(),
        stats["output_level_db"].as_f64().unwrap(),
    );
    assert!(sent > -30.0 && played > -30.0, "{stats}");
    assert!(
        stats.get("echo_converged").is_none(),
        "no canceller: {stats}"
    );
}

#[test]
fn the_echo_of_what_the_speakers_play_is_not_sent_back() {
    let (_turn, pulse) = pulse();
    let speech = temp("speech.wav");
    let mut w = hound::WavWriter::create(
        &speech,
        hound::WavSpec {
            channels: 1,
            sample_rate: 48_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        },
    )
    .unwrap();
    // Longer than the call: the far end talks until the end.
    for s in sotto_client::audio::speech_like(20) {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    let speech_arg = speech.display().to_string();
    // The far end talks; the device side's speakers play it straight into its microphone.
    // What the far end hears back is its own echo, unless the canceller removes it.
    let run = |device_args: &[&str]| {
        let (heard, lines) = file_to_device_call(
            pulse,
            "echo",
            &["--input", &speech_arg],
            device_args,
            &[],
            "12",
        );
        // The last 5 s: the canceller has had 7 s to converge.
        let tail = heard[heard.len().saturating_sub(5 * 48_000)..].to_vec();
        (power(&tail), lines)
    };
    let (echo, _) = run(&["--no-aec", "--no-ns", "--no-agc"]);
    let (left, lines) = run(&["--no-agc"]);
    let removed = 10.0 * (echo / left.max(1e-12)).log10();
    eprintln!(
        "echo back {:.1} dBFS without the canceller; {removed:.1} dB removed",
        10.0 * echo.log10()
    );
    assert!(
        echo > 1e-4,
        "without a canceller the echo comes back: {echo}"
    );
    // Through a real device (its buffering, the server's resampling) and with noise
    // suppression on, as people run it; the synthetic test asks 30 dB of the canceller alone.
    assert!(removed >= 20.0, "only {removed:.1} dB of echo removed");
    // The status line said so.
    assert!(
        lines.iter().any(|l| l.contains(r#""echo_converged":true"#)),
        "{lines:?}"
    );
    let _ = std::fs::remove_file(speech);
}

#[test]
fn devices_are_listed_and_chosen_by_name_and_a_wrong_name_lists_the_choices() {
    let (_turn, pulse) = pulse();
    let listed = sotto(pulse, &["audio-devices", "--json"]).output().unwrap();
    assert!(listed.status.success());
    let devices: Vec<serde_json::Value> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for direction in ["input", "output"] {
        let plugin = devices
            .iter()
            .find(|d| d["id"] == "pulse" && d["direction"] == direction)
            .unwrap_or_else(|| panic!("ALSA's pulse {direction} in {devices:?}"));
        assert!(plugin["rate"].as_u64().unwrap() >= 8_000, "{plugin}");
        let defaults = devices
            .iter()
            .filter(|d| d["direction"] == direction && d["default"] == true)
            .count();
        assert_eq!(defaults, 1, "one default {direction}: {devices:?}");
    }
    let table = sotto(pulse, &["audio-devices"]).output().unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("Speakers (--output-device):")
            && table.contains("  PulseAudio Sound Server  [pulse]  "),
        "{table}"
    );

    // A name that matches nothing, or several: exit 2, the choices listed, nothing opened.
    let link = link(std::net::SocketAddr::from(([127, 0, 0, 1], 9)), 1);
    let none = sotto(pulse, &["call", &link, "--input-device", "bluetooth"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&none.stderr);
    assert_eq!(none.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no input device matches \"bluetooth\"")
            && err.contains("\"PulseAudio Sound Server\" (pulse)"),
        "{err}"
    );
    let several = sotto(
        pulse,
        &[
            "call",
            &link,
            "--tone",
            "440",
            "--output-device",
            "pulseaudio",
        ],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&several.stderr);
    assert_eq!(several.status.code(), Some(2), "{err}");
    assert!(
        err.contains("\"pulseaudio\" matches ")
            && err.contains("(pulse)")
            && err.contains("(default)"),
        "{err}"
    );

    // Chosen by name (exact) and by a part of one; PulseAudio's own choice sends them to the
    // spare sink and its monitor, and the tone comes back from there.
    let (heard, lines) = file_to_device_call(
        pulse,
        "spare",
        &["--tone", "440"],
        &[
            "--no-aec",
            "--output-device",
            "pulse",
            "--input-device",
            "RECORDING THROUGH",
        ],
        &[
            ("PULSE_SINK", "sotto_spare"),
            ("PULSE_SOURCE", "sotto_spare.monitor"),
        ],
        "3",
    );
    let audio = audio_event(&lines);
    assert_eq!(audio["output"]["id"], "pulse", "{audio}");
    assert_eq!(audio["input"]["id"], "default", "{audio}");
    let tail = &heard[heard.len().saturating_sub(48_000)..];
    assert!(
        tone_power(tail, 440.0) > 1e-3,
        "the tone came back through the spare sink"
    );
}
