//! File transfer throughput of the native client: two peer connections of this process (the
//! webrtc crate, as `sotto call` uses it, on loopback) joined by the pair's negotiated data
//! channel, carrying a file either sealed (the client's conversation: AES-256-GCM per message,
//! SHA-256 of the whole file on both ends, 16,000-byte chunks) or as raw 16,000-byte chunks, with
//! the same 1 MiB send buffer. Both ends run in this process, so each figure pays for sending and
//! receiving. Rounds alternate the two ways; prints the medians as one `key=value` line
//! (bench/table.py). Never part of the test suite.

use clap::Parser;
use sotto_client::conversation::{Conversation, Event, Limits, Output};
use sotto_client::rtc::{DataEvent, NetworkConfig, Rtc, RtcEvent, RtcEvents};
use sotto_e2ee::{EphemeralKey, Handshake, LinkSecret, Received};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

#[derive(Parser)]
struct Args {
    /// Megabytes per transfer.
    #[arg(long, default_value_t = 64)]
    megabytes: usize,
    /// Rounds (each moves the file raw and sealed).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

const CHUNK: usize = 16_000;

type Pair = (
    Arc<Rtc>,
    mpsc::Receiver<DataEvent>,
    Arc<Rtc>,
    mpsc::Receiver<DataEvent>,
);

/// Two connected peer connections with their data channels open.
async fn connect() -> Pair {
    let net = NetworkConfig {
        loopback_only: true,
        ..Default::default()
    };
    let (
        mut a,
        RtcEvents {
            control: ca,
            data: da,
            ..
        },
    ) = Rtc::new(&net).await.expect("rtc");
    let (
        mut b,
        RtcEvents {
            control: cb,
            data: db,
            ..
        },
    ) = Rtc::new(&net).await.expect("rtc");
    let offer = a.create_offer().await.expect("offer");
    let answer = b.answer(offer).await.expect("answer");
    a.accept_answer(answer).await.expect("accept");
    let (a, b) = (Arc::new(a), Arc::new(b));
    for (mut from, to) in [(ca, Arc::clone(&b)), (cb, Arc::clone(&a))] {
        tokio::spawn(async move {
            while let Some(e) = from.recv().await {
                if let RtcEvent::LocalCandidate(c) = e {
                    let _ = to.add_candidate(c).await;
                }
            }
        });
    }
    let (da, db) = (opened(da).await, opened(db).await);
    (a, da, b, db)
}

async fn opened(mut rx: mpsc::Receiver<DataEvent>) -> mpsc::Receiver<DataEvent> {
    while let Some(e) = rx.recv().await {
        if matches!(e, DataEvent::Open) {
            return rx;
        }
    }
    panic!("the data channel never opened");
}

/// Seconds to move `content` as raw chunks.
async fn raw(content: Arc<Vec<u8>>) -> f64 {
    let (a, _da, _b, mut db) = connect().await;
    let total = content.len();
    let receiver = tokio::spawn(async move {
        let mut got = 0;
        while got < total {
            match db.recv().await {
                Some(DataEvent::Message(m)) => got += m.len(),
                Some(_) => {}
                None => panic!("the channel closed"),
            }
        }
        Instant::now()
    });
    let writer = a.data_writer();
    let start = Instant::now();
    for chunk in content.chunks(CHUNK) {
        writer.send(chunk.to_vec()).await.expect("send");
    }
    let done = receiver.await.expect("receiver");
    done.duration_since(start).as_secs_f64()
}

/// The two ends of one pair's sealed data channel (a full handshake, as a call makes it).
fn conversations() -> (Conversation, Conversation) {
    let secret = LinkSecret::generate().expect("secret");
    let key = || EphemeralKey::generate().expect("key");
    let (mut o, commit) = Handshake::offerer(&secret, key());
    let mut a = Handshake::answerer(&secret, key());
    let Ok(Received::Reply(k)) = a.receive(&commit) else {
        panic!("KEY")
    };
    let Ok(Received::KeysReady {
        reply: Some(reveal),
    }) = o.receive(&k)
    else {
        panic!("REVEAL")
    };
    a.receive(&reveal).expect("reveal");
    a.receive(&o.seal(b"offer").expect("seal")).expect("offer");
    o.receive(&a.seal(b"answer").expect("seal"))
        .expect("answer");
    let limits = Limits {
        accept_below: u64::MAX,
        max_size: u64::MAX,
    };
    (
        Conversation::new(o.data_channel("fp o", "fp a").expect("data"), limits),
        Conversation::new(a.data_channel("fp o", "fp a").expect("data"), limits),
    )
}

/// Seconds to move `content` sealed: from the offer to the file checked at the receiver.
async fn sealed(content: Arc<Vec<u8>>) -> f64 {
    let (a, mut da, b, mut db) = connect().await;
    let (mut tx, mut rx) = conversations();
    let (wa, wb) = (a.data_writer(), b.data_writer());
    let receiver = tokio::spawn(async move {
        loop {
            let Some(DataEvent::Message(m)) = db.recv().await else {
                continue;
            };
            let mut out = Vec::new();
            rx.receive(&m, &mut out);
            let mut done = false;
            for o in out {
                match o {
                    Output::Send(bytes) => wb.send(bytes).await.expect("send"),
                    Output::Event(Event::FileReceived { .. }) => done = true,
                    Output::Event(Event::FileStopped { .. } | Event::Tampered(_)) => {
                        panic!("the file stopped")
                    }
                    _ => {}
                }
            }
            if done {
                return Instant::now();
            }
        }
    });
    let start = Instant::now();
    let mut out = Vec::new();
    tx.offer_file("bench.bin", content.len() as u64, &mut out)
        .expect("offer");
    let mut started = false;
    loop {
        for o in out.drain(..) {
            if let Output::Send(bytes) = o {
                wa.send(bytes).await.expect("send");
            }
        }
        match tx.wants_chunk() {
            Some((id, offset, max)) => {
                started = true;
                let at = usize::try_from(offset).expect("offset");
                let end = (at + max).min(content.len());
                tx.send_chunk(id, &content[at..end], &mut out)
                    .expect("chunk");
            }
            // Every chunk and the end are out.
            None if started => break,
            // Waits for the accept.
            None => match da.recv().await {
                Some(DataEvent::Message(m)) => tx.receive(&m, &mut out),
                Some(_) => {}
                None => panic!("the channel closed"),
            },
        }
    }
    let done = receiver.await.expect("receiver");
    done.duration_since(start).as_secs_f64()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

// Two worker threads, as `sotto call` has on this machine's two cores.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let bytes = args.megabytes * 1_000_000;
    let mut content = vec![0u8; bytes];
    let mut x: u32 = 0x9e37_79b9;
    for b in &mut content {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let content = Arc::new(content);
    let (mut raw_mbps, mut sealed_mbps) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        let order = if round % 2 == 1 {
            [true, false]
        } else {
            [false, true]
        };
        for is_sealed in order {
            let s = if is_sealed {
                sealed(Arc::clone(&content)).await
            } else {
                raw(Arc::clone(&content)).await
            };
            let mbps = bytes as f64 / 1e6 / s;
            if is_sealed {
                sealed_mbps.push(mbps);
            } else {
                raw_mbps.push(mbps);
            }
        }
    }
    println!(
        "scenario=file-transfer browser=native megabytes={} rounds={} raw_mbps={:.1} sealed_mbps={:.1}",
        args.megabytes,
        args.rounds,
        median(raw_mbps),
        median(sealed_mbps)
    );
}
