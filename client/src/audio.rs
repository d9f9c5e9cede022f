//! Audio: sources (a test tone, a WAV file), sinks (a WAV file, memory), Opus encoding, and the
//! receive side's ordering and concealment. Everything is 48 kHz mono, 20 ms frames.

use crate::ClientError;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Samples per second.
pub const RATE: u32 = 48_000;
/// Samples per 20 ms frame.
pub const FRAME: usize = 960;
/// The largest Opus packet we produce or accept.
const MAX_PACKET: usize = 1500;
/// Samples in the longest Opus frame (120 ms), the decoder's output buffer.
const MAX_DECODED: usize = 5760;

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
    /// The microphone (see `devices`).
    Device(crate::devices::SampleQueue),
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

    /// The next 20 ms.
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
            Self::Device(queue) => crate::devices::take(queue, &mut out),
            Self::Silence => {}
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

/// What to play next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// This frame.
    Frame(Vec<u8>),
    /// The frame at this position never came: conceal it.
    Lost,
}

/// Orders authenticated frames by their position (the SFrame counter, one more per frame),
/// sans-IO. Frames in order pass straight through; a missing frame is waited for while fewer
/// than `depth` later frames are queued, then given up as lost. Late frames (behind what was
/// already played) and duplicates are dropped.
#[derive(Debug)]
pub struct JitterBuffer {
    depth: usize,
    next: Option<u64>,
    pending: std::collections::BTreeMap<u64, Vec<u8>>,
    /// Frames dropped because they came after their turn, or twice.
    pub late: u64,
}

/// A gap this long means the sender restarted or stalled: playback resumes at the new frame
/// instead of concealing the whole gap.
const RESYNC_GAP: u64 = 50;

impl JitterBuffer {
    /// A buffer that waits for a missing frame while fewer than `depth` later ones are queued.
    pub fn new(depth: usize) -> Self {
        Self {
            depth: depth.max(1),
            next: None,
            pending: std::collections::BTreeMap::new(),
            late: 0,
        }
    }

    /// Queues the frame at `pos`.
    pub fn push(&mut self, pos: u64, frame: Vec<u8>) {
        let next = *self.next.get_or_insert(pos);
        if pos < next || self.pending.contains_key(&pos) {
            self.late += 1;
            return;
        }
        self.pending.insert(pos, frame);
        // Bounded: far more frames than the depth means the head will never come.
        while self.pending.len() > 4 * self.depth {
            self.pending.pop_first();
            self.late += 1;
        }
    }

    /// The next thing to play, if it is known yet.
    pub fn pop(&mut self) -> Option<Next> {
        let next = self.next?;
        let (&head, _) = self.pending.first_key_value()?;
        if head == next {
            self.next = Some(next + 1);
            return self.pending.pop_first().map(|(_, f)| Next::Frame(f));
        }
        if head - next > RESYNC_GAP {
            self.next = Some(head);
            return self.pop();
        }
        if self.pending.len() >= self.depth {
            self.next = Some(next + 1);
            return Some(Next::Lost);
        }
        None
    }

    /// The frame after the one about to be concealed, if it is here (for Opus FEC).
    pub fn peek_next(&self) -> Option<&[u8]> {
        let next = self.next?;
        self.pending.get(&next).map(Vec::as_slice)
    }
}

/// The receive side: authenticated Opus frames in, PCM out, in order, with gaps concealed:
/// from the next frame's forward error correction data when it is here, by Opus' packet loss
/// concealment otherwise.
pub struct Playout {
    decoder: opus::Decoder,
    jitter: JitterBuffer,
    /// Frames concealed.
    pub concealed: u64,
    /// Frames decoded.
    pub decoded: u64,
}

impl std::fmt::Debug for Playout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Playout(decoded {}, concealed {})",
            self.decoded, self.concealed
        )
    }
}

/// Frames a missing one is waited for (60 ms at 20 ms a frame).
const JITTER_DEPTH: usize = 3;

impl Playout {
    /// A playout for 48 kHz mono.
    pub fn new() -> Result<Self, ClientError> {
        let decoder = opus::Decoder::new(RATE, opus::Channels::Mono)
            .map_err(|e| ClientError::Audio(format!("opus: {e}")))?;
        Ok(Self {
            decoder,
            jitter: JitterBuffer::new(JITTER_DEPTH),
            concealed: 0,
            decoded: 0,
        })
    }

    /// Frames dropped as late or duplicate.
    pub fn late(&self) -> u64 {
        self.jitter.late
    }

    /// Handles the authenticated frame at position `pos`; returns the PCM now ready to play.
    pub fn push(&mut self, pos: u64, opus: Vec<u8>) -> Vec<i16> {
        self.jitter.push(pos, opus);
        let mut pcm = Vec::new();
        let mut buf = vec![0i16; MAX_DECODED];
        while let Some(next) = self.jitter.pop() {
            match next {
                Next::Frame(frame) => {
                    if let Ok(n) = self.decoder.decode(&frame, &mut buf, false) {
                        pcm.extend_from_slice(&buf[..n]);
                        self.decoded += 1;
                    }
                }
                Next::Lost => {
                    let fec = self.jitter.peek_next().map(<[u8]>::to_vec);
                    let (data, use_fec) = match &fec {
                        Some(f) => (f.as_slice(), true),
                        None => (&[][..], false),
                    };
                    if let Ok(n) = self.decoder.decode(data, &mut buf[..FRAME], use_fec) {
                        pcm.extend_from_slice(&buf[..n]);
                    }
                    self.concealed += 1;
                }
            }
        }
        pcm
    }
}

/// What a call plays: everyone's decoded audio, summed into one stream. Each person's PCM is
/// queued as it is decoded; every 20 ms one frame of each queue is summed (a person with
/// nothing queued adds silence), and a frame whose sum would pass full scale is scaled down as
/// a whole instead of clipped. With one person their audio passes through unchanged.
#[derive(Debug)]
pub struct Mixer<K> {
    queues: std::collections::BTreeMap<K, std::collections::VecDeque<i16>>,
}

/// A person's queue holds at most this much (200 ms); older samples give way to newer ones.
const MIX_BACKLOG: usize = 10 * FRAME;
/// Beyond this much queued (60 ms), a tick plays two frames to catch up.
const MIX_CATCH_UP: usize = 3 * FRAME;

impl<K: Ord + Clone> Default for Mixer<K> {
    fn default() -> Self {
        Self {
            queues: std::collections::BTreeMap::new(),
        }
    }
}

impl<K: Ord + Clone> Mixer<K> {
    /// Decoded samples from `who`.
    pub fn push(&mut self, who: &K, pcm: &[i16]) {
        let q = self.queues.entry(who.clone()).or_default();
        q.extend(pcm);
        let excess = q.len().saturating_sub(MIX_BACKLOG);
        q.drain(..excess);
    }

    /// `who` is gone: what they still had queued is dropped.
    pub fn remove(&mut self, who: &K) {
        self.queues.remove(who);
    }

    /// The next 20 ms (or 40 ms, when someone is far ahead) of everyone summed; empty when no
    /// one has anything queued.
    pub fn tick(&mut self) -> Vec<i16> {
        let frames = if self.queues.values().any(|q| q.len() > MIX_CATCH_UP) {
            2
        } else {
            1
        };
        let mut out = Vec::new();
        for _ in 0..frames {
            if self
                .queues
                .values()
                .all(std::collections::VecDeque::is_empty)
            {
                break;
            }
            let mut sum = [0i32; FRAME];
            for q in self.queues.values_mut() {
                let n = q.len().min(FRAME);
                for (acc, s) in sum.iter_mut().zip(q.drain(..n)) {
                    *acc += i32::from(s);
                }
            }
            let peak = sum.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
            let limit = u32::from(i16::MAX.unsigned_abs());
            out.extend(sum.iter().map(|&s| {
                let scaled = if peak > limit {
                    i64::from(s) * i64::from(limit) / i64::from(peak)
                } else {
                    i64::from(s)
                };
                // |scaled| <= i16::MAX by construction.
                i16::try_from(scaled).unwrap_or(0)
            }));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(b: u8) -> Vec<u8> {
        vec![b]
    }

    fn drain(j: &mut JitterBuffer) -> Vec<Next> {
        std::iter::from_fn(|| j.pop()).collect()
    }

    #[test]
    fn frames_in_order_pass_straight_through() {
        let mut j = JitterBuffer::new(3);
        for i in 10..13 {
            j.push(i, frame(i as u8));
            assert_eq!(drain(&mut j), vec![Next::Frame(frame(i as u8))]);
        }
    }

    #[test]
    fn swapped_frames_come_out_in_order() {
        let mut j = JitterBuffer::new(3);
        j.push(0, frame(0));
        j.push(2, frame(2));
        assert_eq!(drain(&mut j), vec![Next::Frame(frame(0))]);
        j.push(1, frame(1));
        assert_eq!(
            drain(&mut j),
            vec![Next::Frame(frame(1)), Next::Frame(frame(2))]
        );
    }

    #[test]
    fn a_missing_frame_is_given_up_after_depth_later_frames() {
        let mut j = JitterBuffer::new(3);
        j.push(0, frame(0));
        drain(&mut j);
        j.push(2, frame(2));
        j.push(3, frame(3));
        assert_eq!(drain(&mut j), vec![]);
        assert_eq!(j.peek_next(), None);
        j.push(4, frame(4));
        assert_eq!(
            drain(&mut j),
            vec![
                Next::Lost,
                Next::Frame(frame(2)),
                Next::Frame(frame(3)),
                Next::Frame(frame(4))
            ]
        );
        // Too late now: dropped and counted.
        j.push(1, frame(1));
        assert_eq!(drain(&mut j), vec![]);
        assert_eq!(j.late, 1);
    }

    #[test]
    fn duplicates_are_dropped_and_a_big_jump_resynchronizes() {
        let mut j = JitterBuffer::new(3);
        j.push(5, frame(5));
        drain(&mut j);
        j.push(5, frame(5));
        assert_eq!(j.late, 1);
        j.push(1000, frame(9));
        assert_eq!(drain(&mut j), vec![Next::Frame(frame(9))]);
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

    #[test]
    fn playout_conceals_a_lost_frame_with_a_full_frame_of_audio() {
        let mut enc = Encoder::new().unwrap();
        let mut source = Source::tone(440.0);
        let frames: Vec<Vec<u8>> = (0..6)
            .map(|_| enc.encode(&source.next_frame()).unwrap())
            .collect();
        let mut p = Playout::new().unwrap();
        let mut samples = 0;
        for (i, f) in frames.into_iter().enumerate() {
            if i != 2 {
                samples += p.push(i as u64, f).len();
            }
        }
        // 5 frames decoded, 1 concealed (from FEC or PLC): 6 frames of audio, none missing.
        assert_eq!((p.decoded, p.concealed), (5, 1));
        assert_eq!(samples, 6 * FRAME);
    }

    #[test]
    fn one_person_passes_through_unchanged_twenty_ms_at_a_time() {
        let mut m = Mixer::default();
        let pcm: Vec<i16> = (0..FRAME as i32 * 2)
            .map(|i| (i % 2000 - 1000) as i16)
            .collect();
        m.push(&1, &pcm);
        assert_eq!(m.tick(), pcm[..FRAME]);
        assert_eq!(m.tick(), pcm[FRAME..]);
        assert!(m.tick().is_empty(), "nothing queued, nothing played");
    }

    #[test]
    fn two_people_are_summed_and_a_loud_sum_is_scaled_down_not_clipped() {
        let mut m = Mixer::default();
        m.push(&1, &[1000; FRAME]);
        m.push(&2, &[-300; FRAME]);
        assert_eq!(m.tick(), vec![700; FRAME]);
        // Two people near full scale: the sum keeps its shape at full scale.
        let wave: Vec<i16> = (0..FRAME)
            .map(|i| if i % 2 == 0 { 30_000 } else { -15_000 })
            .collect();
        m.push(&1, &wave);
        m.push(&2, &wave);
        let mixed = m.tick();
        assert_eq!(mixed.iter().max(), Some(&i16::MAX));
        assert_eq!(mixed[1], -16_383, "half the peak, as in the sum");
        // Someone with nothing queued adds silence; someone gone adds nothing.
        m.push(&1, &[5; FRAME]);
        m.remove(&2);
        assert_eq!(m.tick(), vec![5; FRAME]);
    }

    #[test]
    fn a_backlog_is_bounded_and_caught_up_on() {
        let mut m = Mixer::default();
        m.push(&1, &vec![1; 30 * FRAME]);
        // At most 200 ms kept; far ahead, a tick plays two frames.
        assert_eq!(m.tick().len(), 2 * FRAME);
        let mut left = 8 * FRAME;
        while left > 0 {
            let n = m.tick().len();
            assert!(n > 0);
            left -= n;
        }
        assert!(m.tick().is_empty());
    }
}
