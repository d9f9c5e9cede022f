//! What the native client's SDP offers (DESIGN §4.7): Opus, a DTLS fingerprint, and never the
//! `ssrc-audio-level` header extension, which would put each packet's loudness in clear.

use sotto_client::rtc::{NetworkConfig, Rtc};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offer_has_opus_and_a_fingerprint_and_no_audio_level_extension() {
    let net = NetworkConfig {
        loopback_only: true,
        ..NetworkConfig::default()
    };
    let (mut offerer, _events) = Rtc::new(&net).await.unwrap();
    let offer = offerer.create_offer().await.unwrap();
    assert!(offer.contains("opus/48000/2"), "{offer}");
    assert!(sotto_e2ee::dtls_fingerprint(&offer).is_some_and(|fp| fp.starts_with("sha-256 ")));
    assert!(!offer.contains("ssrc-audio-level"), "{offer}");

    // The answer to it as well.
    let (mut answerer, _events2) = Rtc::new(&net).await.unwrap();
    assert!(sotto_client::rtc::carries_data_channel(&offer), "{offer}");
    let answer = answerer.answer(offer).await.unwrap();
    assert!(sotto_client::rtc::carries_data_channel(&answer), "{answer}");
    assert!(!answer.contains("ssrc-audio-level"), "{answer}");
    assert!(answer.contains("opus/48000/2"));
    offerer.accept_answer(answer).await.unwrap();
}

#[test]
fn an_sdp_without_an_application_section_or_with_it_rejected_carries_no_data_channel() {
    let audio =
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";
    assert!(!sotto_client::rtc::carries_data_channel(audio));
    let rejected = format!("{audio}m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n");
    assert!(!sotto_client::rtc::carries_data_channel(&rejected));
    let offered = format!("{audio}m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n");
    assert!(sotto_client::rtc::carries_data_channel(&offered));
}
