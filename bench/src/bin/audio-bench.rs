//! The terminal client's sound, measured (bench/audio.sh runs it):
//!
//! - `cost`: the processing chain's CPU time per 10 ms frame (echo cancellation, noise
//!   suppression, gain control, high-pass filter), and with 44.1 kHz devices the resampling to
//!   and from 48 kHz too, on speech-like sound with an echo.
//! - `markers FILE.wav MINUTES`: a WAV file to send, a 20 ms 1 kHz burst every second.
//! - `delay SENT.wav HEARD.wav`: where each burst of SENT.wav comes back in HEARD.wav (written
//!   by the same client, in step with what it sent): the round trip of every second of the
//!   call, its median and spread, and how it moved from the first minute to the last.

use sotto_client::audio::speech_like;
use sotto_client::engine::Engine;
use sotto_client::processing::{Processing, RATE};
use std::process::ExitCode;
use std::time::Instant;

/// Microseconds per 10 ms step of an engine with devices at `rate`, over `seconds` of a
/// far end whose echo (40 ms, 6 dB down) comes back into the microphone.
fn cost(processing: Processing, rate: u32, seconds: usize) -> f64 {
    let far = speech_like(seconds);
    let mut engine = Engine::new(processing, Some(rate), Some(rate)).expect("engine");
    let per_step = rate as usize / 100;
    let mut played: Vec<f32> = vec![0.0; rate as usize * 40 / 1000];
    let mut next = far.chunks_exact(480);
    let (mut sent, mut steps) = (Vec::new(), 0u64);
    let start = Instant::now();
    while played.len() > per_step {
        let echo: Vec<f32> = played.drain(..per_step).map(|s| 0.5 * s).collect();
        engine.microphone(&echo);
        sent.clear();
        let Some(chunk) = next.next() else { break };
        engine.run(
            played.len(),
            &mut |f| {
                f.copy_from_slice(chunk);
                steps += 1;
            },
            &mut sent,
            &mut played,
        );
    }
    start.elapsed().as_secs_f64() * 1e6 / steps.max(1) as f64
}

fn write_wav(path: &str, samples: &[i16]) -> Result<(), String> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(|e| e.to_string())?;
    for &s in samples {
        w.write_sample(s).map_err(|e| e.to_string())?;
    }
    w.finalize().map_err(|e| e.to_string())
}

fn read_wav(path: &str) -> Result<Vec<i16>, String> {
    hound::WavReader::open(path)
        .map_err(|e| format!("{path}: {e}"))?
        .into_samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{path}: {e}"))
}

/// Where bursts start: the first 1 ms window above -30 dBFS after at least half a second
/// below it.
fn onsets(x: &[i16]) -> Vec<usize> {
    let window = RATE as usize / 1000;
    let threshold = (32768.0f64 * 10f64.powf(-30.0 / 20.0)).powi(2);
    let mut quiet = usize::MAX / 2;
    let mut out = Vec::new();
    for (i, w) in x.chunks(window).enumerate() {
        let power = w.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / w.len() as f64;
        if power > threshold {
            if quiet >= 500 {
                out.push(i * window);
            }
            quiet = 0;
        } else {
            quiet += 1;
        }
    }
    out
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["cost"] => {
            let all = Processing::default();
            let seconds = 30;
            for (name, processing, rate) in [
                ("full chain, 48 kHz devices", all, 48_000),
                (
                    "full chain, 44.1 kHz devices (with resampling)",
                    all,
                    44_100,
                ),
                (
                    "echo cancellation only, 48 kHz",
                    Processing {
                        echo_cancellation: true,
                        noise_suppression: false,
                        gain_control: false,
                    },
                    48_000,
                ),
            ] {
                let us = cost(processing, rate, seconds);
                println!(
                    "scenario=audio-cost chain=\"{name}\" us_per_10ms={us:.0} core_share={:.2}%",
                    us / 10_000.0 * 100.0
                );
            }
            Ok(())
        }
        ["markers", path, minutes] => minutes
            .parse::<usize>()
            .map_err(|e| e.to_string())
            .and_then(|m| {
                let mut x = vec![0i16; m * 60 * RATE as usize];
                for second in 0..m * 60 {
                    let at = second * RATE as usize + RATE as usize / 2;
                    for i in 0..RATE as usize / 50 {
                        let t = i as f64 / f64::from(RATE);
                        x[at + i] =
                            ((2.0 * std::f64::consts::PI * 1000.0 * t).sin() * 16_000.0) as i16;
                    }
                }
                write_wav(path, &x)
            }),
        ["delay", sent, heard] => read_wav(sent).and_then(|s| {
            let h = read_wav(heard)?;
            let (out, back) = (onsets(&s), onsets(&h));
            // Each burst sent pairs with the first heard after it, within a second.
            let mut delays: Vec<(usize, f64)> = Vec::new();
            let mut j = 0;
            for (k, &o) in out.iter().enumerate() {
                while j < back.len() && back[j] < o {
                    j += 1;
                }
                if j < back.len() && back[j] - o < RATE as usize {
                    delays.push((k, (back[j] - o) as f64 * 1000.0 / f64::from(RATE)));
                }
            }
            if delays.len() < 10 {
                return Err(format!(
                    "only {} of {} bursts came back",
                    delays.len(),
                    out.len()
                ));
            }
            let mut all: Vec<f64> = delays.iter().map(|d| d.1).collect();
            let first: Vec<f64> = delays.iter().take(60).map(|d| d.1).collect();
            let last: Vec<f64> = delays.iter().rev().take(60).map(|d| d.1).collect();
            let (min, max) = all
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), &d| (a.min(d), b.max(d)));
            println!(
                "scenario=audio-delay bursts={} returned={} round_trip_median_ms={:.1} \
                 min_ms={min:.1} max_ms={max:.1} first_minute_median_ms={:.1} \
                 last_minute_median_ms={:.1}",
                out.len(),
                delays.len(),
                median(&mut all),
                median(&mut first.clone()),
                median(&mut last.clone()),
            );
            Ok(())
        }),
        _ => Err(
            "usage: audio-bench cost | markers FILE.wav MINUTES | delay SENT.wav HEARD.wav".into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("audio-bench: {e}");
            ExitCode::from(2)
        }
    }
}
