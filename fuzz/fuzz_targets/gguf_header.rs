//! Arbitrary bytes as a GGUF file, as listing a models folder reads one: the header reader
//! must answer with a header or a `GgufError`, never panic, and never allocate beyond its caps
//! (`MAX_KV`, `MAX_STRING`, `MAX_VALUES` ...; the run's `-rss_limit_mb` makes that a failure).
//! A header that parses goes on to `catalog::facts` (parameters, quantization, MoE, context),
//! which does arithmetic on the file's own numbers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paddock::catalog::{facts, gguf};

fuzz_target!(init: paddock_fuzz::report_stack_overflows(), |data: &[u8]| {
    if let Ok(file) = gguf::parse(data) {
        let file_bytes = file.data_end();
        let _ = facts(&[file], file_bytes);
    }
});
