//! Scheduling decisions that need no llama.cpp: which slot a request goes to, and which idle
//! caches to drop when the shared KV cache runs short. Pure functions, unit-tested below.

use super::types::TokenId;

/// What the scheduler needs to know about an idle slot.
#[derive(Debug, Clone, Copy)]
pub struct IdleSlot<'a> {
    pub index: usize,
    /// Tokens whose KV is still in the cache from the slot's last request.
    pub cached: &'a [TokenId],
    /// Larger = used more recently.
    pub last_used: u64,
}

/// Length of the common prefix of two token sequences.
pub fn common_prefix(a: &[TokenId], b: &[TokenId]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The idle slot for `prompt`: the one whose cache shares the longest prefix with it, so only
/// the new suffix is decoded; with no shared prefix anywhere, the least recently used one, so
/// the caches most likely to be wanted again survive. `None` when no slot is idle.
pub fn choose_slot(idle: &[IdleSlot<'_>], prompt: &[TokenId]) -> Option<usize> {
    let best = idle
        .iter()
        .map(|s| (common_prefix(s.cached, prompt), s))
        .max_by_key(|(shared, s)| (*shared, std::cmp::Reverse(s.last_used)))?;
    if best.0 > 0 {
        return Some(best.1.index);
    }
    idle.iter().min_by_key(|s| s.last_used).map(|s| s.index)
}

/// Which idle caches to drop, least recently used first, so that `need` more cells fit into
/// a cache of `capacity` cells of which `used` are taken. Returns the slot indices to clear;
/// if even dropping all of them is not enough, returns them all (the caller then waits).
pub fn caches_to_evict(
    idle: &[IdleSlot<'_>],
    used: usize,
    need: usize,
    capacity: usize,
) -> Vec<usize> {
    let mut order: Vec<_> = idle.iter().filter(|s| !s.cached.is_empty()).collect();
    order.sort_by_key(|s| s.last_used);
    let mut free = capacity.saturating_sub(used);
    let mut evict = Vec::new();
    for slot in order {
        if free >= need {
            break;
        }
        free += slot.cached.len();
        evict.push(slot.index);
    }
    evict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle<'a>(index: usize, cached: &'a [TokenId], last_used: u64) -> IdleSlot<'a> {
        IdleSlot {
            index,
            cached,
            last_used,
        }
    }

    #[test]
    fn longest_shared_prefix_wins() {
        let a = [1, 2, 3];
        let b = [1, 2, 3, 4, 5];
        let slots = [idle(0, &a, 5), idle(1, &b, 1)];
        assert_eq!(choose_slot(&slots, &[1, 2, 3, 4, 9]), Some(1));
    }

    #[test]
    fn without_a_shared_prefix_the_least_recently_used_is_taken() {
        let a = [7, 8];
        let b = [9];
        let slots = [idle(0, &a, 5), idle(1, &b, 2), idle(2, &[], 3)];
        assert_eq!(choose_slot(&slots, &[1, 2]), Some(1));
    }

    #[test]
    fn no_idle_slot_means_none() {
        assert_eq!(choose_slot(&[], &[1]), None);
    }

    #[test]
    fn eviction_takes_oldest_caches_until_enough_is_free() {
        let a = [0; 10];
        let b = [0; 20];
        let c = [0; 30];
        let slots = [idle(0, &a, 3), idle(1, &b, 1), idle(2, &c, 2)];
        // 60 used of 64: 4 free, need 25 -> drop slot 1 (20, oldest), then slot 2 (30).
        assert_eq!(caches_to_evict(&slots, 60, 25, 64), vec![1, 2]);
        assert_eq!(caches_to_evict(&slots, 60, 4, 64), Vec::<usize>::new());
    }
}
