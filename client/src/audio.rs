//! Audio: sources (a test tone, a WAV file, the microphone), sinks (a WAV file, memory, the
//! speakers) and Opus encoding; `playout` is the receive side. Everything is 48 kHz mono,
//! 20 ms frames.

use crate::ClientError;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Samples per second.
pub const RATE: u32 = 48_000;
/// Samples per 20 ms frame.
pub const FRAME: usize = 960;
/// One frame's duration, ms.
const FRAME_MS: u128 = 20;
/// How late the call's own clock may be taken before the time is given up (see
/// [`Source::next_due`]): more than a scheduler's hiccup, less than people notice.
pub const MAX_LATE: std::time::Duration = std::time::Duration::from_millis(100);

/// The next 20 ms to send, and how many frames' time before them the machine was too busy for.
#[derive(Debug, Clone, Copy)]
pub struct Due {
    /// The samples.
    pub frame: [i16; FRAME],
    /// Frames' time lost before this one (nothing was sent or played for it).
    pub missed: u64,
}
/// The largest Opus packet we produce or accept.
const MAX_PACKET: usize = 1500;

/// Where the microphone's samples come from.
pub enum Source {
    /// A sine at this frequency, at half scale.
    Tone {
        /// Hz.
        freq: f64,
        /// Phase of the next sample, in radians.
        phase: f64,
    },
    /// A WAV file (48 kHz, mono, 16-bit), then silence.
    Wav(hound::WavIntoSamples<std::io::BufReader<std::fs::File>, i16>),
    /// The microphone (see `devices`): processed, and its clock is the call's.
    Device(crate::devices::Microphone),
    /// Silence.
    Silence,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tone { freq, .. } => write!(f, "Tone({freq} Hz)"),
            Self::Wav(_) => f.write_str("Wav"),
            Self::Device(_) => f.write_str("Device"),
            Self::Silence => f.write_str("Silence"),
        }
    }
}

impl Source {
    /// A tone of `freq` Hz.
    pub fn tone(freq: f64) -> Self {
        Self::Tone { freq, phase: 0.0 }
    }

    /// A WAV file; it must be 48 kHz mono 16-bit PCM.
    pub fn wav(path: &Path) -> Result<Self, ClientError> {
        let reader = hound::WavReader::open(path)
            .map_err(|e| ClientError::Audio(format!("{}: {e}", path.display())))?;
        let spec = reader.spec();
        if spec.sample_rate != RATE
            || spec.channels != 1
            || spec.bits_per_sample != 16
            || spec.sample_format != hound::SampleFormat::Int
        {
            return Err(ClientError::Audio(format!(
                "{}: needs 48000 Hz mono 16-bit PCM (has {} Hz, {} channels, {} bits)",
                path.display(),
                spec.sample_rate,
                spec.channels,
                spec.bits_per_sample
            )));
        }
        Ok(Self::Wav(reader.into_samples()))
    }

    /// Waits until the next 20 ms are due and returns them: the microphone's as soon as it
    /// has recorded them (its clock drives the call, so none pile up and none run short),
    /// the others' on the call's own `tick`. `None`: the microphone stopped.
    ///
    /// A tick taken late (the call's loop was busy) is still taken, up to [`MAX_LATE`]; a
    /// machine too busy for longer has missed that time: the tick starts again from now and
    /// [`Due::missed`] says how many frames' time was lost, so that the call never falls
    /// behind the clock (a loop that could not keep up would otherwise send and play ever
    /// older sound).
    pub async fn next_due(&mut self, tick: &mut tokio::time::Interval) -> Option<Due> {
        if let Self::Device(microphone) = self {
            return microphone
                .recv()
                .await
                .map(|frame| Due { frame, missed: 0 });
        }
        let late = tick.tick().await.elapsed();
        let mut missed = 0;
        if late > MAX_LATE {
            tick.reset();
            missed = (late.as_millis() / FRAME_MS) as u64;
        }
        Some(Due {
            frame: self.next_frame(),
            missed,
        })
    }

    /// The next 20 ms of a tone, a file or silence (a microphone's come through
    /// [`Source::next_due`]).
    pub fn next_frame(&mut self) -> [i16; FRAME] {
        let mut out = [0i16; FRAME];
        match self {
            Self::Tone { freq, phase } => {
                let step = 2.0 * std::f64::consts::PI * *freq / f64::from(RATE);
                for s in &mut out {
                    *s = (phase.sin() * 0.5 * f64::from(i16::MAX)) as i16;
                    *phase = (*phase + step) % (2.0 * std::f64::consts::PI);
                }
            }
            Self::Wav(samples) => {
                for s in &mut out {
                    *s = samples.next().and_then(Result::ok).unwrap_or(0);
                }
            }
            Self::Device(_) | Self::Silence => {}
        }
        out
    }
}

/// Where the peer's decoded audio goes.
#[derive(Clone)]
pub enum Sink {
    /// A WAV file written as the call goes (48 kHz mono 16-bit).
    Wav(Arc<Mutex<Option<hound::WavWriter<std::io::BufWriter<std::fs::File>>>>>),
    /// Memory, for tests and analysis.
    Memory(Arc<Mutex<Vec<i16>>>),
    /// The speakers (see `devices`).
    Device(crate::devices::SampleQueue),
    /// Nowhere.
    Discard,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Wav(_) => "Sink::Wav",
            Self::Memory(_) => "Sink::Memory",
            Self::Device(_) => "Sink::Device",
            Self::Discard => "Sink::Discard",
        })
    }
}

impl Sink {
    /// A WAV file at `path`.
    pub fn wav(path: &Path) -> Result<Self, ClientError> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(path, spec)
            .map_err(|e| ClientError::Audio(format!("{}: {e}", path.display())))?;
        Ok(Self::Wav(Arc::new(Mutex::new(Some(writer)))))
    }

    /// Appends samples.
    pub fn write(&self, pcm: &[i16]) -> Result<(), ClientError> {
        match self {
            Self::Wav(w) => {
                let mut guard = w.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(writer) = guard.as_mut() {
                    for &s in pcm {
                        writer
                            .write_sample(s)
                            .map_err(|e| ClientError::Audio(e.to_string()))?;
                    }
                }
            }
            Self::Memory(m) => m
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(pcm),
            Self::Device(queue) => crate::devices::give(queue, pcm),
            Self::Discard => {}
        }
        Ok(())
    }

    /// Keeps a recording in step with the clock over `frames` frames' time the call could not
    /// play (a busy machine): silence in a file or memory; nothing for the speakers, whose own
    /// clock goes on.
    pub fn skip(&self, frames: u64) -> Result<(), ClientError> {
        if matches!(self, Self::Wav(_) | Self::Memory(_)) {
            for _ in 0..frames {
                self.write(&[0; FRAME])?;
            }
        }
        Ok(())
    }

    /// Finishes a WAV file (writes its header's lengths).
    pub fn finish(&self) -> Result<(), ClientError> {
        if let Self::Wav(w) = self
            && let Some(writer) = w
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
        {
            writer
                .finalize()
                .map_err(|e| ClientError::Audio(e.to_string()))?;
        }
        Ok(())
    }
}

/// `seconds` of a deterministic stand-in for someone talking, for measuring what the sound
/// path does to speech (the echo canceller's tests and benchmarks): noise shaped by a
/// syllable rhythm of about four a second, low-passed, silent one second in three, at about
/// -20 dBFS while talking.
pub fn speech_like(seconds: usize) -> Vec<i16> {
    let mut state = 0x2545_f491_u32;
    let mut lp = 0f32;
    (0..seconds * RATE as usize)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = (state as f32 / u32::MAX as f32) * 2.0 - 1.0;
            lp += 0.25 * (noise - lp);
            let t = i as f32 / RATE as f32;
            let syllable = (t * 4.0 * std::f32::consts::PI).sin().max(0.0);
            let talking = if (t as usize) % 3 == 2 { 0.0 } else { 1.0 };
            (lp * syllable * talking * 0.3 * 32767.0) as i16
        })
        .collect()
}

/// Opus encoding of the microphone, with in-band FEC on.
pub struct Encoder(opus::Encoder);

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Encoder(opus)")
    }
}

impl Encoder {
    /// A 48 kHz mono VoIP encoder with FEC for 10% loss.
    pub fn new() -> Result<Self, ClientError> {
        let audio = |e: opus::Error| ClientError::Audio(format!("opus: {e}"));
        let mut enc = opus::Encoder::new(RATE, opus::Channels::Mono, opus::Application::Voip)
            .map_err(audio)?;
        enc.set_inband_fec(true).map_err(audio)?;
        enc.set_packet_loss_perc(10).map_err(audio)?;
        Ok(Self(enc))
    }

    /// One 20 ms frame to one Opus packet.
    pub fn encode(&mut self, pcm: &[i16; FRAME]) -> Result<Vec<u8>, ClientError> {
        self.0
            .encode_vec(pcm, MAX_PACKET)
            .map_err(|e| ClientError::Audio(format!("opus: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::{Duration, Instant, MissedTickBehavior, advance, interval};

    #[tokio::test(start_paused = true)]
    async fn a_loop_too_busy_for_the_clock_gives_the_lost_time_up_instead_of_falling_behind() {
        let mut tick = interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut source = Source::tone(440.0);
        let start = Instant::now();
        assert_eq!(source.next_due(&mut tick).await.unwrap().missed, 0);
        // Busy for 60 ms: the three ticks it was late for are taken at once, none lost.
        advance(Duration::from_millis(60)).await;
        for _ in 0..3 {
            assert_eq!(source.next_due(&mut tick).await.unwrap().missed, 0);
        }
        assert_eq!(start.elapsed(), Duration::from_millis(60));
        // Busy for half a second: the tick due at 80 ms comes 480 ms late; that time is given
        // up (24 frames) and the clock starts again from now.
        advance(Duration::from_millis(500)).await;
        assert_eq!(source.next_due(&mut tick).await.unwrap().missed, 24);
        assert_eq!(start.elapsed(), Duration::from_millis(560));
        assert_eq!(source.next_due(&mut tick).await.unwrap().missed, 0);
        assert_eq!(start.elapsed(), Duration::from_millis(580));
    }

    #[test]
    fn a_recording_keeps_time_with_silence_over_what_the_call_could_not_play() {
        let memory = Sink::Memory(Arc::default());
        memory.skip(3).unwrap();
        let Sink::Memory(samples) = &memory else {
            unreachable!()
        };
        assert_eq!(samples.lock().unwrap().len(), 3 * FRAME);
        assert!(samples.lock().unwrap().iter().all(|&s| s == 0));
    }

    #[test]
    fn a_wav_file_that_is_not_48_khz_mono_16_bit_is_refused_with_its_format() {
        let path = std::env::temp_dir().join(format!("sotto-wav-{}.wav", std::process::id()));
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 44_100,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        w.write_sample(0i16).unwrap();
        w.write_sample(0i16).unwrap();
        w.finalize().unwrap();
        let err = Source::wav(&path).unwrap_err().to_string();
        assert!(
            err.contains("needs 48000 Hz mono 16-bit") && err.contains("44100 Hz, 2 channels"),
            "{err}"
        );
        assert!(Source::wav(Path::new("/nonexistent.wav")).is_err());
        std::fs::remove_file(path).unwrap();
    }
}
