//! Hostile metadata: any header that parses gives facts or a clear error, never a panic.

use super::*;

/// A model touching every rule: MoE, MTP, per-layer arrays, SWA, recurrent layers, SSM keys.
fn everything() -> Writer {
    let w = base("qwen3next", 4)
        .without("qwen3next.attention.head_count_kv")
        .u32s("qwen3next.attention.head_count_kv", &[0, 2, 0, 2])
        .u32s("qwen3next.expert_used_count", &[2, 2, 1, 1])
        .kv(
            "qwen3next.attention.sliding_window_pattern",
            MetaValue::Array([true, false].map(MetaValue::Bool).to_vec()),
        )
        .str("tokenizer.chat_template", "{{ tools }}");
    let keys = [
        ("expert_count", 4),
        ("nextn_predict_layers", 1),
        ("attention.sliding_window", 64),
        ("ssm.state_size", 16),
        ("ssm.conv_kernel", 4),
        ("ssm.inner_size", 512),
        ("ssm.group_count", 2),
        ("full_attention_interval", 2),
    ];
    let mut w = with(w, &keys);
    for il in 0..4 {
        w = attention(w, il).tensor(
            &format!("blk.{il}.ffn_up_exps.weight"),
            &[EMBD, 256, 4],
            Q4_K,
        );
    }
    w.tensor("token_embd.weight", &[EMBD, VOCAB], Q8_0).tensor(
        "output.weight",
        &[EMBD, VOCAB],
        Q8_0,
    )
}

#[test]
fn mutated_metadata_never_panics() {
    let original = everything().header();
    assert!(facts(&[parse(&original).unwrap()], 0).is_ok());
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut parsed, mut described) = (0, 0);
    for _ in 0..5000 {
        let mut bytes = original.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % bytes.len() as u64) as usize;
            // Small values, 0 and 0xff are where counts and patterns break.
            bytes[at] = [0, 1, 2, 0xff, next() as u8][(next() % 5) as usize];
        }
        if let Ok(gguf) = parse(&bytes) {
            parsed += 1;
            described += usize::from(facts(&[gguf], 0).is_ok());
        }
    }
    eprintln!("{parsed} of 5000 mutated headers parsed, {described} described");
    assert!(
        parsed > 1000 && described > 100,
        "the mutations should reach facts()"
    );
}
