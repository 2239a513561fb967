//! Progress of one `download` call, across all its files, reported at a pace a UI can draw.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Reports closer together than this are skipped (at most ~10 a second).
const REPORT_EVERY: Duration = Duration::from_millis(100);
/// Speed is measured over this much recent time, so it follows changes but does not jitter.
const SPEED_WINDOW: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Bytes of the requested files on disk and checked, including complete files and parts kept
    /// from an earlier attempt; `total_bytes` when the download is complete.
    pub done_bytes: u64,
    pub total_bytes: u64,
    /// The repo path of the file being fetched (or checked, when resuming).
    pub file: String,
    /// Network bytes per second over the last few seconds; 0 until measured.
    pub bytes_per_sec: u64,
}

/// Counts bytes and calls the callback, rate-limited.
pub(super) struct Meter<F> {
    report: F,
    progress: Progress,
    /// Bytes received from the network in this call: only these make the speed.
    fetched: u64,
    last_report: Option<Instant>,
    samples: VecDeque<(Instant, u64)>,
}

impl<F: FnMut(Progress)> Meter<F> {
    pub fn new(total_bytes: u64, report: F) -> Self {
        Meter {
            report,
            progress: Progress {
                done_bytes: 0,
                total_bytes,
                file: String::new(),
                bytes_per_sec: 0,
            },
            fetched: 0,
            last_report: None,
            samples: VecDeque::new(),
        }
    }

    pub fn start_file(&mut self, file: &str) {
        file.clone_into(&mut self.progress.file);
        self.tick();
    }

    /// Bytes already on disk (a complete file, or a kept part re-hashed).
    pub fn checked(&mut self, bytes: u64) {
        self.progress.done_bytes += bytes;
        self.tick();
    }

    pub fn fetched(&mut self, bytes: u64) {
        self.progress.done_bytes += bytes;
        self.fetched += bytes;
        self.tick();
    }

    /// A kept part was thrown away (the server ignored the range): its bytes are not done.
    pub fn discarded(&mut self, bytes: u64) {
        self.progress.done_bytes = self.progress.done_bytes.saturating_sub(bytes);
    }

    /// The last report, sent whatever the pace, so a UI sees the final count.
    pub fn finish(&mut self) {
        self.report(Instant::now());
    }

    fn tick(&mut self) {
        let now = Instant::now();
        if self
            .last_report
            .is_none_or(|last| now.duration_since(last) >= REPORT_EVERY)
        {
            self.report(now);
        }
    }

    fn report(&mut self, now: Instant) {
        self.samples.push_back((now, self.fetched));
        // Keep one sample at least a window old, if there is one, to measure from.
        while self
            .samples
            .get(1)
            .is_some_and(|&(at, _)| now.duration_since(at) >= SPEED_WINDOW)
        {
            self.samples.pop_front();
        }
        let (since, fetched_then) = self.samples[0];
        let seconds = now.duration_since(since).as_secs_f64();
        self.progress.bytes_per_sec = if seconds > 0.0 {
            ((self.fetched - fetched_then) as f64 / seconds) as u64
        } else {
            0
        };
        self.last_report = Some(now);
        (self.report)(self.progress.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_rate_limited_and_the_last_one_is_complete() {
        let mut reports = Vec::new();
        let began = Instant::now();
        {
            let mut meter = Meter::new(10_000, |p| reports.push(p));
            meter.start_file("a.gguf");
            meter.checked(4_000);
            for _ in 0..6_000 {
                meter.fetched(1);
            }
            meter.finish();
        }
        // Bound by the time the loop took, so a slow machine does not fail the test.
        let allowed = 2 + (began.elapsed().as_millis() / 100) as usize;
        assert!(reports.len() <= allowed, "{} reports", reports.len());
        let last = reports.last().unwrap();
        assert_eq!(
            (last.done_bytes, last.total_bytes, last.file.as_str()),
            (10_000, 10_000, "a.gguf")
        );
        assert!(reports
            .windows(2)
            .all(|w| w[0].done_bytes <= w[1].done_bytes));
    }
}
