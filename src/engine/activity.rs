//! What an engine is doing, for status displays (tray icon, web UI): how many slots are busy
//! and how fast the last request generated. The engine thread writes, anyone reads; a hook
//! is told of each change so status streams need not poll.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Called (on the engine thread) with the new reading whenever the activity changes; must
/// return quickly.
#[derive(Clone)]
pub struct ActivityHook(pub Arc<dyn Fn(ActivityNow) + Send + Sync>);

impl std::fmt::Debug for ActivityHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ActivityHook")
    }
}

/// A reading of [`Activity`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ActivityNow {
    pub busy_slots: usize,
    /// Generation tokens/s of the last finished request (none before the first).
    pub last_tps: Option<f64>,
    /// Share of the last request's speculative guesses that were accepted (none if it made none).
    pub last_acceptance: Option<f64>,
}

/// A NaN bit pattern no ratio produces: the last request made no guesses.
const NO_GUESSES: u64 = u64::MAX;

#[derive(Debug, Default)]
pub struct Activity {
    busy: AtomicUsize,
    /// `f64::to_bits` of the last speed; 0 means none yet (0.0 t/s is not worth showing).
    last_tps: AtomicU64,
    /// The same for the last request's guess acceptance; [`NO_GUESSES`] when it guessed nothing.
    last_acceptance: AtomicU64,
    hook: Option<ActivityHook>,
}

impl Activity {
    pub fn new(hook: Option<ActivityHook>) -> Self {
        Self {
            hook,
            last_acceptance: AtomicU64::new(NO_GUESSES),
            ..Self::default()
        }
    }

    pub fn now(&self) -> ActivityNow {
        let read = |a: &AtomicU64, none: u64| {
            let bits = a.load(Ordering::Relaxed);
            (bits != none).then(|| f64::from_bits(bits))
        };
        ActivityNow {
            busy_slots: self.busy.load(Ordering::Relaxed),
            last_tps: read(&self.last_tps, 0),
            last_acceptance: read(&self.last_acceptance, NO_GUESSES),
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
            let acceptance = acceptance.map_or(NO_GUESSES, f64::to_bits);
            self.last_acceptance.store(acceptance, Ordering::Relaxed);
            self.changed();
        }
    }

    /// Takes a reading made elsewhere: an engine in another process (`hosted`).
    pub(super) fn set(&self, now: ActivityNow) {
        let bits = |v: Option<f64>, none: u64| v.map_or(none, f64::to_bits);
        self.busy.store(now.busy_slots, Ordering::Relaxed);
        self.last_tps
            .store(bits(now.last_tps, 0), Ordering::Relaxed);
        self.last_acceptance
            .store(bits(now.last_acceptance, NO_GUESSES), Ordering::Relaxed);
        self.changed();
    }

    pub(super) fn changed(&self) {
        if let Some(ActivityHook(hook)) = &self.hook {
            hook(self.now());
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
        let activity = Activity::new(Some(ActivityHook(Arc::new(move |_| {
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
