// Who is speaking, computed in this page from the audio it decodes (nothing about it travels:
// the relay and the peers learn nothing). The rule is pure and tested under node; `AudioLevels`
// feeds it from WebAudio.

/** Loudness (RMS of samples in -1..1) above which someone is speaking, and below which they
 *  have stopped; the gap keeps the ring from flickering. */
export const ON_LEVEL = 0.02;
export const OFF_LEVEL = 0.01;
/** How long the level must stay low before the ring goes. */
export const HOLD_MS = 600;

/** The root mean square of `samples`. */
export function rms(samples) {
  let sum = 0;
  for (const s of samples) sum += s * s;
  return samples.length ? Math.sqrt(sum / samples.length) : 0;
}

/** One person's speaking state from their audio level over time. */
export class SpeakingDetector {
  constructor() {
    this.speaking = false;
    this.quietSince = null;
  }

  /** The level at `now` (ms); returns whether they are speaking now. */
  level(level, now) {
    if (level >= ON_LEVEL) {
      this.speaking = true;
      this.quietSince = null;
    } else if (this.speaking && level < OFF_LEVEL) {
      this.quietSince ??= now;
      if (now - this.quietSince >= HOLD_MS) {
        this.speaking = false;
        this.quietSince = null;
      }
    } else if (this.speaking) {
      this.quietSince = null;
    }
    return this.speaking;
  }
}

/** How often the levels are read. */
const EVERY_MS = 100;

/** Reads each person's decoded audio and says when they start and stop speaking. */
export class AudioLevels {
  /** @param {(peer: string, speaking: boolean) => void} onChange */
  constructor(onChange) {
    this.onChange = onChange;
    this.watched = new Map(); // peer -> { source, analyser, samples, detector }
    this.context = null;
    this.timer = null;
  }

  /** Starts listening to `peer`'s audio track. */
  watch(peer, track) {
    this.unwatch(peer);
    try {
      this.context ??= new AudioContext();
      // Allowed: the page was clicked (Join) before any call.
      this.context.resume().catch(() => {});
      const source = this.context.createMediaStreamSource(new MediaStream([track]));
      const analyser = this.context.createAnalyser();
      analyser.fftSize = 1024;
      source.connect(analyser);
      this.watched.set(peer, { source, analyser, samples: new Float32Array(analyser.fftSize), detector: new SpeakingDetector(), speaking: false });
    } catch {
      return; // no WebAudio here: no ring, the call goes on
    }
    this.timer ??= setInterval(() => this.read(), EVERY_MS);
  }

  read() {
    const now = performance.now();
    for (const [peer, w] of this.watched) {
      w.analyser.getFloatTimeDomainData(w.samples);
      const speaking = w.detector.level(rms(w.samples), now);
      if (speaking !== w.speaking) {
        w.speaking = speaking;
        this.onChange(peer, speaking);
      }
    }
  }

  unwatch(peer) {
    const w = this.watched.get(peer);
    if (!w) return;
    w.source.disconnect();
    this.watched.delete(peer);
  }

  /** The call is over: nothing is listened to any more. */
  close() {
    clearInterval(this.timer);
    this.timer = null;
    for (const peer of [...this.watched.keys()]) this.unwatch(peer);
    this.context?.close().catch(() => {});
    this.context = null;
  }
}
