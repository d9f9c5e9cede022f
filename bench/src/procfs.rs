//! A process's memory and CPU time from `/proc`, so every result can say what the server used
//! and whether the load generator itself was the bottleneck.

use std::time::Instant;

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resident memory now, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// The most resident memory the process ever had, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// CPU time of a process (all its threads), in seconds, or a share of one core: in the
/// process's own code (user) and in the kernel on its behalf (system: for a relay on loopback,
/// mostly TCP, which no relay can do without).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cpu {
    /// In the process's own code.
    pub user: f64,
    /// In the kernel, for the process.
    pub system: f64,
}

impl Cpu {
    /// User and system together.
    pub fn total(&self) -> f64 {
        self.user + self.system
    }
}

/// CPU time a process has used so far. `/proc` counts in USER_HZ ticks, which Linux fixes at
/// 100 for this interface.
pub fn cpu_seconds(pid: u32) -> Option<Cpu> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis are
    // plain numbers: state is the first, utime the 12th and stime the 13th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Cpu {
        user: utime as f64 / 100.0,
        system: stime as f64 / 100.0,
    })
}

/// The share of one core a process used between [`CpuMeter::start`] and [`CpuMeter::share`].
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    pid: u32,
    cpu: Cpu,
    at: Instant,
}

impl CpuMeter {
    /// Starts measuring `pid`.
    pub fn start(pid: u32) -> Option<Self> {
        Some(Self {
            pid,
            cpu: cpu_seconds(pid)?,
            at: Instant::now(),
        })
    }

    /// CPU seconds used per wall-clock second since the start (1.0 = one whole core).
    pub fn share(&self) -> Option<Cpu> {
        let now = cpu_seconds(self.pid)?;
        let wall = self.at.elapsed().as_secs_f64();
        Some(Cpu {
            user: (now.user - self.cpu.user) / wall,
            system: (now.system - self.cpu.system) / wall,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_memory_and_cpu() {
        let me = std::process::id();
        let rss = rss_kib(me).expect("VmRSS");
        assert!(rss > 0);
        assert!(peak_rss_kib(me).expect("VmHWM") >= rss);
        let meter = CpuMeter::start(me).expect("stat");
        // Burn a little CPU so the share is measurably above zero.
        let until = Instant::now() + std::time::Duration::from_millis(200);
        let mut x = 0u64;
        while Instant::now() < until {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let share = meter.share().expect("stat");
        // A loop in user code: its time is the process's own.
        assert!(share.user > 0.2 && share.total() < 2.5, "share {share:?}");
    }

    #[test]
    fn a_missing_process_reads_as_none() {
        assert_eq!(rss_kib(u32::MAX), None);
        assert_eq!(cpu_seconds(u32::MAX), None);
    }
}
