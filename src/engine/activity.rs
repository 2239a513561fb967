//! What an engine is doing, for status displays (tray icon, web UI): how many slots are busy
//! and how fast the last request generated. The engine thread writes, anyone reads; a hook
//! is told of each change so status streams need not poll.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Called (on the engine thread) whenever the activity changes; must return quickly.
#[derive(Clone)]
pub struct ActivityHook(pub Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for ActivityHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ActivityHook")
    }
}

/// A reading of [`Activity`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActivityNow {
    pub busy_slots: usize,
    /// Generation tokens/s of the last finished request (none before the first).
    pub last_tps: Option<f64>,
    /// Share of speculative guesses accepted, for the last request that guessed.
    pub last_acceptance: Option<f64>,
}

#[derive(Debug, Default)]
pub struct Activity {
    busy: AtomicUsize,
    /// `f64::to_bits` of the last speed; 0 means none yet (0.0 t/s is not worth showing).
    last_tps: AtomicU64,
    /// The same for the acceptance; 0 also means none (then nothing was gained to show).
    last_acceptance: AtomicU64,
    hook: Option<ActivityHook>,
}

impl Activity {
    pub fn new(hook: Option<ActivityHook>) -> Self {
        Self {
            hook,
            ..Self::default()
        }
    }

    pub fn now(&self) -> ActivityNow {
        let read = |a: &AtomicU64| {
            let bits = a.load(Ordering::Relaxed);
            (bits != 0).then(|| f64::from_bits(bits))
        };
        ActivityNow {
            busy_slots: self.busy.load(Ordering::Relaxed),
            last_tps: read(&self.last_tps),
            last_acceptance: read(&self.last_acceptance),
        }
    }

    pub(super) fn set_busy(&self, busy: usize) {
        if self.busy.swap(busy, Ordering::Relaxed) != busy {
            self.changed();
        }
    }

    pub(super) fn finished(&self, tokens_per_second: f64, acceptance: Option<f64>) {
        if tokens_per_second > 0.0 && tokens_per_second.is_finite() {
            self.last_tps
                .store(tokens_per_second.to_bits(), Ordering::Relaxed);
            if let Some(a) = acceptance {
                self.last_acceptance.store(a.to_bits(), Ordering::Relaxed);
            }
            self.changed();
        }
    }

    fn changed(&self) {
        if let Some(ActivityHook(hook)) = &self.hook {
            hook();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_hears_changes_only() {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&count);
        let activity = Activity::new(Some(ActivityHook(Arc::new(move || {
            seen.fetch_add(1, Ordering::Relaxed);
        }))));
        assert_eq!(activity.now().last_tps, None);
        activity.set_busy(1);
        activity.set_busy(1);
        activity.finished(0.0, None);
        activity.finished(42.5, Some(0.5));
        activity.set_busy(0);
        assert_eq!(count.load(Ordering::Relaxed), 3);
        assert_eq!(
            activity.now(),
            ActivityNow {
                busy_slots: 0,
                last_tps: Some(42.5),
                last_acceptance: Some(0.5),
            }
        );
    }
}
