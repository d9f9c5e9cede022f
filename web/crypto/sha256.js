// SHA-256 (FIPS 180-4), incremental: WebCrypto's digest takes its whole input at once, and a file
// of gigabytes must be hashed as it is read or written, one chunk at a time, without holding it.
// Pure: no DOM, runs in the page, the worker and node. 32-bit arithmetic throughout (`| 0` keeps
// every sum an int32), 64-byte blocks read straight from the caller's bytes, nothing allocated
// per block.

// FIPS 180-4 §4.2.2: the first 32 bits of the fractional parts of the cube roots of the first 64
// primes (Int32Array wraps the ones above 2^31, which is what the arithmetic below wants).
const K = Int32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

// §5.3.3: the initial hash value.
const H0 = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/** §6.2.2: folds the 64-byte blocks of `p` from `at` up to `end` into the state `h` (`w` is
 *  scratch); returns where the blocks stopped. The state lives in locals across the blocks,
 *  and Ch and Maj take the forms with one operation fewer (`g ^ (e & (f ^ g))`,
 *  `(a & b) | (c & (a | b))`): this loop is what a file's hashing costs. */
function compress(h, w, p, at, end) {
  let h0 = h[0];
  let h1 = h[1];
  let h2 = h[2];
  let h3 = h[3];
  let h4 = h[4];
  let h5 = h[5];
  let h6 = h[6];
  let h7 = h[7];
  for (; at + 64 <= end; at += 64) {
    for (let i = 0, j = at; i < 16; i++, j += 4) w[i] = (p[j] << 24) | (p[j + 1] << 16) | (p[j + 2] << 8) | p[j + 3];
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15];
      const y = w[i - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let a = h0;
    let b = h1;
    let c = h2;
    let d = h3;
    let e = h4;
    let f = h5;
    let g = h6;
    let hh = h7;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      // Five int32s add up to less than 2^53: exact before `| 0` takes them mod 2^32.
      const t1 = (hh + S1 + (g ^ (e & (f ^ g))) + K[i] + w[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) | (c & (a | b)))) | 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
    h5 = (h5 + f) | 0;
    h6 = (h6 + g) | 0;
    h7 = (h7 + hh) | 0;
  }
  h[0] = h0;
  h[1] = h1;
  h[2] = h2;
  h[3] = h3;
  h[4] = h4;
  h[5] = h5;
  h[6] = h6;
  h[7] = h7;
  return at;
}

export class Sha256 {
  #h = Int32Array.from(H0);
  #w = new Int32Array(64);
  // The start of a block that the bytes so far did not fill.
  #block = new Uint8Array(64);
  #buffered = 0;
  // Bytes hashed so far: a Number counts exactly up to 2^53, far beyond any file.
  #length = 0;
  #finished = false;

  /** Adds `bytes` (a Uint8Array of any length, empty too) to what is hashed. */
  update(bytes) {
    if (this.#finished) throw new Error('this SHA-256 is finished: digest() was called');
    if (!(bytes instanceof Uint8Array)) throw new TypeError('SHA-256 hashes a Uint8Array');
    const n = bytes.length;
    let at = 0;
    this.#length += n;
    if (this.#buffered > 0) {
      const take = Math.min(64 - this.#buffered, n);
      this.#block.set(bytes.subarray(0, take), this.#buffered);
      this.#buffered += take;
      at = take;
      if (this.#buffered < 64) return this;
      compress(this.#h, this.#w, this.#block, 0, 64);
      this.#buffered = 0;
    }
    at = compress(this.#h, this.#w, bytes, at, n);
    if (at < n) {
      this.#block.set(bytes.subarray(at), 0);
      this.#buffered = n - at;
    }
    return this;
  }

  /** The 32-byte digest of everything updated; the hash is finished (update and digest throw). */
  digest() {
    if (this.#finished) throw new Error('this SHA-256 is finished: digest() was called');
    this.#finished = true;
    // §5.1.1: a 1 bit, zeros up to 56 mod 64, then the length in bits as a big-endian u64.
    const block = this.#block;
    let n = this.#buffered;
    block[n++] = 0x80;
    if (n > 56) {
      block.fill(0, n);
      compress(this.#h, this.#w, block, 0, 64);
      n = 0;
    }
    block.fill(0, n, 56);
    const hi = Math.floor(this.#length / 0x20000000); // length * 8 / 2^32
    const lo = (this.#length % 0x20000000) * 8;
    for (let i = 0; i < 4; i++) {
      block[56 + i] = hi >>> (24 - 8 * i);
      block[60 + i] = lo >>> (24 - 8 * i);
    }
    compress(this.#h, this.#w, block, 0, 64);
    const out = new Uint8Array(32);
    for (let i = 0; i < 8; i++) {
      const v = this.#h[i];
      out[4 * i] = v >>> 24;
      out[4 * i + 1] = v >>> 16;
      out[4 * i + 2] = v >>> 8;
      out[4 * i + 3] = v;
    }
    return out;
  }
}
