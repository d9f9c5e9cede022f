//! The sound card, through cpal: the microphone and the speakers, the defaults or chosen by
//! name, at whatever rate and channels they run. On Linux cpal talks to PulseAudio (or
//! PipeWire's PulseAudio server) when one runs, else to ALSA.
//!
//! One thread owns the streams and runs the [`Engine`]: resampling, the echo canceller, noise
//! suppression and gain control. The device callbacks only move samples through lock-free
//! rings and wake that thread; they never block, lock or allocate. The call sees 20 ms frames
//! of the processed microphone as they are recorded (the microphone's clock is the call's) and
//! hands what it plays to a bounded queue. A machine without a sound card gets a clear error
//! when the streams are built, not a panic.

use crate::ClientError;
use crate::audio::{FRAME, RATE};
use crate::engine::{Engine, EngineReport};
use crate::processing::Processing;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample, StreamConfig};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

/// Samples the call's playback queue holds at most (200 ms): past it the oldest go, so a stall
/// never builds up latency or memory.
const MAX_QUEUED: usize = (RATE as usize) / 5;
/// The rings between the callbacks and the audio thread: half a second of the device's rate.
const RING_MS: usize = 500;
/// 20 ms frames of the microphone waiting for the call (200 ms); a call that falls further
/// behind loses the oldest.
const FRAMES_WAITING: usize = 10;

/// A queue of mono 48 kHz samples: what the call plays, taken by the audio thread.
pub type SampleQueue = Arc<Mutex<VecDeque<i16>>>;

/// Takes `out.len()` samples from a queue, padding with silence when it runs short.
pub fn take(queue: &SampleQueue, out: &mut [i16]) {
    let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
    for s in out.iter_mut() {
        *s = q.pop_front().unwrap_or(0);
    }
}

/// Appends samples to a queue (what the call plays), dropping the oldest past 200 ms.
pub fn give(queue: &SampleQueue, pcm: &[i16]) {
    let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
    q.extend(pcm.iter().copied());
    let excess = q.len().saturating_sub(MAX_QUEUED);
    q.drain(..excess);
}

/// The microphone, as the call reads it: 20 ms frames, processed, at 48 kHz, each as soon as
/// it is recorded.
#[derive(Debug)]
pub struct Microphone(tokio::sync::mpsc::Receiver<[i16; FRAME]>);

impl Microphone {
    /// The next frame; `None` once the audio thread has stopped.
    pub async fn recv(&mut self) -> Option<[i16; FRAME]> {
        self.0.recv().await
    }
}

/// Which devices to use; `None` is the system's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Choice {
    /// `--input-device`.
    pub input: Option<String>,
    /// `--output-device`.
    pub output: Option<String>,
}

/// A device's format as opened (or, when listed, as it runs by default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Format {
    /// The name `--input-device`/`--output-device` match (the server's description).
    pub name: String,
    /// The server's own identifier (PulseAudio's sink or source name, ALSA's PCM name);
    /// matched too.
    pub id: String,
    /// Samples per second.
    pub rate: u32,
    /// Channels (the microphone's are mixed to mono, the speakers get the same on each).
    pub channels: u16,
    /// The sample format, e.g. `i16` or `f32`.
    pub sample_format: String,
}

/// A device as `sotto audio-devices` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    /// `input` or `output`.
    pub direction: &'static str,
    /// The system's default for its direction.
    pub default: bool,
    /// Its name and default format.
    #[serde(flatten)]
    pub format: Format,
}

/// What the audio thread reports, for the status line and `--json` stats.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AudioReport {
    /// The microphone opened, if any.
    pub input: Option<Format>,
    /// The speakers opened, if any.
    pub output: Option<Format>,
    /// The processing that runs on the microphone.
    pub processing: Processing,
    /// The engine's figures (echo removed and its delay, the speakers' drift correction).
    pub engine: EngineReport,
    /// Times the microphone's ring was full (the audio thread fell behind).
    pub overruns: u64,
    /// Times the speakers found nothing queued.
    pub underruns: u64,
}

/// The audio thread's report, shared with the call.
pub type Report = Arc<Mutex<AudioReport>>;

/// Reads a report.
pub fn read(report: &Report) -> AudioReport {
    report
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// The devices of a call, open: what it reads from and plays to.
#[derive(Debug)]
pub struct Opened {
    /// The microphone, if one was asked for.
    pub microphone: Option<Microphone>,
    /// The speakers' queue, if they were asked for.
    pub speakers: Option<SampleQueue>,
    /// Refreshed by the audio thread.
    pub report: Report,
    /// Keeps the streams running; dropping it stops them.
    pub devices: Devices,
}

/// Keeps the device streams running; dropping it stops them.
#[derive(Debug)]
pub struct Devices {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Devices {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// How often a device error that keeps coming back is printed again.
const REPEAT_EVERY: Duration = Duration::from_secs(10);

/// Device errors as a person can read them: the first of a kind at once, then one line every
/// ten seconds saying how often it came back, never a flood (a failing device reports many
/// errors a second).
#[derive(Debug, Default)]
pub struct Throttle {
    last: Option<(String, std::time::Instant)>,
    repeats: u64,
}

impl Throttle {
    /// The line to print for this error now, if any.
    pub fn report(&mut self, error: &str, now: std::time::Instant) -> Option<String> {
        match &self.last {
            Some((seen, at)) if seen == error => {
                self.repeats += 1;
                if now.duration_since(*at) < REPEAT_EVERY {
                    return None;
                }
                let line = format!("{error} (again {} times)", self.repeats);
                self.last = Some((error.to_owned(), now));
                self.repeats = 0;
                Some(line)
            }
            _ => {
                self.last = Some((error.to_owned(), now));
                self.repeats = 0;
                Some(error.to_owned())
            }
        }
    }
}

fn audio_err(what: &str, e: impl std::fmt::Display) -> ClientError {
    let hint = if what.starts_with("microphone") {
        " (or send --tone HZ or --input FILE.wav instead)"
    } else if what.starts_with("speakers") {
        " (or write --output FILE.wav instead)"
    } else {
        ""
    };
    ClientError::Audio(format!("{what}: {e}{hint}"))
}

/// Picks the device `wanted` names among `devices` (name and id each): an exact name or id
/// first, else the one whose name or id contains it, ignoring case. None or several: an error
/// that lists the choices.
pub fn pick(devices: &[(String, String)], wanted: &str, what: &str) -> Result<usize, ClientError> {
    if let Some(i) = devices
        .iter()
        .position(|(name, id)| name == wanted || id == wanted)
    {
        return Ok(i);
    }
    let needle = wanted.to_lowercase();
    let matching: Vec<usize> = (0..devices.len())
        .filter(|&i| {
            let (name, id) = &devices[i];
            name.to_lowercase().contains(&needle) || id.to_lowercase().contains(&needle)
        })
        .collect();
    let list = |among: &mut dyn Iterator<Item = usize>| {
        among
            .map(|i| format!("\"{}\" ({})", devices[i].0, devices[i].1))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match matching.as_slice() {
        [one] => Ok(*one),
        [] if devices.is_empty() => Err(ClientError::AudioDevice(format!(
            "no {what} matches \"{wanted}\": there is none at all"
        ))),
        [] => Err(ClientError::AudioDevice(format!(
            "no {what} matches \"{wanted}\"; the {what}s are: {}",
            list(&mut (0..devices.len()))
        ))),
        several => Err(ClientError::AudioDevice(format!(
            "\"{wanted}\" matches {} {what}s: {}; name one of them whole",
            several.len(),
            list(&mut several.iter().copied())
        ))),
    }
}

fn host() -> cpal::Host {
    cpal::default_host()
}

fn names(devices: &[cpal::Device]) -> Vec<(String, String)> {
    devices
        .iter()
        .map(|d| {
            let name = d.to_string();
            let id = d
                .id()
                .map_or_else(|_| name.clone(), |id| id.id().to_owned());
            (name, id)
        })
        .collect()
}

fn format_of(device: &cpal::Device, config: &cpal::SupportedStreamConfig) -> Format {
    let (name, id) = names(std::slice::from_ref(device)).remove(0);
    Format {
        name,
        id,
        rate: config.sample_rate(),
        channels: config.channels(),
        sample_format: config.sample_format().to_string(),
    }
}

/// Runs `f` with standard error sent to /dev/null: ALSA prints a line for every plugin it
/// cannot open (JACK, OSS, cards that are not there) while devices are listed or opened, which
/// says nothing to a person and would run over the status line. Its real errors come back
/// through cpal as values.
fn quietly<T>(f: impl FnOnce() -> T) -> T {
    use std::os::fd::AsFd;
    let saved = rustix::io::dup(std::io::stderr().as_fd());
    let null = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::WRONLY,
        rustix::fs::Mode::empty(),
    );
    let (Ok(saved), Ok(null)) = (saved, null) else {
        return f();
    };
    if rustix::stdio::dup2_stderr(&null).is_err() {
        return f();
    }
    let out = f();
    let _ = rustix::stdio::dup2_stderr(&saved);
    out
}

/// Every input and output with its default format, defaults marked.
pub fn list() -> Result<Vec<Listed>, ClientError> {
    quietly(list_loudly)
}

fn list_loudly() -> Result<Vec<Listed>, ClientError> {
    let host = host();
    let mut out = Vec::new();
    let inputs: Vec<cpal::Device> = host
        .input_devices()
        .map_err(|e| audio_err("listing microphones", e))?
        .collect();
    let outputs: Vec<cpal::Device> = host
        .output_devices()
        .map_err(|e| audio_err("listing speakers", e))?
        .collect();
    let default_in = host.default_input_device().and_then(|d| d.id().ok());
    let default_out = host.default_output_device().and_then(|d| d.id().ok());
    for (direction, devices, default) in [
        ("input", inputs, default_in),
        ("output", outputs, default_out),
    ] {
        for d in devices {
            let config = if direction == "input" {
                d.default_input_config()
            } else {
                d.default_output_config()
            };
            // A device that cannot say its format cannot be opened either.
            let Ok(config) = config else { continue };
            out.push(Listed {
                direction,
                default: default.is_some() && d.id().ok() == default,
                format: format_of(&d, &config),
            });
        }
    }
    Ok(out)
}

/// The device `wanted` names, or the default.
fn choose(
    host: &cpal::Host,
    input: bool,
    wanted: Option<&str>,
) -> Result<cpal::Device, ClientError> {
    let what = if input { "microphone" } else { "speakers" };
    let Some(wanted) = wanted else {
        let device = if input {
            host.default_input_device()
        } else {
            host.default_output_device()
        };
        return device.ok_or_else(|| {
            ClientError::Audio(if input {
                "no microphone (no default input device); use --tone or --input".into()
            } else {
                "no speakers (no default output device); use --output".into()
            })
        });
    };
    let mut devices: Vec<cpal::Device> = if input {
        host.input_devices().map(Iterator::collect)
    } else {
        host.output_devices().map(Iterator::collect)
    }
    .map_err(|e| audio_err(what, e))?;
    let kind = if input {
        "input device"
    } else {
        "output device"
    };
    let i = pick(&names(&devices), wanted, kind)?;
    Ok(devices.swap_remove(i))
}

/// Opens the microphone and/or the speakers (`choice`, else the defaults) at their own rates,
/// with `processing` on the microphone.
pub fn open(
    want_input: bool,
    want_output: bool,
    choice: &Choice,
    processing: Processing,
) -> Result<Opened, ClientError> {
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), ClientError>>();
    let (frames_tx, frames_rx) = tokio::sync::mpsc::channel(FRAMES_WAITING);
    let speakers: Option<SampleQueue> = want_output.then(Default::default);
    let report: Report = Arc::new(Mutex::new(AudioReport {
        processing,
        ..AudioReport::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (choice, speakers, report, stop) = (
            choice.clone(),
            speakers.clone(),
            Arc::clone(&report),
            Arc::clone(&stop),
        );
        std::thread::Builder::new()
            .name("sotto-audio".into())
            .spawn(move || {
                let io = DeviceThread {
                    want_input,
                    want_output,
                    choice,
                    processing,
                    frames: frames_tx,
                    playback: speakers,
                    report,
                    stop,
                };
                io.run(&ready_tx);
            })
            .map_err(|e| audio_err("audio thread", e))?
    };
    let devices = Devices {
        stop,
        thread: Some(thread),
    };
    ready_rx
        .recv()
        .map_err(|e| audio_err("audio thread", e))??;
    Ok(Opened {
        microphone: want_input.then(|| Microphone(frames_rx)),
        speakers,
        report,
        devices,
    })
}

/// What the callbacks share with the audio thread besides the rings.
#[derive(Default)]
struct Counts {
    overruns: AtomicU64,
    underruns: AtomicU64,
    /// The most the speakers asked for in one callback.
    largest_request: AtomicUsize,
}

struct DeviceThread {
    want_input: bool,
    want_output: bool,
    choice: Choice,
    processing: Processing,
    frames: tokio::sync::mpsc::Sender<[i16; FRAME]>,
    playback: Option<SampleQueue>,
    report: Report,
    stop: Arc<AtomicBool>,
}

/// A ring's consumer end the audio thread reads, and the other end's counterpart.
struct Rings {
    mic: Option<rtrb::Consumer<f32>>,
    speakers: Option<rtrb::Producer<f32>>,
}

impl DeviceThread {
    fn run(self, ready: &mpsc::Sender<Result<(), ClientError>>) {
        let counts = Arc::new(Counts::default());
        let opened = quietly(|| self.open_streams(&counts));
        let (streams, rings, engine) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        self.pump(rings, engine, &counts);
        drop(streams);
    }

    #[allow(clippy::type_complexity)]
    fn open_streams(
        &self,
        counts: &Arc<Counts>,
    ) -> Result<(Vec<cpal::Stream>, Rings, Engine), ClientError> {
        let host = host();
        let me = std::thread::current();
        let mut streams = Vec::new();
        let mut rings = Rings {
            mic: None,
            speakers: None,
        };
        let (mut input, mut output) = (None, None);
        if self.want_input {
            let device = choose(&host, true, self.choice.input.as_deref())?;
            let config = device
                .default_input_config()
                .map_err(|e| audio_err("microphone", e))?;
            let (producer, consumer) =
                rtrb::RingBuffer::new(config.sample_rate() as usize * RING_MS / 1000);
            streams.push(input_stream(
                &device,
                &config,
                producer,
                me.clone(),
                counts,
            )?);
            rings.mic = Some(consumer);
            input = Some(format_of(&device, &config));
        }
        if self.want_output {
            let device = choose(&host, false, self.choice.output.as_deref())?;
            let config = device
                .default_output_config()
                .map_err(|e| audio_err("speakers", e))?;
            let (producer, consumer) =
                rtrb::RingBuffer::new(config.sample_rate() as usize * RING_MS / 1000);
            streams.push(output_stream(
                &device,
                &config,
                consumer,
                me.clone(),
                counts,
            )?);
            rings.speakers = Some(producer);
            output = Some(format_of(&device, &config));
        }
        let engine = Engine::new(
            self.processing,
            input.as_ref().map(|f| f.rate),
            output.as_ref().map(|f| f.rate),
        )?;
        // The speakers start with their target of silence queued: the first request finds
        // something, and drift correction starts from where it aims.
        if let Some(p) = rings.speakers.as_mut() {
            for _ in 0..engine.target().min(p.slots()) {
                let _ = p.push(0.0);
            }
        }
        for stream in &streams {
            stream
                .play()
                .map_err(|e| audio_err("starting the device", e))?;
        }
        if let Ok(mut r) = self.report.lock() {
            r.input = input;
            r.output = output;
        }
        Ok((streams, rings, engine))
    }

    /// The audio thread's loop: woken by the callbacks, it runs the engine's due steps.
    fn pump(&self, mut rings: Rings, mut engine: Engine, counts: &Counts) {
        let mut recorded: Vec<f32> = Vec::new();
        let mut sent = Vec::new();
        let mut speakers = Vec::new();
        let mut reported = std::time::Instant::now();
        let mut frames_dropped = 0u64;
        while !self.stop.load(Ordering::Acquire) {
            std::thread::park_timeout(Duration::from_millis(10));
            if let Some(mic) = rings.mic.as_mut() {
                recorded.clear();
                while let Ok(s) = mic.pop() {
                    recorded.push(s);
                }
                engine.microphone(&recorded);
            }
            engine.device_asks(counts.largest_request.load(Ordering::Relaxed));
            let queued = rings
                .speakers
                .as_ref()
                .map_or(0, |p| p.buffer().capacity() - p.slots());
            let playback = self.playback.as_ref();
            engine.run(
                queued,
                &mut |frame| match playback {
                    Some(q) => take(q, frame),
                    None => frame.fill(0),
                },
                &mut sent,
                &mut speakers,
            );
            for frame in sent.drain(..) {
                if self.frames.try_send(frame).is_err() {
                    frames_dropped += 1;
                }
            }
            if let Some(p) = rings.speakers.as_mut() {
                for &s in &speakers {
                    if p.push(s).is_err() {
                        counts.overruns.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            speakers.clear();
            // Ten times a second is plenty for a status line.
            if reported.elapsed() >= Duration::from_millis(100) {
                reported = std::time::Instant::now();
                if let Ok(mut r) = self.report.lock() {
                    r.engine = engine.report();
                    r.overruns = counts.overruns.load(Ordering::Relaxed) + frames_dropped;
                    r.underruns = counts.underruns.load(Ordering::Relaxed);
                }
            }
        }
    }
}

/// A device's trouble, on a line of its own: on a terminal the status line is cleared first
/// (it is drawn again with the next event), so the two never run into each other.
fn report_error(device: &str, line: &str) {
    use std::io::IsTerminal;
    let clear = if std::io::stderr().is_terminal() {
        "\r\x1b[2K"
    } else {
        ""
    };
    eprintln!("{clear}sotto: {device}: {line}");
}

fn on_error(device: &'static str) -> impl FnMut(cpal::Error) + Send + 'static {
    let mut throttle = Throttle::default();
    move |e: cpal::Error| {
        if let Some(line) = throttle.report(&e.to_string(), std::time::Instant::now()) {
            report_error(device, &line);
        }
    }
}

/// The device's buffer, in milliseconds of its rate: the callbacks' period. A server's default
/// can be seconds (PulseAudio's is 2 s), far too late for a conversation and for an echo
/// canceller; 20 ms is what a call can afford and a loaded machine can keep up with.
const PERIOD_MS: u32 = 20;

fn stream_config(config: &cpal::SupportedStreamConfig) -> StreamConfig {
    let period = config.sample_rate() * PERIOD_MS / 1000;
    let buffer_size = match *config.buffer_size() {
        cpal::SupportedBufferSize::Range { min, max } if (min..=max).contains(&period) => {
            cpal::BufferSize::Fixed(period)
        }
        _ => cpal::BufferSize::Default,
    };
    StreamConfig {
        channels: config.channels().max(1),
        sample_rate: config.sample_rate(),
        buffer_size,
    }
}

fn input_stream(
    device: &cpal::Device,
    config: &cpal::SupportedStreamConfig,
    ring: rtrb::Producer<f32>,
    wake: std::thread::Thread,
    counts: &Arc<Counts>,
) -> Result<cpal::Stream, ClientError> {
    match config.sample_format() {
        SampleFormat::I16 => build_input::<i16>(device, config, ring, wake, counts),
        SampleFormat::I32 => build_input::<i32>(device, config, ring, wake, counts),
        SampleFormat::U8 => build_input::<u8>(device, config, ring, wake, counts),
        _ => build_input::<f32>(device, config, ring, wake, counts),
    }
}

fn build_input<T: SizedSample + Send + 'static>(
    device: &cpal::Device,
    config: &cpal::SupportedStreamConfig,
    mut ring: rtrb::Producer<f32>,
    wake: std::thread::Thread,
    counts: &Arc<Counts>,
) -> Result<cpal::Stream, ClientError>
where
    f32: FromSample<T>,
{
    let config = stream_config(config);
    let n = usize::from(config.channels);
    let counts = Arc::clone(counts);
    device
        .build_input_stream::<T, _, _>(
            config,
            move |data: &[T], _| {
                // Mixed to mono, no allocation: straight into the ring.
                for frame in data.chunks(n) {
                    let mono = frame.iter().map(|s| s.to_sample::<f32>()).sum::<f32>() / n as f32;
                    if ring.push(mono).is_err() {
                        counts.overruns.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
                wake.unpark();
            },
            on_error("microphone"),
            None,
        )
        .map_err(|e| audio_err("microphone", e))
}

fn output_stream(
    device: &cpal::Device,
    config: &cpal::SupportedStreamConfig,
    ring: rtrb::Consumer<f32>,
    wake: std::thread::Thread,
    counts: &Arc<Counts>,
) -> Result<cpal::Stream, ClientError> {
    match config.sample_format() {
        SampleFormat::I16 => build_output::<i16>(device, config, ring, wake, counts),
        SampleFormat::I32 => build_output::<i32>(device, config, ring, wake, counts),
        SampleFormat::U8 => build_output::<u8>(device, config, ring, wake, counts),
        _ => build_output::<f32>(device, config, ring, wake, counts),
    }
}

fn build_output<T: SizedSample + FromSample<f32> + Send + 'static>(
    device: &cpal::Device,
    config: &cpal::SupportedStreamConfig,
    mut ring: rtrb::Consumer<f32>,
    wake: std::thread::Thread,
    counts: &Arc<Counts>,
) -> Result<cpal::Stream, ClientError> {
    let config = stream_config(config);
    let n = usize::from(config.channels);
    let counts = Arc::clone(counts);
    device
        .build_output_stream::<T, _, _>(
            config,
            move |data: &mut [T], _| {
                counts
                    .largest_request
                    .fetch_max(data.len() / n, Ordering::Relaxed);
                let mut short = false;
                for frame in data.chunks_mut(n) {
                    let s = ring.pop().unwrap_or_else(|_| {
                        short = true;
                        0.0
                    });
                    frame.fill(T::from_sample(s));
                }
                if short {
                    counts.underruns.fetch_add(1, Ordering::Relaxed);
                }
                wake.unpark();
            },
            on_error("speakers"),
            None,
        )
        .map_err(|e| audio_err("speakers", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_flood_of_the_same_device_error_prints_one_line_every_ten_seconds() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        let printed: Vec<String> = (0..300u64)
            // 218 errors in 3 s, as a failing ALSA device gave, then more for 8 s.
            .filter_map(|i| t.report("broken pipe", t0 + Duration::from_millis(i * 37)))
            .collect();
        assert_eq!(printed, ["broken pipe", "broken pipe (again 271 times)"]);
        // Another error is printed at once.
        assert_eq!(
            t.report("device unplugged", t0 + Duration::from_secs(12)),
            Some("device unplugged".to_owned())
        );
    }

    fn devices() -> Vec<(String, String)> {
        [
            (
                "Built-in Audio Analog Stereo",
                "alsa_output.pci-0000_00_1f.3.analog-stereo",
            ),
            (
                "USB Headset",
                "alsa_output.usb-Logitech_Headset-00.analog-stereo",
            ),
            (
                "Monitor of USB Headset",
                "alsa_output.usb-Logitech_Headset-00.monitor",
            ),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .to_vec()
    }

    #[test]
    fn a_device_is_picked_by_exact_name_then_by_unique_substring_ignoring_case() {
        let d = devices();
        assert_eq!(pick(&d, "USB Headset", "output device"), Ok(1));
        assert_eq!(
            pick(&d, "alsa_output.usb-Logitech_Headset-00.monitor", "x"),
            Ok(2)
        );
        assert_eq!(pick(&d, "built-in", "output device"), Ok(0));
        assert_eq!(pick(&d, "MONITOR", "output device"), Ok(2));
    }

    #[test]
    fn no_match_or_several_is_an_error_that_lists_the_choices() {
        let d = devices();
        let Err(ClientError::AudioDevice(none)) = pick(&d, "bluetooth", "output device") else {
            panic!("no device matches")
        };
        assert!(
            none.contains("no output device matches \"bluetooth\"")
                && none.contains("\"Built-in Audio Analog Stereo\"")
                && none.contains("\"Monitor of USB Headset\""),
            "{none}"
        );
        let Err(ClientError::AudioDevice(several)) = pick(&d, "headset", "output device") else {
            panic!("two devices match")
        };
        assert!(
            several.starts_with("\"headset\" matches 2 output devices")
                && several.contains("\"USB Headset\"")
                && !several.contains("Built-in"),
            "{several}"
        );
        assert!(matches!(
            pick(&[], "x", "input device"),
            Err(ClientError::AudioDevice(_))
        ));
    }
}
