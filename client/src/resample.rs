//! Sample-rate conversion of one mono stream: a device's rate (44.1 kHz is common) to the
//! call's 48 kHz and back, with rubato's asynchronous sinc resampler (DESIGN §5). Its ratio can
//! be nudged while it runs, which is how the speakers' side follows a device whose clock drifts
//! from the microphone's. Sans-IO: samples in, samples out, any amount at a time.

use crate::ClientError;
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Adjustable, Async, FixedAsync, Resampler, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};

/// How far [`Converter::adjust`] may move the ratio from the nominal one: 1%, far beyond any
/// real clock drift (which is well under 0.1%) and still inaudible as a pitch change.
pub const MAX_ADJUST: f64 = 0.01;

/// One stream's conversion from `from` Hz to `to` Hz.
pub struct Converter {
    /// `None`: the rates are equal and the ratio never moves, so samples pass as they are.
    inner: Option<Async<f32>>,
    /// Input waiting for a whole chunk.
    pending: Vec<f32>,
    /// The resampler's output, reused.
    out: Vec<f32>,
}

impl std::fmt::Debug for Converter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Converter")
            .field("resampling", &self.inner.is_some())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Converter {
    /// A converter from `from` Hz to `to` Hz. `adjustable`: its ratio will be nudged (see
    /// [`Converter::adjust`]), so it resamples even between equal rates.
    pub fn new(from: u32, to: u32, adjustable: bool) -> Result<Self, ClientError> {
        if from == 0 || to == 0 {
            return Err(ClientError::Audio(format!(
                "cannot resample from {from} Hz to {to} Hz"
            )));
        }
        if from == to && !adjustable {
            return Ok(Self {
                inner: None,
                pending: Vec::new(),
                out: Vec::new(),
            });
        }
        // A short filter: 64 taps are ~0.7 ms of delay at 44.1 kHz, and the voice band is far
        // below where its roll-off starts.
        let params = SincInterpolationParameters::new(64, WindowFunction::BlackmanHarris2)
            .oversampling_factor(128)
            .interpolation(SincInterpolationType::Cubic);
        // Chunks of 10 ms of input: the steps the device side works in.
        let chunk = (from as usize / 100).max(1);
        let inner = Async::<f32>::new_sinc(
            f64::from(to) / f64::from(from),
            1.0 + MAX_ADJUST,
            &params,
            chunk,
            1,
            FixedAsync::Input,
        )
        .map_err(|e| ClientError::Audio(format!("resampler {from} Hz to {to} Hz: {e}")))?;
        let out = vec![0.0; inner.output_frames_max()];
        Ok(Self {
            inner: Some(inner),
            pending: Vec::with_capacity(2 * chunk),
            out,
        })
    }

    /// Sets the ratio to the nominal one times `relative`, clamped to within [`MAX_ADJUST`]:
    /// above 1 more samples come out per sample in, below 1 fewer. The change is ramped over
    /// the next chunk, so it makes no click.
    pub fn adjust(&mut self, relative: f64) {
        if let Some(inner) = self.inner.as_mut() {
            let r = relative.clamp(1.0 / (1.0 + MAX_ADJUST), 1.0 + MAX_ADJUST);
            // Within the bounds it was built with, so it cannot be refused.
            let _ = inner.set_resample_ratio_relative(r, true);
        }
    }

    /// Converts `input`, appending what is ready to `output`. What does not fill a whole chunk
    /// yet waits for the next call.
    pub fn process(&mut self, input: &[f32], output: &mut Vec<f32>) {
        let Some(inner) = self.inner.as_mut() else {
            output.extend_from_slice(input);
            return;
        };
        self.pending.extend_from_slice(input);
        let mut start = 0;
        while self.pending.len() - start >= inner.input_frames_next() {
            let need = inner.input_frames_next();
            let produced = match (
                InterleavedSlice::new(&self.pending[start..start + need], 1, need),
                InterleavedSlice::new_mut(&mut self.out, 1, inner.output_frames_max()),
            ) {
                (Ok(src), Ok(mut dst)) => inner.process_into_buffer(&src, &mut dst, None),
                _ => break,
            };
            match produced {
                Ok((used, made)) => {
                    output.extend_from_slice(&self.out[..made]);
                    start += used.max(1);
                }
                // Buffers sized from the resampler itself: not reached; drop the chunk rather
                // than loop on it.
                Err(_) => start += need,
            }
        }
        self.pending.drain(..start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, rate: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin() as f32)
            .collect()
    }

    /// The power of `freq` in `x` at `rate` (one Goertzel bin), normalised by length.
    fn power(x: &[f32], freq: f64, rate: u32) -> f64 {
        let w = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &v in x {
            let s = f64::from(v) + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) / (x.len() as f64).powi(2)
    }

    #[test]
    fn a_tone_at_44_1_khz_comes_out_at_48_khz_at_the_same_pitch_fed_in_odd_pieces() {
        let input = tone(440.0, 44_100, 44_100);
        let mut c = Converter::new(44_100, 48_000, false).unwrap();
        let mut out = Vec::new();
        // Pieces of a device callback's odd sizes.
        for piece in input.chunks(333) {
            c.process(piece, &mut out);
        }
        // One second in, one second out (less what waits in the last chunk).
        assert!((47_000..=48_000).contains(&out.len()), "{}", out.len());
        let settled = &out[4_800..];
        let (p440, p404) = (
            power(settled, 440.0, 48_000),
            power(settled, 404.25, 48_000),
        );
        assert!(p440 > 0.2, "440 Hz kept: {p440}");
        assert!(
            p440 > 1000.0 * p404,
            "not played at the wrong rate: {p440} vs {p404}"
        );
    }

    #[test]
    fn equal_rates_pass_through_unless_the_ratio_is_to_move() {
        let input = tone(1000.0, 48_000, 960);
        let mut c = Converter::new(48_000, 48_000, false).unwrap();
        let mut out = Vec::new();
        c.process(&input, &mut out);
        assert_eq!(out, input);
        assert!(Converter::new(0, 48_000, false).is_err());
    }

    #[test]
    fn an_adjusted_ratio_makes_more_or_fewer_samples_within_its_bound() {
        let input = tone(440.0, 48_000, 48_000 * 4);
        let count = |relative: f64| {
            let mut c = Converter::new(48_000, 44_100, true).unwrap();
            c.adjust(relative);
            let mut out = Vec::new();
            c.process(&input, &mut out);
            out.len() as f64
        };
        let nominal = count(1.0);
        assert!((nominal / (4.0 * 44_100.0) - 1.0).abs() < 0.01, "{nominal}");
        assert!((count(1.005) / nominal - 1.005).abs() < 0.001);
        assert!((count(0.995) / nominal - 0.995).abs() < 0.001);
        // Past the bound it stops at the bound.
        assert!((count(1.5) / nominal - (1.0 + MAX_ADJUST)).abs() < 0.001);
    }
}
