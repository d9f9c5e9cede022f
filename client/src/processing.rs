//! What the microphone's sound goes through before it is encoded (DESIGN §5): echo
//! cancellation (WebRTC's AEC3, as `sonora` ports it to Rust), noise suppression, automatic
//! gain control and a high-pass filter, the chain browsers apply for free. Sans-IO: exact 10 ms
//! frames of 48 kHz mono in and out, and the far-end reference (what the speakers actually
//! played) fed beside them; the device shells own the threads and the clocks.

use sonora::config::{
    EchoCanceller, GainController2, HighPassFilter, NoiseSuppression, NoiseSuppressionLevel,
};
use sonora::{AudioProcessing, Config, StreamConfig};

/// Samples in one frame: 10 ms at 48 kHz, mono (the only frame the processing takes).
pub const FRAME: usize = 480;
/// The sample rate of the frames.
pub const RATE: u32 = 48_000;

/// Which parts of the chain run. All on by default; headsets need no echo cancellation, and
/// some people prefer their room's sound as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Processing {
    /// Remove the far end's sound that the microphone picks up from the speakers.
    pub echo_cancellation: bool,
    /// Remove steady background noise (fans, hum).
    pub noise_suppression: bool,
    /// Keep the voice at a steady level.
    pub gain_control: bool,
}

impl Default for Processing {
    fn default() -> Self {
        Self {
            echo_cancellation: true,
            noise_suppression: true,
            gain_control: true,
        }
    }
}

/// What the chain reports, for the status line and `--json` stats.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessingStats {
    /// Echo return loss enhancement in dB (how much echo was removed), once measured.
    pub erle_db: Option<f64>,
    /// The echo path's delay as the canceller estimates it, in milliseconds.
    pub echo_delay_ms: Option<i32>,
}

impl ProcessingStats {
    /// Echo cancellation has converged: it removes at least 10 dB of echo. (AEC3 removes far
    /// more once settled; before it has heard enough of the far end it removes little.)
    pub fn converged(&self) -> bool {
        self.erle_db.is_some_and(|db| db >= 10.0)
    }
}

/// The processing of one call's microphone.
pub struct VoiceProcessor {
    apm: AudioProcessing,
    options: Processing,
}

impl std::fmt::Debug for VoiceProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceProcessor")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn to_f32(frame: &[i16; FRAME]) -> [f32; FRAME] {
    frame.map(|s| f32::from(s) / 32768.0)
}

impl VoiceProcessor {
    /// The chain with `options`' parts on; the high-pass filter always runs (it removes what
    /// no voice has: rumble and the microphone's DC offset).
    pub fn new(options: Processing) -> Self {
        let config = Config {
            high_pass_filter: Some(HighPassFilter::default()),
            echo_canceller: options.echo_cancellation.then(EchoCanceller::default),
            noise_suppression: options.noise_suppression.then(|| NoiseSuppression {
                level: NoiseSuppressionLevel::Moderate,
                ..NoiseSuppression::default()
            }),
            gain_controller2: options.gain_control.then(GainController2::default),
            ..Config::default()
        };
        let stream = StreamConfig::new(RATE, 1);
        let apm = AudioProcessing::builder()
            .config(config)
            .capture_config(stream)
            .render_config(stream)
            .build();
        Self { apm, options }
    }

    /// Which parts run.
    pub fn options(&self) -> Processing {
        self.options
    }

    /// 10 ms of what the speakers played (the mix of everyone heard): the echo canceller's
    /// reference. Fed as it is played, beside the microphone's frames.
    pub fn far_end(&mut self, played: &[i16; FRAME]) {
        let src = to_f32(played);
        let mut out = [0f32; FRAME];
        // A frame of the one size and format it was built for cannot be refused.
        let _ = self.apm.process_render_f32(&[&src], &mut [&mut out]);
    }

    /// 10 ms of the microphone, processed in place.
    pub fn near_end(&mut self, captured: &mut [i16; FRAME]) {
        let src = to_f32(captured);
        let mut out = [0f32; FRAME];
        if self
            .apm
            .process_capture_f32(&[&src], &mut [&mut out])
            .is_ok()
        {
            for (dst, s) in captured.iter_mut().zip(out) {
                *dst = (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
            }
        }
    }

    /// How the chain is doing.
    pub fn stats(&self) -> ProcessingStats {
        let s = self.apm.statistics();
        ProcessingStats {
            erle_db: s.echo_return_loss_enhancement,
            echo_delay_ms: s.delay_ms,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A speech-like far end (see [`crate::audio::speech_like`]).
    pub(crate) fn far_end_speech(seconds: usize) -> Vec<i16> {
        crate::audio::speech_like(seconds)
    }

    /// What the microphone hears of `far`: 60 ms later, 10 dB down, slightly smeared (a room).
    fn echo_of(far: &[i16]) -> Vec<f32> {
        let delay = RATE as usize * 60 / 1000;
        (0..far.len())
            .map(|i| {
                let at = |d: usize| i.checked_sub(d).map_or(0.0, |j| f32::from(far[j]));
                0.316 * (0.7 * at(delay) + 0.2 * at(delay + 24) + 0.1 * at(delay + 96))
            })
            .collect()
    }

    fn tone(len: usize, hz: f32, amplitude: f32) -> Vec<f32> {
        (0..len)
            .map(|i| amplitude * (2.0 * std::f32::consts::PI * hz * i as f32 / RATE as f32).sin())
            .collect()
    }

    /// Runs `far` through the speakers and `mic` through the chain, frame by frame; returns the
    /// processed microphone.
    fn run(p: &mut VoiceProcessor, far: &[i16], mic: &[f32]) -> Vec<i16> {
        let mut out = Vec::with_capacity(mic.len());
        for (f, m) in far.chunks_exact(FRAME).zip(mic.chunks_exact(FRAME)) {
            let played: [i16; FRAME] = f.try_into().expect("a whole frame");
            p.far_end(&played);
            let mut frame = [0i16; FRAME];
            for (d, s) in frame.iter_mut().zip(m) {
                *d = s.round().clamp(-32768.0, 32767.0) as i16;
            }
            p.near_end(&mut frame);
            out.extend_from_slice(&frame);
        }
        out
    }

    fn power(x: impl Iterator<Item = f32>) -> f64 {
        let (sum, n) = x.fold((0f64, 0usize), |(s, n), v| {
            (s + f64::from(v).powi(2), n + 1)
        });
        sum / n.max(1) as f64
    }

    /// Goertzel power of `hz` in `x`, per sample.
    fn tone_power(x: &[f32], hz: f32) -> f64 {
        let c = 2.0 * (2.0 * std::f64::consts::PI * f64::from(hz) / f64::from(RATE)).cos();
        let (mut s1, mut s2) = (0f64, 0f64);
        for &v in x {
            let s0 = f64::from(v) + c * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        (s1 * s1 + s2 * s2 - c * s1 * s2) / x.len().max(1) as f64
    }

    fn echo_only() -> Processing {
        // Gain control off when measuring echo (it would raise what is left); noise
        // suppression off so that the figure is the canceller's alone.
        Processing {
            echo_cancellation: true,
            noise_suppression: false,
            gain_control: false,
        }
    }

    #[test]
    fn the_echo_of_what_was_played_is_removed_by_30_db_once_converged() {
        let far = far_end_speech(20);
        let mic = echo_of(&far);
        let mut p = VoiceProcessor::new(echo_only());
        let out = run(&mut p, &far, &mic);
        // After 10 s to converge, over the rest: echo in against what is left.
        let from = 10 * RATE as usize;
        let before = power(mic[from..].iter().copied());
        let after = power(out[from..].iter().map(|&s| f32::from(s)));
        let erle = 10.0 * (before / after.max(1e-9)).log10();
        eprintln!("ERLE {erle:.1} dB once converged; {:?}", p.stats());
        assert!(
            erle >= 30.0,
            "ERLE {erle:.1} dB (echo {before:.0}, left {after:.0})"
        );
        assert!(p.stats().converged(), "{:?}", p.stats());
    }

    #[test]
    fn a_near_end_voice_over_the_echo_is_kept_within_3_db() {
        let far = far_end_speech(20);
        let echo = echo_of(&far);
        // Someone here speaking over the far end: a 440 Hz tone at -20 dBFS.
        let near = tone(echo.len(), 440.0, 3277.0);
        let mic: Vec<f32> = echo.iter().zip(&near).map(|(e, n)| e + n).collect();
        let mut p = VoiceProcessor::new(echo_only());
        let out = run(&mut p, &far, &mic);
        let from = 10 * RATE as usize;
        let kept: Vec<f32> = out[from..].iter().map(|&s| f32::from(s)).collect();
        let ratio = 10.0 * (tone_power(&kept, 440.0) / tone_power(&near[from..], 440.0)).log10();
        eprintln!("near-end tone through the canceller: {ratio:+.2} dB");
        assert!(
            ratio.abs() <= 3.0,
            "the near-end tone changed by {ratio:.1} dB"
        );
    }

    #[test]
    fn without_echo_cancellation_the_echo_goes_through() {
        // The check above can fail: with the canceller off, the echo stays.
        let far = far_end_speech(12);
        let mic = echo_of(&far);
        let mut p = VoiceProcessor::new(Processing {
            echo_cancellation: false,
            noise_suppression: false,
            gain_control: false,
        });
        let out = run(&mut p, &far, &mic);
        let from = 6 * RATE as usize;
        let before = power(mic[from..].iter().copied());
        let after = power(out[from..].iter().map(|&s| f32::from(s)));
        let erle = 10.0 * (before / after.max(1e-9)).log10();
        assert!(erle < 3.0, "{erle:.1} dB removed without a canceller");
        assert_eq!(p.stats().erle_db, None);
    }
}
