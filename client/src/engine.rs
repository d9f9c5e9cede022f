//! What happens between the sound card and the call, sans-IO: the microphone's samples at its
//! device's rate become 20 ms frames of processed 48 kHz audio for the call, and the call's mix
//! becomes samples at the speakers' rate; the mix is also the echo canceller's reference.
//!
//! Time is the microphone's: every 10 ms it records is one step, which takes 10 ms of the
//! mix for the speakers and processes 10 ms of the microphone against it. The speakers keep
//! their own clock, so what they still have queued is watched and the speakers' resampling
//! ratio nudged to keep it at its target: drift between the two clocks never builds up delay
//! nor runs the speakers dry. Without a microphone the speakers' queue is the clock (a step
//! whenever it falls below its target).

use crate::ClientError;
use crate::audio;
use crate::processing::{FRAME as STEP, Processing, ProcessingStats, RATE, VoiceProcessor};
use crate::resample::Converter;

/// The least the speakers keep queued (30 ms); more when their device asks for bigger pieces
/// (see [`Engine::device_asks`]).
const MIN_TARGET_MS: u32 = 30;
/// How strongly the speakers' ratio follows their queue: at a queue twice its target the
/// ratio moves by 0.2%, which takes the excess back in about 20 s, inaudibly.
const GAIN: f64 = 0.002;
/// How quickly the queue's average follows it, per 10 ms step (about one second).
const SMOOTHING: f64 = 0.01;

/// What the engine reports, for the status line and `--json` stats.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EngineReport {
    /// The processing chain's own figures (echo removed, echo delay).
    pub processing: ProcessingStats,
    /// The speakers' resampling ratio relative to nominal, as drift correction set it.
    pub speaker_ratio: f64,
}

/// The logic of one call's sound card.
pub struct Engine {
    /// Runs while there is a microphone.
    processor: Option<VoiceProcessor>,
    /// The microphone's rate to 48 kHz; `None` without a microphone.
    capture: Option<Converter>,
    /// 48 kHz to the speakers' rate; `None` without speakers.
    render: Option<Converter>,
    /// The speakers' rate.
    output_rate: u32,
    /// Microphone samples at 48 kHz not yet processed.
    near: Vec<f32>,
    /// Processed microphone samples not yet a whole 20 ms frame.
    outgoing: Vec<i16>,
    /// Speaker samples to keep queued.
    target: usize,
    /// The queue's smoothed length.
    average: Option<f64>,
    ratio: f64,
    /// While the far end plays: the microphone's power before and after processing, smoothed
    /// (how much echo is removed, as the person hears it).
    echo_in: f64,
    echo_out: f64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("microphone", &self.capture.is_some())
            .field("speakers", &self.render.is_some())
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine for a microphone at `input_rate` and speakers at `output_rate` (either may be
    /// absent), with `processing`'s parts on the microphone.
    pub fn new(
        processing: Processing,
        input_rate: Option<u32>,
        output_rate: Option<u32>,
    ) -> Result<Self, ClientError> {
        let capture = input_rate
            .map(|r| Converter::new(r, RATE, false))
            .transpose()?;
        // Adjustable only when the microphone is the clock it must follow.
        let render = output_rate
            .map(|r| Converter::new(RATE, r, input_rate.is_some()))
            .transpose()?;
        let output_rate = output_rate.unwrap_or(RATE);
        Ok(Self {
            processor: capture.is_some().then(|| VoiceProcessor::new(processing)),
            capture,
            render,
            output_rate,
            near: Vec::new(),
            outgoing: Vec::with_capacity(audio::FRAME),
            target: (output_rate * MIN_TARGET_MS / 1000) as usize,
            average: None,
            ratio: 1.0,
            echo_in: 0.0,
            echo_out: 0.0,
        })
    }

    /// Speaker samples it keeps queued.
    pub fn target(&self) -> usize {
        self.target
    }

    /// The speakers' device asked for `samples` at once: keep at least twice that queued, so
    /// that one request never finds the queue short.
    pub fn device_asks(&mut self, samples: usize) {
        let min = (self.output_rate * MIN_TARGET_MS / 1000) as usize;
        self.target = self.target.max(min).max(2 * samples);
    }

    /// Samples from the microphone, mono, at its device's rate.
    pub fn microphone(&mut self, samples: &[f32]) {
        if let Some(capture) = self.capture.as_mut() {
            capture.process(samples, &mut self.near);
        }
    }

    /// Runs the 10 ms steps that are due. `queued`: samples the speakers still have queued.
    /// `playback` gives the next 10 ms of what the call plays (48 kHz). Appends whole 20 ms
    /// frames of the processed microphone to `sent`, and samples for the speakers (their rate)
    /// to `speakers`.
    pub fn run(
        &mut self,
        queued: usize,
        playback: &mut dyn FnMut(&mut [i16; STEP]),
        sent: &mut Vec<[i16; audio::FRAME]>,
        speakers: &mut Vec<f32>,
    ) {
        let before = speakers.len();
        let mut steps = 0u32;
        loop {
            let due = if self.capture.is_some() {
                self.near.len() >= STEP
            } else {
                self.render.is_some() && queued + (speakers.len() - before) < self.target
            };
            if !due {
                break;
            }
            self.step(playback, sent, speakers);
            steps += 1;
        }
        if steps > 0 && self.capture.is_some() {
            self.follow(queued + speakers.len() - before, steps);
        }
    }

    fn step(
        &mut self,
        playback: &mut dyn FnMut(&mut [i16; STEP]),
        sent: &mut Vec<[i16; audio::FRAME]>,
        speakers: &mut Vec<f32>,
    ) {
        let mut far = [0i16; STEP];
        if let Some(render) = self.render.as_mut() {
            playback(&mut far);
            if let Some(p) = self.processor.as_mut() {
                p.far_end(&far);
            }
            let played = far.map(|s| f32::from(s) / 32768.0);
            render.process(&played, speakers);
        }
        if self.capture.is_some() {
            let mut frame = [0i16; STEP];
            for (d, s) in frame.iter_mut().zip(self.near.drain(..STEP)) {
                *d = (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
            }
            let before = power(&frame);
            if let Some(p) = self.processor.as_mut() {
                p.near_end(&mut frame);
            }
            // Measured while the far end plays (there is echo to remove then).
            if power(&far) > FAR_ACTIVE {
                self.echo_in += ECHO_SMOOTHING * (before - self.echo_in);
                self.echo_out += ECHO_SMOOTHING * (power(&frame) - self.echo_out);
            }
            self.outgoing.extend_from_slice(&frame);
            if self.outgoing.len() >= audio::FRAME {
                let mut whole = [0i16; audio::FRAME];
                whole.copy_from_slice(&self.outgoing[..audio::FRAME]);
                self.outgoing.drain(..audio::FRAME);
                sent.push(whole);
            }
        }
    }

    /// Drift correction: the speakers' queue, smoothed, against its target.
    fn follow(&mut self, queued: usize, steps: u32) {
        let Some(render) = self.render.as_mut() else {
            return;
        };
        let q = queued as f64;
        let weight = 1.0 - (1.0 - SMOOTHING).powi(steps as i32);
        let average = self.average.map_or(q, |a| a + weight * (q - a));
        self.average = Some(average);
        let target = self.target as f64;
        self.ratio = 1.0 - GAIN * (average - target) / target;
        render.adjust(self.ratio);
    }

    /// How it is doing. The echo removed is measured here, from the microphone before and
    /// after the chain while the far end plays: when the microphone hears next to nothing of
    /// it (headphones), there is no echo to remove and cancellation counts as converged.
    pub fn report(&self) -> EngineReport {
        let mut processing = self
            .processor
            .as_ref()
            .map(VoiceProcessor::stats)
            .unwrap_or_default();
        processing.erle_db = (self.echo_in > 0.0).then(|| {
            if self.echo_in < NO_ECHO {
                f64::INFINITY
            } else {
                10.0 * (self.echo_in / self.echo_out.max(1e-3)).log10()
            }
        });
        EngineReport {
            processing,
            speaker_ratio: self.ratio,
        }
    }
}

/// Mean square of a frame.
fn power(frame: &[i16; STEP]) -> f64 {
    frame.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / STEP as f64
}

/// The far end plays when louder than -50 dBFS.
const FAR_ACTIVE: f64 = 32768.0 * 32768.0 * 1e-5;
/// A microphone quieter than -60 dBFS while the far end plays hears no echo.
const NO_ECHO: f64 = 32768.0 * 32768.0 * 1e-6;
/// Per 10 ms step: about half a second.
const ECHO_SMOOTHING: f64 = 0.02;

#[cfg(test)]
mod tests {
    use super::*;

    fn off() -> Processing {
        Processing {
            echo_cancellation: false,
            noise_suppression: false,
            gain_control: false,
        }
    }

    fn tone(freq: f64, rate: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| {
                0.5 * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin() as f32
            })
            .collect()
    }

    fn goertzel(x: &[i16], freq: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * freq / f64::from(RATE);
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &v in x {
            let s = f64::from(v) + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) / (x.len() as f64).powi(2)
    }

    #[test]
    fn a_microphone_at_44_1_khz_becomes_20_ms_frames_at_48_khz_at_its_pitch() {
        let mut e = Engine::new(off(), Some(44_100), None).unwrap();
        let mic = tone(440.0, 44_100, 2 * 44_100);
        let mut sent = Vec::new();
        let mut speakers = Vec::new();
        for piece in mic.chunks(367) {
            e.microphone(piece);
            e.run(
                0,
                &mut |_| unreachable!("no speakers"),
                &mut sent,
                &mut speakers,
            );
        }
        assert!((98..=100).contains(&sent.len()), "{} frames", sent.len());
        assert!(speakers.is_empty());
        let heard: Vec<i16> = sent[10..].iter().flatten().copied().collect();
        let (p440, p479) = (goertzel(&heard, 440.0), goertzel(&heard, 478.9));
        assert!(p440 > 1e6, "{p440}");
        assert!(p440 > 1000.0 * p479, "{p440} vs {p479}");
    }

    /// A simulated call: a microphone at 44.1 kHz and speakers whose clock runs `drift` fast
    /// (0.0003 = 300 ppm), for `seconds`. Returns the speakers' queue, in samples, sampled every
    /// 10 ms after the first `settle` seconds, and how often the speakers found it empty.
    fn speakers_queue(drift: f64, seconds: usize, settle: usize) -> (Vec<usize>, u32) {
        let mut e = Engine::new(off(), Some(44_100), Some(44_100)).unwrap();
        let mic = vec![0.0f32; 441];
        let (mut queued, mut owed) = (e.target(), 0.0f64);
        let (mut seen, mut dry) = (Vec::new(), 0);
        let (mut sent, mut speakers) = (Vec::new(), Vec::new());
        for tick in 0..seconds * 100 {
            e.microphone(&mic);
            speakers.clear();
            e.run(queued, &mut |f| f.fill(0), &mut sent, &mut speakers);
            queued += speakers.len();
            // The speakers take 10 ms of their own clock.
            owed += 441.0 * (1.0 + drift);
            let take = owed.floor() as usize;
            owed -= take as f64;
            if take > queued {
                dry += 1;
            }
            queued = queued.saturating_sub(take);
            if tick >= settle * 100 {
                seen.push(queued);
            }
        }
        (seen, dry)
    }

    #[test]
    fn speakers_whose_clock_drifts_keep_their_queue_near_its_target() {
        let target = 44_100 * 30 / 1000;
        for drift in [0.0005, -0.0005] {
            let (seen, dry) = speakers_queue(drift, 120, 30);
            let (min, max) = (*seen.iter().min().unwrap(), *seen.iter().max().unwrap());
            // Without correction 500 ppm is 60 ms over two minutes (twice the target); with it
            // the queue stays within a few milliseconds of its 30 ms.
            assert_eq!(dry, 0, "the speakers ran dry at drift {drift}");
            assert!(
                min + 441 >= target / 2 && max <= 2 * target,
                "drift {drift}: queue between {min} and {max} samples, target {target}"
            );
        }
    }

    #[test]
    fn without_correction_the_same_drift_would_starve_the_speakers() {
        // The check above can fail: a ratio that never moves lets the queue run out.
        let mut e = Engine::new(off(), Some(44_100), Some(44_100)).unwrap();
        let (mut queued, mut owed, mut dry) = (e.target(), 0.0f64, 0);
        let (mut sent, mut speakers) = (Vec::new(), Vec::new());
        for _ in 0..120 * 100 {
            e.microphone(&[0.0; 441]);
            speakers.clear();
            e.run(queued, &mut |f| f.fill(0), &mut sent, &mut speakers);
            e.render.as_mut().unwrap().adjust(1.0); // undo the correction
            queued += speakers.len();
            owed += 441.0 * 1.0005;
            let take = owed.floor() as usize;
            owed -= take as f64;
            dry += u32::from(take > queued);
            queued = queued.saturating_sub(take);
        }
        assert!(dry > 100, "ran dry {dry} times");
    }

    #[test]
    fn without_a_microphone_the_speakers_queue_is_the_clock() {
        let mut e = Engine::new(off(), None, Some(48_000)).unwrap();
        e.device_asks(2048);
        assert_eq!(e.target(), 4096);
        let (mut sent, mut speakers) = (Vec::new(), Vec::new());
        let mut asked = 0;
        e.run(
            0,
            &mut |f| {
                asked += 1;
                f.fill(100)
            },
            &mut sent,
            &mut speakers,
        );
        // 10 ms steps until the target is queued; nothing sent.
        assert_eq!(asked, 9);
        assert_eq!(speakers.len(), 9 * 480);
        assert!(sent.is_empty());
        speakers.clear();
        e.run(
            4096,
            &mut |_| unreachable!("queue full"),
            &mut sent,
            &mut speakers,
        );
        assert!(speakers.is_empty());
    }

    #[test]
    fn the_echo_of_the_speakers_at_44_1_khz_is_removed_from_the_microphone() {
        // Both devices at 44.1 kHz: the reference is resampled to the speakers' rate, the echo
        // comes back through the microphone's resampler, 40 ms later and 6 dB down.
        let far = crate::processing::tests::far_end_speech(20);
        let echo_only = Processing {
            echo_cancellation: true,
            noise_suppression: false,
            gain_control: false,
        };
        let run = |processing: Processing| {
            let mut e = Engine::new(processing, Some(44_100), Some(44_100)).unwrap();
            let mut played: Vec<f32> = vec![0.0; 44_100 * 40 / 1000];
            let (mut at, mut heard) = (0, Vec::new());
            let mut next = far.chunks_exact(STEP);
            let mut sent = Vec::new();
            while played.len() > 441 && heard.len() < 19 * RATE as usize {
                let echo: Vec<f32> = played.drain(..441).map(|s| 0.5 * s).collect();
                at += 441;
                e.microphone(&echo);
                sent.clear();
                e.run(
                    played.len(),
                    &mut |f| f.copy_from_slice(next.next().unwrap_or(&[0; STEP])),
                    &mut sent,
                    &mut played,
                );
                heard.extend(sent.iter().flatten().copied());
            }
            assert!(at > 18 * 44_100, "the simulation ran {at} samples");
            (heard, e.report())
        };
        let power = |x: &[i16]| x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>();
        let (kept, _) = run(off());
        let (cancelled, report) = run(echo_only);
        let from = 10 * RATE as usize;
        let erle = 10.0 * (power(&kept[from..]) / power(&cancelled[from..]).max(1.0)).log10();
        eprintln!("through 44.1 kHz devices: {erle:.1} dB of echo removed; {report:?}");
        assert!(
            power(&kept[from..]) > 1e9,
            "the echo reached the microphone"
        );
        assert!(erle >= 30.0, "{erle:.1} dB removed");
        assert!(report.processing.converged());
    }
}
