//! Lock-out after wrong API keys. An address that tries `MAX_FAILURES` different wrong keys
//! within `WINDOW` is refused for a while (429 with Retry-After) whatever key it sends next, so
//! a key cannot be guessed at network speed: each lock-out of the same address doubles the one
//! before, from `FIRST_LOCK` up to `MAX_LOCK`. A right key clears the address's record.
//! Only guesses count: a request with no key, or a client retrying one stale key (an agent
//! whose key was changed, a web page's concurrent calls), never locks its machine out.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: u32 = 10;
const WINDOW: Duration = Duration::from_secs(60);
const FIRST_LOCK: Duration = Duration::from_secs(60);
const MAX_LOCK: Duration = Duration::from_secs(3600);
/// Records kept at most; past it, those neither locked nor counting are forgotten first.
const MAX_RECORDS: usize = 4096;

#[derive(Default)]
pub struct KeyFailures {
    by_addr: Mutex<HashMap<IpAddr, Record>>,
    /// Keyed per process: wrong keys are told apart by hash, never kept.
    hasher: std::hash::RandomState,
}

struct Record {
    /// The different wrong keys (hashed) since `since`.
    wrong: Vec<u64>,
    since: Instant,
    locked_until: Option<Instant>,
    /// Lock-outs so far: the next one lasts twice as long as the last.
    locks: u32,
}

impl KeyFailures {
    /// How much longer `addr` is locked out, if it is.
    pub fn locked(&self, addr: IpAddr, now: Instant) -> Option<Duration> {
        let records = self.records();
        let until = records.get(&addr)?.locked_until?;
        (until > now).then(|| until - now)
    }

    /// Counts a wrong key from `addr`; the lock-out's length when this one starts it.
    pub fn failed(&self, addr: IpAddr, key: &str, now: Instant) -> Option<Duration> {
        let key = self.hasher.hash_one(key);
        let mut records = self.records();
        if records.len() >= MAX_RECORDS && !records.contains_key(&addr) {
            forget_idle(&mut records, now);
        }
        let record = records.entry(addr).or_insert(Record {
            wrong: Vec::new(),
            since: now,
            locked_until: None,
            locks: 0,
        });
        if now.duration_since(record.since) > WINDOW {
            record.wrong.clear();
            record.since = now;
        }
        if !record.wrong.contains(&key) {
            record.wrong.push(key);
        }
        if record.wrong.len() < MAX_FAILURES as usize {
            return None;
        }
        let lock = FIRST_LOCK
            .saturating_mul(1 << record.locks.min(16))
            .min(MAX_LOCK);
        record.locks += 1;
        record.wrong.clear();
        record.since = now;
        record.locked_until = Some(now + lock);
        Some(lock)
    }

    /// A right key from `addr`: its wrong ones are forgiven.
    pub fn succeeded(&self, addr: IpAddr) {
        self.records().remove(&addr);
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Record>> {
        self.by_addr
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Makes room: drops the records that neither lock nor count any more, and if many addresses
/// are still guessing, those that do not lock.
fn forget_idle(records: &mut HashMap<IpAddr, Record>, now: Instant) {
    let locked = |r: &Record| r.locked_until.is_some_and(|until| until > now);
    records.retain(|_, r| locked(r) || now.duration_since(r.since) <= WINDOW);
    if records.len() >= MAX_RECORDS {
        records.retain(|_, r| locked(r));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 7));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 8));

    /// `times` different wrong keys from `addr`; what the last one got.
    fn guess(f: &KeyFailures, addr: IpAddr, times: u32, now: Instant) -> Option<Duration> {
        (0..times)
            .map(|i| f.failed(addr, &format!("guess-{i}"), now))
            .last()
            .flatten()
    }

    #[test]
    fn ten_wrong_keys_in_a_minute_lock_the_address_out_and_only_it() {
        let f = KeyFailures::default();
        let t0 = Instant::now();
        assert_eq!(guess(&f, A, MAX_FAILURES - 1, t0), None);
        assert_eq!(f.locked(A, t0), None);
        assert_eq!(f.failed(A, "one more", t0), Some(FIRST_LOCK));
        assert_eq!(
            f.locked(A, t0 + Duration::from_secs(20)),
            Some(Duration::from_secs(40))
        );
        assert_eq!(f.locked(B, t0), None);
        assert_eq!(f.locked(A, t0 + FIRST_LOCK), None);
    }

    #[test]
    fn slow_guesses_do_not_add_up() {
        let f = KeyFailures::default();
        let t0 = Instant::now();
        for i in 0..3 * MAX_FAILURES {
            let now = t0 + (WINDOW / (MAX_FAILURES - 1)) * i + Duration::from_millis(u64::from(i));
            assert_eq!(f.failed(A, &format!("guess-{i}"), now), None, "guess {i}");
        }
    }

    #[test]
    fn one_stale_key_sent_again_and_again_is_one_guess() {
        let f = KeyFailures::default();
        let t0 = Instant::now();
        for _ in 0..10 * MAX_FAILURES {
            assert_eq!(f.failed(A, "the old key", t0), None);
        }
        assert_eq!(guess(&f, A, MAX_FAILURES - 2, t0), None);
        assert!(f.failed(A, "a new guess", t0).is_some());
    }

    #[test]
    fn each_lock_out_doubles_the_last_up_to_an_hour() {
        let f = KeyFailures::default();
        let mut now = Instant::now();
        let mut locks = vec![];
        for _ in 0..8 {
            let lock = guess(&f, A, MAX_FAILURES, now).expect("locked");
            locks.push(lock.as_secs());
            now += lock;
        }
        assert_eq!(locks, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
    }

    #[test]
    fn a_right_key_forgives_the_wrong_ones() {
        let f = KeyFailures::default();
        let t0 = Instant::now();
        guess(&f, A, MAX_FAILURES - 1, t0);
        f.succeeded(A);
        assert_eq!(guess(&f, A, MAX_FAILURES - 1, t0), None);
    }

    #[test]
    fn many_guessing_addresses_keep_the_records_bounded_and_the_locks() {
        let f = KeyFailures::default();
        let t0 = Instant::now();
        guess(&f, A, MAX_FAILURES, t0);
        for i in 0..2 * MAX_RECORDS as u32 {
            f.failed(
                IpAddr::V6(std::net::Ipv6Addr::from(u128::from(i) + 1)),
                "k",
                t0,
            );
        }
        assert!(f.records().len() <= MAX_RECORDS);
        assert!(f.locked(A, t0).is_some());
    }
}
