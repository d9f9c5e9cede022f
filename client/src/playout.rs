//! What each person sends, played out: their authenticated Opus frames in, by position (the
//! SFrame counter, one more per 20 ms frame) and arrival time; 20 ms of PCM out each time the
//! call's clock asks. Sans-IO (`now` comes in).
//!
//! The buffer sizes itself from the jitter it measures: it holds as many frames as the
//! spread of recent arrival times needs (95th percentile of the last five seconds, at least
//! one frame), no more. A frame that is missing when its turn comes is concealed, from the next
//! frame's forward error correction data when that is here, by Opus' packet loss concealment
//! otherwise. A frame late beyond the buffer, or a buffer short of its target, makes one frame
//! of concealment while the next waits (the delay grows by a frame); whenever more is queued
//! than the target needs, a frame is skipped (the delay shrinks by one). So the delay follows the network, and a sender
//! whose clock runs faster or slower than the call's never makes it grow or starve.

use crate::ClientError;
use crate::audio::{FRAME, RATE};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// A frame's duration.
const FRAME_TIME: Duration = Duration::from_millis(20);
/// Arrivals the jitter is measured over (5 s).
const WINDOW: usize = 250;
/// The most frames it ever holds back to absorb jitter (300 ms).
pub const MAX_TARGET: usize = 15;
/// Frames kept at most (anything more is far behind and dropped).
const MAX_HELD: usize = 4 * MAX_TARGET;
/// A gap this long means the sender restarted or stalled: playback resumes at the new frame.
const RESYNC_GAP: u64 = 50;
/// Frames concealed in a row with nothing queued before it falls silent (100 ms): the sender
/// went quiet, or left; it starts again, buffered anew, when frames come.
const MAX_EXPAND: u32 = 5;
/// Pulls between two frames held back to let the buffer grow (200 ms): growing spreads out.
const GROW_EVERY: u32 = 10;
/// Samples in the longest Opus frame (120 ms), the decoder's output buffer.
const MAX_DECODED: usize = 5760;

/// Counters of one person's playout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlayoutCounters {
    /// Frames decoded and played.
    pub decoded: u64,
    /// Frames concealed (lost, or late beyond the buffer).
    pub concealed: u64,
    /// Frames skipped to bring the delay back down.
    pub skipped: u64,
    /// Frames that came after their turn, or twice: dropped.
    pub late: u64,
}

/// The jitter of arrivals: each frame's arrival against when its position says it was sent.
#[derive(Debug, Default)]
struct Jitter {
    /// The first arrival and its position: the reference the others are measured from.
    base: Option<(Instant, u64)>,
    /// Recent arrivals' lateness against the reference, in milliseconds.
    recent: VecDeque<f64>,
}

impl Jitter {
    fn arrived(&mut self, pos: u64, now: Instant) {
        let (t0, p0) = *self.base.get_or_insert((now, pos));
        let sent = (pos as f64 - p0 as f64) * FRAME_TIME.as_secs_f64() * 1000.0;
        let arrived = now.saturating_duration_since(t0).as_secs_f64() * 1000.0;
        self.recent.push_back(arrived - sent);
        if self.recent.len() > WINDOW {
            self.recent.pop_front();
        }
    }

    /// Frames to hold back: the spread between the earliest and the 95th percentile arrival,
    /// in frames, rounded up, plus one for the phase between arrivals and the call's clock.
    fn target(&self) -> usize {
        if self.recent.len() < 2 {
            return 1;
        }
        let mut sorted: Vec<f64> = self.recent.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let p95 = sorted[(sorted.len() - 1) * 95 / 100];
        let spread = (p95 - sorted[0]).max(0.0);
        let frames = (spread / FRAME_TIME.as_secs_f64() / 1000.0).ceil() as usize;
        (frames + 1).clamp(1, MAX_TARGET)
    }
}

/// One person's playout.
pub struct Playout {
    decoder: opus::Decoder,
    held: BTreeMap<u64, Vec<u8>>,
    /// The position to play next, once playing.
    next: Option<u64>,
    /// Concealed in a row with nothing queued.
    expanding: u32,
    /// Pulls since the buffer was last made to grow.
    since_growth: u32,
    jitter: Jitter,
    /// What happened so far.
    pub counters: PlayoutCounters,
}

impl std::fmt::Debug for Playout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Playout")
            .field("held", &self.held.len())
            .field("next", &self.next)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Playout {
    /// A playout for 48 kHz mono Opus.
    pub fn new() -> Result<Self, ClientError> {
        let decoder = opus::Decoder::new(RATE, opus::Channels::Mono)
            .map_err(|e| ClientError::Audio(format!("opus: {e}")))?;
        Ok(Self {
            decoder,
            held: BTreeMap::new(),
            next: None,
            expanding: 0,
            since_growth: 0,
            jitter: Jitter::default(),
            counters: PlayoutCounters::default(),
        })
    }

    /// Frames it aims to hold back now.
    pub fn target(&self) -> usize {
        self.jitter.target()
    }

    /// Frames queued from the next to play up to the newest (what the delay is made of).
    pub fn queued(&self) -> usize {
        match (self.next, self.held.last_key_value()) {
            (Some(next), Some((&last, _))) if last >= next => (last - next + 1) as usize,
            (None, Some(_)) => self.held.len(),
            _ => 0,
        }
    }

    /// The authenticated Opus frame at `pos`, arrived `now`.
    pub fn push(&mut self, pos: u64, frame: Vec<u8>, now: Instant) {
        if self.next.is_some_and(|next| pos < next) || self.held.contains_key(&pos) {
            self.counters.late += 1;
            return;
        }
        if self
            .held
            .last_key_value()
            .is_some_and(|(&last, _)| pos > last + RESYNC_GAP)
        {
            // The sender restarted: what it sent before says nothing of its timing now.
            self.jitter = Jitter::default();
        }
        self.jitter.arrived(pos, now);
        self.held.insert(pos, frame);
        while self.held.len() > MAX_HELD {
            self.held.pop_first();
            self.counters.late += 1;
        }
    }

    /// The next 20 ms to play, or `None` while there is nothing to play (not started yet, or
    /// gone quiet).
    pub fn pull(&mut self) -> Option<[i16; FRAME]> {
        let next = match self.next {
            Some(next) => next,
            None => {
                // Start once the target is buffered.
                let first = *self.held.first_key_value()?.0;
                if self.held.len() < self.target() {
                    return None;
                }
                self.next = Some(first);
                first
            }
        };
        let newest = self.held.last_key_value().map(|(&p, _)| p);
        match newest {
            Some(head) if head >= next => {}
            // Nothing queued at all: a late frame, or the sender went quiet.
            _ => return self.expand(),
        }
        let first = self.held.first_key_value().map(|(&p, _)| p);
        if let Some(first) = first
            && first > next + RESYNC_GAP
        {
            // The sender restarted or stalled: start again from what it sends now.
            self.next = None;
            self.expanding = 0;
            return self.pull();
        }
        self.expanding = 0;
        // More queued than the jitter needs: skip a frame (one at a time, so it never jumps).
        if self.queued() > self.target() + 2
            && let Some(skipped) = self.held.remove(&next)
        {
            let mut buf = [0i16; MAX_DECODED];
            // Decoded, not played: the decoder's state stays continuous.
            let _ = self.decoder.decode(&skipped, &mut buf, false);
            self.counters.skipped += 1;
            self.next = Some(next + 1);
            return self.pull();
        }
        // Less queued than the jitter needs: the frame waits one more turn, concealed once in
        // its place (the delay grows by a frame), at most every 200 ms.
        self.since_growth = self.since_growth.saturating_add(1);
        if self.queued() + 1 < self.target() && self.since_growth >= GROW_EVERY {
            self.since_growth = 0;
            self.counters.concealed += 1;
            let mut buf = [0i16; FRAME];
            let n = self.decoder.decode(&[], &mut buf, false).unwrap_or(0);
            return Some(first_frame(&buf[..n]));
        }
        self.next = Some(next + 1);
        let mut buf = [0i16; MAX_DECODED];
        if let Some(frame) = self.held.remove(&next)
            && let Ok(n) = self.decoder.decode(&frame, &mut buf, false)
        {
            self.counters.decoded += 1;
            return Some(first_frame(&buf[..n]));
        }
        // Missing while later ones are here: lost. The next frame's FEC carries it if here.
        self.counters.concealed += 1;
        let fec = self.held.get(&(next + 1)).cloned();
        let decoded = match &fec {
            Some(f) => self.decoder.decode(f, &mut buf[..FRAME], true),
            None => self.decoder.decode(&[], &mut buf[..FRAME], false),
        };
        Some(first_frame(&buf[..decoded.unwrap_or(0)]))
    }

    /// Nothing queued: conceal a frame without moving on (if the frame is only late it plays
    /// when it comes), up to [`MAX_EXPAND`], then fall silent and buffer anew.
    fn expand(&mut self) -> Option<[i16; FRAME]> {
        if self.expanding >= MAX_EXPAND {
            // Quiet: when it talks again, its timing is measured afresh.
            self.next = None;
            self.jitter = Jitter::default();
            return None;
        }
        self.expanding += 1;
        self.counters.concealed += 1;
        let mut buf = [0i16; FRAME];
        let n = self.decoder.decode(&[], &mut buf, false).unwrap_or(0);
        Some(first_frame(&buf[..n]))
    }
}

/// The first 20 ms of `pcm`, padded with silence.
fn first_frame(pcm: &[i16]) -> [i16; FRAME] {
    let mut out = [0i16; FRAME];
    let n = pcm.len().min(FRAME);
    out[..n].copy_from_slice(&pcm[..n]);
    out
}

/// Everyone's 20 ms summed; a frame whose sum would pass full scale is scaled down as a whole
/// instead of clipped. With one person their audio passes through unchanged.
pub fn mix(frames: &[[i16; FRAME]]) -> [i16; FRAME] {
    let mut sum = [0i32; FRAME];
    for frame in frames {
        for (acc, &s) in sum.iter_mut().zip(frame) {
            *acc += i32::from(s);
        }
    }
    let peak = sum.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
    let limit = u32::from(i16::MAX.unsigned_abs());
    sum.map(|s| {
        let scaled = if peak > limit {
            i64::from(s) * i64::from(limit) / i64::from(peak)
        } else {
            i64::from(s)
        };
        // |scaled| <= i16::MAX by construction.
        i16::try_from(scaled).unwrap_or(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{Encoder, Source};

    fn packets(n: usize) -> Vec<Vec<u8>> {
        let mut enc = Encoder::new().unwrap();
        let mut source = Source::tone(440.0);
        (0..n)
            .map(|_| enc.encode(&source.next_frame()).unwrap())
            .collect()
    }

    #[test]
    fn frames_in_time_play_in_order_with_one_frame_held() {
        let p = packets(10);
        let t0 = Instant::now();
        let mut out = Playout::new().unwrap();
        let mut played = 0;
        for (i, f) in p.into_iter().enumerate() {
            out.push(i as u64, f, t0 + FRAME_TIME * i as u32);
            played += usize::from(out.pull().is_some());
        }
        assert_eq!(out.target(), 1);
        assert_eq!(played, 10);
        assert_eq!(
            out.counters,
            PlayoutCounters {
                decoded: 10,
                ..PlayoutCounters::default()
            }
        );
    }

    #[test]
    fn a_lost_frame_is_concealed_and_a_late_one_dropped() {
        let p = packets(8);
        let t0 = Instant::now();
        let mut out = Playout::new().unwrap();
        let mut played = 0;
        for (i, f) in p.iter().enumerate() {
            if i != 3 {
                out.push(i as u64, f.clone(), t0 + FRAME_TIME * i as u32);
            }
            played += usize::from(out.pull().is_some());
        }
        played += usize::from(out.pull().is_some());
        // Frame 3 concealed (from frame 4's FEC) when 4 came: nothing missing from the sound.
        assert_eq!(played, 9);
        assert_eq!((out.counters.decoded, out.counters.concealed), (7, 2));
        out.push(3, p[3].clone(), t0 + FRAME_TIME * 9);
        assert_eq!(out.counters.late, 1);
    }

    /// A sender whose clock runs `drift` fast (or slow), sending over a network that delays
    /// each frame by 0-`jitter_ms`, played on the call's 20 ms clock for `seconds`. Returns the
    /// queue after each pull once settled, and the counters.
    fn simulate(drift: f64, jitter_ms: u64, seconds: u32) -> (Vec<usize>, PlayoutCounters) {
        let p = packets(50);
        let t0 = Instant::now();
        let mut out = Playout::new().unwrap();
        let mut rng = 0x9e37_79b9_u32;
        let mut arrivals = Vec::new();
        let frames = (seconds as f64 * 50.0 * (1.0 + drift)) as u64;
        for pos in 0..frames {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            let sent = Duration::from_secs_f64(pos as f64 * 0.02 / (1.0 + drift));
            let delay = Duration::from_millis(u64::from(rng) % (jitter_ms + 1));
            arrivals.push((t0 + sent + delay, pos));
        }
        arrivals.sort();
        let mut queue = Vec::new();
        let mut arriving = arrivals.into_iter().peekable();
        for tick in 0..seconds * 50 {
            let now = t0 + FRAME_TIME * tick;
            while let Some((at, pos)) = arriving.next_if(|(at, _)| *at <= now) {
                out.push(pos, p[(pos % 50) as usize].clone(), at);
            }
            out.pull();
            if tick > 10 * 50 {
                queue.push(out.queued());
            }
        }
        (queue, out.counters)
    }

    #[test]
    fn the_buffer_grows_with_the_jitter_it_measures() {
        let (calm, _) = simulate(0.0, 2, 30);
        let (rough, counters) = simulate(0.0, 90, 30);
        let avg = |q: &[usize]| q.iter().sum::<usize>() as f64 / q.len() as f64;
        assert!(avg(&calm) <= 2.5, "calm network: {:.1} frames", avg(&calm));
        assert!(
            (3.0..=9.0).contains(&avg(&rough)),
            "90 ms of jitter: {:.1} frames",
            avg(&rough)
        );
        // Holding enough back, few frames had to be concealed.
        assert!(counters.concealed < counters.decoded / 20, "{counters:?}");
    }

    #[test]
    fn a_sender_whose_clock_drifts_never_makes_the_delay_grow_over_ten_minutes() {
        for drift in [0.001, -0.001] {
            let (queue, counters) = simulate(drift, 20, 600);
            let max = *queue.iter().max().unwrap();
            let late: f64 = queue[queue.len() - 500..].iter().sum::<usize>() as f64 / 500.0;
            // 0.1% is 600 ms over ten minutes; held to a few frames all along.
            assert!(max <= 6, "drift {drift}: up to {max} frames queued");
            assert!(
                late <= 4.0,
                "drift {drift}: {late:.1} frames queued at the end"
            );
            // 30 frames too many, or too few, over the ten minutes.
            if drift > 0.0 {
                assert!(counters.skipped >= 20, "{counters:?}");
            } else {
                assert!(counters.concealed >= 20, "{counters:?}");
            }
        }
    }

    #[test]
    fn a_sender_that_goes_quiet_fades_out_then_starts_again() {
        let p = packets(30);
        let t0 = Instant::now();
        let mut out = Playout::new().unwrap();
        for i in 0..10u32 {
            out.push(u64::from(i), p[i as usize].clone(), t0 + FRAME_TIME * i);
            assert!(out.pull().is_some());
        }
        // Nothing comes: five frames concealed, then silence.
        let quiet: Vec<bool> = (0..8).map(|_| out.pull().is_some()).collect();
        assert_eq!(quiet, [true, true, true, true, true, false, false, false]);
        // It comes back far ahead (it restarted): played from there.
        out.push(500, p[20].clone(), t0 + FRAME_TIME * 30);
        assert!(out.pull().is_some());
        assert_eq!(out.counters.decoded, 11);
    }

    #[test]
    fn two_people_are_summed_and_a_loud_sum_is_scaled_down_not_clipped() {
        assert_eq!(mix(&[[1000; FRAME], [-300; FRAME]]), [700; FRAME]);
        let mut wave = [0i16; FRAME];
        for (i, s) in wave.iter_mut().enumerate() {
            *s = if i % 2 == 0 { 30_000 } else { -15_000 };
        }
        let mixed = mix(&[wave, wave]);
        assert_eq!(mixed.iter().max(), Some(&i16::MAX));
        assert_eq!(mixed[1], -16_383, "half the peak, as in the sum");
        assert_eq!(mix(&[wave]), wave, "one person passes through");
    }
}
