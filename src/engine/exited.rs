//! Whether an engine thread has finished and freed its context. A shutdown waits for it before
//! the process exits: a llama.cpp context torn down by the exit itself, while its thread still
//! runs, aborts on CUDA ("driver shutting down") and leaves Metal command buffers in flight.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Cloneable view of one engine thread's end.
#[derive(Clone, Default)]
pub struct Exited(Arc<(Mutex<bool>, Condvar)>);

impl Exited {
    /// Waits up to `timeout` for the thread to end; whether it did.
    pub fn wait(&self, timeout: Duration) -> bool {
        let (done, ended) = &*self.0;
        let deadline = Instant::now() + timeout;
        let mut done = done.lock().unwrap_or_else(|e| e.into_inner());
        while !*done {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            done = ended
                .wait_timeout(done, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// A guard for the thread itself: marks the end when dropped, panics included.
    pub(super) fn on_drop(self) -> MarkExited {
        MarkExited(self)
    }
}

pub(super) struct MarkExited(Exited);

impl Drop for MarkExited {
    fn drop(&mut self) {
        let (done, ended) = &*self.0 .0;
        *done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        ended.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_ends_when_the_guard_drops_or_the_time_is_up() {
        let exited = Exited::default();
        assert!(!exited.wait(Duration::from_millis(20)), "still running");
        let guard = exited.clone().on_drop();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(guard);
        });
        assert!(exited.wait(Duration::from_secs(10)));
        thread.join().unwrap();
        assert!(exited.wait(Duration::ZERO), "stays ended");
    }
}
