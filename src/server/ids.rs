//! Response and call ids, and timestamps, as all three APIs write them.

use std::time::{SystemTime, UNIX_EPOCH};

/// `prefix` (with its separator: `chatcmpl-`, `call_`, `resp_`, `msg_`, `toolu_` ...) and 24
/// random alphanumerics, as OpenAI and Anthropic make theirs.
pub fn new_id(prefix: &str) -> String {
    use rand::distr::{Alphanumeric, SampleString};
    format!(
        "{prefix}{}",
        Alphanumeric.sample_string(&mut rand::rng(), 24)
    )
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
