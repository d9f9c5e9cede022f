//! The default microphone and speakers, through cpal. cpal's streams cannot move between
//! threads, so one thread owns them for the call; samples cross through two bounded queues.
//! A machine without a sound card gets a clear error when the streams are built, not a panic.

use crate::ClientError;
use crate::audio::RATE;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{SampleFormat, StreamConfig};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError, mpsc};

/// Samples each queue holds at most (200 ms): past it the oldest go, so a clock drift between
/// the device and the network never builds up latency or memory.
const MAX_QUEUED: usize = (RATE as usize) / 5;

/// A queue of mono 48 kHz samples shared with a device callback.
pub type SampleQueue = Arc<Mutex<VecDeque<i16>>>;

fn push_bounded(queue: &SampleQueue, samples: impl IntoIterator<Item = i16>) {
    let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
    q.extend(samples);
    let excess = q.len().saturating_sub(MAX_QUEUED);
    q.drain(..excess);
}

/// Takes `n` samples from a queue, padding with silence when it runs short.
pub fn take(queue: &SampleQueue, out: &mut [i16]) {
    let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
    for s in out.iter_mut() {
        *s = q.pop_front().unwrap_or(0);
    }
}

/// Appends samples to a queue (the speaker side).
pub fn give(queue: &SampleQueue, pcm: &[i16]) {
    push_bounded(queue, pcm.iter().copied());
}

/// How often a device error that keeps coming back is printed again.
const REPEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

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

/// Keeps the device streams running; dropping it stops them.
#[derive(Debug)]
pub struct Devices {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Devices {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
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

/// Opens the default input and/or output device at 48 kHz. Returns the queues the call reads
/// the microphone from and writes the speakers to.
pub fn open(
    want_input: bool,
    want_output: bool,
) -> Result<(Option<SampleQueue>, Option<SampleQueue>, Devices), ClientError> {
    let mic: Option<SampleQueue> = want_input.then(Default::default);
    let speaker: Option<SampleQueue> = want_output.then(Default::default);
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), ClientError>>();
    let (stop, stopped) = mpsc::channel::<()>();
    let (m, s) = (mic.clone(), speaker.clone());
    let thread = std::thread::Builder::new()
        .name("sotto-audio".into())
        .spawn(move || {
            let streams = (|| -> Result<Vec<cpal::Stream>, ClientError> {
                let host = cpal::default_host();
                let mut streams = Vec::new();
                if let Some(queue) = m {
                    let device = host.default_input_device().ok_or_else(|| {
                        ClientError::Audio(
                            "no microphone (no default input device); use --tone or --input".into(),
                        )
                    })?;
                    streams.push(input_stream(&device, queue)?);
                }
                if let Some(queue) = s {
                    let device = host.default_output_device().ok_or_else(|| {
                        ClientError::Audio(
                            "no speakers (no default output device); use --output".into(),
                        )
                    })?;
                    streams.push(output_stream(&device, queue)?);
                }
                for stream in &streams {
                    stream
                        .play()
                        .map_err(|e| audio_err("starting the device", e))?;
                }
                Ok(streams)
            })();
            match streams {
                Ok(streams) => {
                    let _ = ready_tx.send(Ok(()));
                    // Hold the streams until the call drops its `Devices`.
                    let _ = stopped.recv();
                    drop(streams);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })
        .map_err(|e| audio_err("audio thread", e))?;
    let devices = Devices {
        stop: Some(stop),
        thread: Some(thread),
    };
    ready_rx
        .recv()
        .map_err(|e| audio_err("audio thread", e))??;
    Ok((mic, speaker, devices))
}

/// A device's trouble, on a line of its own: on a terminal the status line is cleared first
/// (it is drawn again with the next event), so the two never run into each other.
fn report(device: &str, line: &str) {
    use std::io::IsTerminal;
    let clear = if std::io::stderr().is_terminal() {
        "\r\x1b[2K"
    } else {
        ""
    };
    eprintln!("{clear}sotto: {device}: {line}");
}

fn config(channels: u16) -> StreamConfig {
    StreamConfig {
        channels,
        sample_rate: RATE,
        buffer_size: cpal::BufferSize::Default,
    }
}

fn input_stream(device: &cpal::Device, queue: SampleQueue) -> Result<cpal::Stream, ClientError> {
    let default = device
        .default_input_config()
        .map_err(|e| audio_err("microphone", e))?;
    let channels = default.channels().max(1);
    let n = usize::from(channels);
    let mut throttle = Throttle::default();
    let on_error = move |e: cpal::Error| {
        if let Some(line) = throttle.report(&e.to_string(), std::time::Instant::now()) {
            report("microphone", &line);
        }
    };
    let stream = match default.sample_format() {
        SampleFormat::F32 => device.build_input_stream::<f32, _, _>(
            config(channels),
            move |data, _| {
                push_bounded(
                    &queue,
                    data.chunks(n).map(|f| {
                        let mono = f.iter().sum::<f32>() / n as f32;
                        (mono.clamp(-1.0, 1.0) * f32::from(i16::MAX)) as i16
                    }),
                )
            },
            on_error,
            None,
        ),
        _ => device.build_input_stream::<i16, _, _>(
            config(channels),
            move |data, _| {
                push_bounded(
                    &queue,
                    data.chunks(n)
                        .map(|f| (f.iter().map(|&s| i32::from(s)).sum::<i32>() / n as i32) as i16),
                )
            },
            on_error,
            None,
        ),
    };
    stream.map_err(|e| audio_err("microphone at 48 kHz", e))
}

fn output_stream(device: &cpal::Device, queue: SampleQueue) -> Result<cpal::Stream, ClientError> {
    let default = device
        .default_output_config()
        .map_err(|e| audio_err("speakers", e))?;
    let channels = default.channels().max(1);
    let n = usize::from(channels);
    let mut throttle = Throttle::default();
    let on_error = move |e: cpal::Error| {
        if let Some(line) = throttle.report(&e.to_string(), std::time::Instant::now()) {
            report("speakers", &line);
        }
    };
    let stream = match default.sample_format() {
        SampleFormat::F32 => device.build_output_stream::<f32, _, _>(
            config(channels),
            move |data: &mut [f32], _| {
                let mut mono = vec![0i16; data.len() / n];
                take(&queue, &mut mono);
                for (frame, s) in data.chunks_mut(n).zip(mono) {
                    frame.fill(f32::from(s) / 32768.0);
                }
            },
            on_error,
            None,
        ),
        _ => device.build_output_stream::<i16, _, _>(
            config(channels),
            move |data: &mut [i16], _| {
                let mut mono = vec![0i16; data.len() / n];
                take(&queue, &mut mono);
                for (frame, s) in data.chunks_mut(n).zip(mono) {
                    frame.fill(s);
                }
            },
            on_error,
            None,
        ),
    };
    stream.map_err(|e| audio_err("speakers at 48 kHz", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

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
}
