//! CPU use of the client (this process) and of the broker processes over
//! one phase, from `/proc/<pid>/stat` at the phase's start and end.

use std::process::Command;
use std::time::Instant;

/// utime + stime, in clock ticks, from a `/proc/.../stat` file.
fn cpu_ticks(stat: &str) -> u64 {
    let text = std::fs::read_to_string(stat).unwrap_or_default();
    // Fields after the parenthesised command name start at field 3.
    let rest = text.rfind(')').map_or("", |i| &text[i + 1..]);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    field(14).unwrap_or(0) + field(15).unwrap_or(0)
}

pub fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU seconds per wall second of the client (this process, every thread)
/// and of the brokers (summed) over one phase: 1.0 is one core kept busy.
#[derive(Clone, Copy, Default)]
pub struct CpuUse {
    pub client: f64,
    pub broker: f64,
}

pub struct CpuWindow {
    broker_stats: Vec<String>,
    start: Instant,
    client: u64,
    broker: u64,
}

impl CpuWindow {
    /// Starts counting for this process and the processes `broker_pids`.
    pub fn open(broker_pids: &[u32]) -> CpuWindow {
        let broker_stats: Vec<String> = broker_pids
            .iter()
            .map(|pid| format!("/proc/{pid}/stat"))
            .collect();
        CpuWindow {
            start: Instant::now(),
            client: cpu_ticks("/proc/self/stat"),
            broker: broker_stats.iter().map(|s| cpu_ticks(s)).sum(),
            broker_stats,
        }
    }

    pub fn close(&self, ticks_per_second: f64) -> CpuUse {
        let wall = self.start.elapsed().as_secs_f64() * ticks_per_second;
        let broker: u64 = self.broker_stats.iter().map(|s| cpu_ticks(s)).sum();
        CpuUse {
            client: (cpu_ticks("/proc/self/stat") - self.client) as f64 / wall,
            broker: broker.saturating_sub(self.broker) as f64 / wall,
        }
    }
}
