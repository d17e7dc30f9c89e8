//! The table both modes print: one [`Row`] per phase, and the brokers' log
//! lines at WARN or ERROR.

use std::time::Duration;

use kraft_testkit::bench_support::{ms, percentile};

use crate::cpu::CpuUse;

/// One line of the final table.
pub struct Row {
    pub phase: String,
    pub messages: u64,
    pub bytes: u64,
    /// Produce: first send -> last delivery report; consume: assign -> last
    /// message.
    pub elapsed: Duration,
    /// Sorted send -> delivery report latencies (empty for consume).
    pub latencies: Vec<Duration>,
    pub cpu: CpuUse,
    pub note: String,
}

impl Row {
    pub fn header() {
        println!(
            "{:<33} {:>8} {:>8} {:>9} {:>10} {:>10} {:>8} {:>8}",
            "phase", "msgs", "MB/s", "msgs/s", "p50", "p99", "client", "broker"
        );
    }

    pub fn print(&self) {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let (p50, p99) = if self.latencies.is_empty() {
            ("-".to_string(), "-".to_string())
        } else {
            (
                ms(percentile(&self.latencies, 0.5)),
                ms(percentile(&self.latencies, 0.99)),
            )
        };
        println!(
            "{:<33} {:>8} {:>8.1} {:>9.0} {:>10} {:>10} {:>7.0}% {:>7.0}%  {}",
            self.phase,
            self.messages,
            self.bytes as f64 / 1e6 / secs,
            self.messages as f64 / secs,
            p50,
            p99,
            self.cpu.client * 100.0,
            self.cpu.broker * 100.0,
            self.note
        );
    }
}

/// Prints each row as it comes and keeps it for the final table; a failed
/// phase prints its error. Returns how many messages the phase delivered.
pub fn record(rows: &mut Vec<Row>, row: anyhow::Result<Row>, phase: &str) -> u64 {
    match row {
        Ok(row) => {
            row.print();
            let delivered = row.messages;
            rows.push(row);
            delivered
        }
        Err(e) => {
            println!("{phase}: FAILED: {e:#}");
            0
        }
    }
}

pub fn size_name(bytes: usize) -> String {
    if bytes % 1024 == 0 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

/// Log lines at WARN or ERROR, and panics.
pub fn complaints(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("panicked"))
        .map(str::to_string)
        .collect()
}

/// The last `n` lines of a log, indented.
pub fn print_tail(log: &str, n: usize) {
    let lines: Vec<&str> = log.lines().collect();
    for line in &lines[lines.len().saturating_sub(n)..] {
        println!("  {line}");
    }
}
