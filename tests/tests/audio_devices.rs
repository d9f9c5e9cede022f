//! The default microphone and speakers through cpal, on a real clocked device: a PulseAudio
//! null sink is the speakers and its monitor the microphone, so whatever the client plays
//! comes back into its microphone. A tone sent to it therefore returns to the sender.
//!
//! The test starts PulseAudio (Debian's `pulseaudio`, installed by the test command) when none
//! is running.

use sotto_client::audio::{Sink, Source};
use sotto_tests::*;
use std::process::Command;

fn pactl(args: &[&str]) -> bool {
    Command::new("pactl")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

/// A PulseAudio server whose default sink is a null sink and default source its monitor.
fn null_sink_loopback() {
    if !pactl(&["info"]) {
        let started = Command::new("pulseaudio")
            .args(["-D", "--exit-idle-time=-1", "--disallow-exit", "-n"])
            .args([
                "--load=module-native-protocol-unix",
                "--load=module-always-sink",
            ])
            .status()
            .expect("pulseaudio from Debian's package (the test command installs it)");
        assert!(started.success(), "pulseaudio did not start");
    }
    let listed = Command::new("pactl")
        .args(["list", "short", "sinks"])
        .output()
        .unwrap();
    if !String::from_utf8_lossy(&listed.stdout).contains("sotto_null") {
        assert!(pactl(&[
            "load-module",
            "module-null-sink",
            "sink_name=sotto_null"
        ]));
    }
    assert!(pactl(&["set-default-sink", "sotto_null"]));
    assert!(pactl(&["set-default-source", "sotto_null.monitor"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tone_played_to_the_speakers_comes_back_through_the_microphone() {
    null_sink_loopback();
    let relay = Relay::start().await;
    let link = link_to(relay.addr);
    let (mic, speakers, devices) = sotto_client::devices::open(true, true).expect("devices");
    let (sender, device_side) = tokio::join!(
        run_client(link.clone(), 440.0, 3.0),
        run_client_with(
            link,
            Source::Device(mic.unwrap()),
            Some(Sink::Device(speakers.unwrap())),
            3.0,
            None
        )
    );
    drop(devices);
    assert_eq!(device_side.counters.frames_failed, 0);
    assert!(
        device_side.counters.frames_received >= 100,
        "{:?}",
        device_side.counters
    );
    // What the sender heard is its own tone, back through the device side's speakers and mic.
    let heard = &sender.heard[sender.heard.len().min(24_000)..];
    let (p440, p880) = (tone_power(heard, 440.0), tone_power(heard, 880.0));
    assert!(p440 > 1.0, "no 440 Hz came back: power {p440}");
    assert!(
        p440 > 100.0 * p880.max(1e-9),
        "440 Hz {p440} vs 880 Hz {p880}"
    );
}
