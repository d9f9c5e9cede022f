//! bench/table.py and bench/charts.py on the recorded run's raw lines (docs/bench/results.txt):
//! the table, the four charts, and `--compare` flagging a change that costs performance. They
//! read figures, never measure any.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn recorded() -> PathBuf {
    repo().join("docs/bench/results.txt")
}

/// A directory of this test's own under the system's temporary directory.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sotto-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn python(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new("python3")
        .args(args)
        .current_dir(repo())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python3 {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The recorded lines with every one-thread Sotto ping-pong's throughput scaled by `factor`.
fn scaled(factor: f64) -> String {
    let text = std::fs::read_to_string(recorded()).unwrap();
    text.lines()
        .map(|line| {
            if !(line.starts_with("scenario=pingpong server=sotto ") && line.contains("threads=1"))
            {
                return line.to_owned();
            }
            line.split(' ')
                .map(|kv| match kv.strip_prefix("msgs_per_s=") {
                    Some(v) => format!("msgs_per_s={:.0}", v.parse::<f64>().unwrap() * factor),
                    None => kv.to_owned(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_table_has_a_column_per_relay_and_a_row_per_scenario() {
    let table = python(&["bench/table.py".as_ref(), recorded().as_os_str()]);
    let header = table
        .lines()
        .find(|l| l.starts_with("| scenario |"))
        .expect("a relay table");
    for column in ["Sotto", "Sotto, 2 threads", "matchbox_server", "PeerJS"] {
        assert!(header.contains(&format!("| {column} |")), "{header}");
    }
    for row in [
        "| ping-pong, 2,000 clients, 1 KiB |",
        "| open loop, 2,000 clients, 1 KiB, at 50% of that relay's ping-pong rate |",
        "| idle, 10,000 joined connections: RSS per connection |",
    ] {
        assert!(table.contains(row), "no row {row}");
    }
}

#[test]
fn the_charts_are_four_svg_files_naming_every_relay() {
    let out = scratch("charts");
    python(&[
        "bench/charts.py".as_ref(),
        recorded().as_os_str(),
        out.as_os_str(),
        "test".as_ref(),
    ]);
    for name in ["latency", "throughput", "cpu", "memory"] {
        let svg = std::fs::read_to_string(out.join(format!("{name}.svg"))).unwrap();
        assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
        for relay in ["Sotto", "matchbox_server", "PeerJS"] {
            assert!(
                svg.contains(&format!(">{relay}<")),
                "{name}.svg lacks {relay}"
            );
        }
        // Bars or lines drawn from the figures, not an empty frame.
        assert!(
            svg.matches("<rect ").count() > 8 || svg.contains("<polyline"),
            "{name}.svg"
        );
    }
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn compare_flags_a_third_less_throughput_and_nothing_when_unchanged() {
    let out = scratch("compare");
    let same = python(&[
        "bench/table.py".as_ref(),
        "--compare".as_ref(),
        recorded().as_os_str(),
        recorded().as_os_str(),
    ]);
    assert!(
        same.contains("| ping-pong 2,000 clients 1 KiB: msg/s |"),
        "{same}"
    );
    assert!(
        !same.contains("worse") && !same.contains("better"),
        "{same}"
    );

    let slower = out.join("slower.txt");
    std::fs::write(&slower, scaled(0.67)).unwrap();
    let compared = python(&[
        "bench/table.py".as_ref(),
        "--compare".as_ref(),
        recorded().as_os_str(),
        slower.as_os_str(),
    ]);
    let line = compared
        .lines()
        .find(|l| l.starts_with("| ping-pong 2,000 clients 1 KiB: msg/s |"))
        .unwrap();
    assert!(line.ends_with("-33% **worse** |"), "{line}");
    let _ = std::fs::remove_dir_all(out);
}
