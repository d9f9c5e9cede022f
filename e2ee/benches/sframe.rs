//! The SFrame layer beside raw AES-128-GCM on the same bytes, sealing and opening, for an Opus
//! frame (60 B), a typical video packet's worth (1,200 B) and a video key frame (30 KB).
//!
//! `cargo bench -p sotto-e2ee --bench sframe`. The ratio (frame layer / raw) is the overhead of
//! the header, KID checks, replay window, prefix handling and output allocation; keys are
//! derived once per KID, so the ratio should stay near 1.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sotto_e2ee::{BaseKey, FrameDecryptor, FrameEncryptor, Role, Stream};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// A frame of `len` bytes: Opus for 60 B (TOC first), a VP8 delta frame otherwise (P bit 1).
fn frame(len: usize) -> (Stream, Vec<u8>) {
    let mut f: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    if len <= 100 {
        f[0] = 0x78;
        (Stream::Audio, f)
    } else {
        f[0] = 0x31;
        (Stream::Video, f)
    }
}

fn encryptor(stream: Stream) -> FrameEncryptor {
    FrameEncryptor::new(BaseKey::from_bytes([1; 32]), Role::Offerer, stream, 0)
        .expect("generation 0 is valid")
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("sframe");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_millis(500));
    for len in [60usize, 1200, 30_000] {
        let (stream, plain) = frame(len);
        group.throughput(Throughput::Bytes(len as u64));

        let raw = Aes128Gcm::new(&[9u8; 16].into());
        let nonce = Nonce::from([3u8; 12]);
        group.bench_with_input(
            BenchmarkId::new("raw_aes128gcm_seal", len),
            &plain,
            |b, p| b.iter(|| raw.encrypt(&nonce, black_box(p.as_slice()))),
        );
        let raw_ct = raw.encrypt(&nonce, plain.as_slice()).expect("small input");
        group.bench_with_input(
            BenchmarkId::new("raw_aes128gcm_open", len),
            &raw_ct,
            |b, ct| b.iter(|| raw.decrypt(&nonce, black_box(ct.as_slice()))),
        );

        let mut enc = encryptor(stream);
        group.bench_with_input(BenchmarkId::new("sframe_seal", len), &plain, |b, p| {
            b.iter(|| enc.encrypt(black_box(p)))
        });

        // Opening needs a fresh counter per frame (the replay window refuses repeats):
        // frames are made in untimed batches and only their decryption is timed.
        group.bench_with_input(BenchmarkId::new("sframe_open", len), &plain, |b, p| {
            b.iter_custom(|iters| {
                let mut enc = encryptor(stream);
                let mut dec =
                    FrameDecryptor::new(BaseKey::from_bytes([1; 32]), Role::Offerer, stream);
                // Derive the KID's key before timing, as a running call has.
                dec.decrypt(&enc.encrypt(p).expect("sealable"))
                    .expect("opens");
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let batch = left.min(1000);
                    let frames: Vec<Vec<u8>> = (0..batch)
                        .map(|_| enc.encrypt(p).expect("sealable"))
                        .collect();
                    let start = Instant::now();
                    for f in &frames {
                        black_box(dec.decrypt(black_box(f)).expect("opens"));
                    }
                    total += start.elapsed();
                    left -= batch;
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
