//! Attention heads, sliding windows and recurrent layers.

use super::*;

/// An OpenELM-like model, whose head counts differ per layer.
fn openelm(heads: &[u32], kv_heads: &[u32]) -> Writer {
    base("openelm", 3)
        .without("openelm.attention.head_count")
        .without("openelm.attention.head_count_kv")
        .u32s("openelm.attention.head_count", heads)
        .u32s("openelm.attention.head_count_kv", kv_heads)
}

#[test]
fn per_layer_head_counts_are_read_from_arrays() {
    let w = openelm(&[4, 8, 16], &[1, 2, 4]);
    let f = facts_of(&w).unwrap();
    assert_eq!((f.n_head, f.n_head_kv), (16, vec![1, 2, 4]));
    let n_embd_per_head = (EMBD / 16) as u32;
    assert_eq!(
        (f.head_dim_k, f.head_dim_v),
        (n_embd_per_head, n_embd_per_head)
    );

    let f = facts_of(&with(
        w,
        &[("attention.key_length", 64), ("attention.value_length", 32)],
    ));
    assert_eq!((f.unwrap().head_dim_k, 32), (64, 32));

    let short = facts_of(&openelm(&[4, 8, 16], &[1, 2]));
    assert!(matches!(
        short,
        Err(FactsError::WrongLength {
            expected: 3,
            got: 2,
            ..
        })
    ));
}

/// The window and the layers as a string: S for sliding window, F for full attention.
fn swa(w: &Writer) -> (Option<u32>, String) {
    let f = facts_of(w).unwrap();
    let layers = f
        .swa_layers
        .iter()
        .map(|&s| if s { 'S' } else { 'F' })
        .collect();
    (f.sliding_window, layers)
}

#[test]
fn llama_cpp_default_swa_patterns() {
    // (arch, layers, window in the file, window, layers)
    let cases = [
        ("gemma2", 4, None, Some(4096), "SFSF"),
        ("gemma2", 4, Some(1024), Some(1024), "SFSF"),
        ("gemma3", 6, None, None, "FFFFFF"),
        ("gemma3", 12, Some(512), Some(512), "SSSSSFSSSSSF"),
        ("cohere2", 8, Some(4096), Some(4096), "SSSFSSSF"),
        ("gpt-oss", 4, Some(128), Some(128), "SFSF"),
        ("gemma3n", 5, Some(512), Some(512), "SSSSF"),
        // Chunked attention, 8192 tokens whatever the file says, unless it says 0.
        ("llama4", 4, Some(100), Some(8192), "SSSF"),
        ("llama4", 4, Some(0), None, "FFFF"),
        // llama.cpp ignores a window it knows no pattern for.
        ("qwen2", 2, Some(4096), None, "FF"),
    ];
    for (arch, n_layer, file_window, window, layers) in cases {
        let w = base(arch, n_layer);
        let w = match file_window {
            Some(file_window) => with(w, &[("attention.sliding_window", file_window)]),
            None => w,
        };
        assert_eq!(
            swa(&w),
            (window, layers.to_owned()),
            "{arch} {file_window:?}"
        );
    }
}

#[test]
fn swa_pattern_keys_override_the_defaults() {
    let gemma3 = with(base("gemma3", 4), &[("attention.sliding_window", 512)]);
    let period = |p| {
        swa(&with(
            gemma3.clone(),
            &[("attention.sliding_window_pattern", p)],
        ))
    };
    assert_eq!(period(2), (Some(512), "SFSF".into()));
    assert_eq!(period(0), (Some(512), "SSSS".into()), "0: every layer");

    // Gemma 4: a bool array (short ones pad with full layers), own SWA head size, shared KV.
    let flags = [true, false, true].map(MetaValue::Bool).to_vec();
    let gemma4 = with(
        base("gemma4", 4),
        &[
            ("attention.sliding_window", 1024),
            ("attention.key_length", 512),
            ("attention.key_length_swa", 256),
            ("attention.shared_kv_layers", 2),
        ],
    )
    .kv(
        "gemma4.attention.sliding_window_pattern",
        MetaValue::Array(flags),
    );
    assert_eq!(swa(&gemma4), (Some(1024), "SFSF".into()));
    let f = facts_of(&gemma4).unwrap();
    assert_eq!((f.head_dim_k, f.head_dim_k_swa), (512, 256));
    assert_eq!(
        (f.head_dim_v, f.head_dim_v_swa),
        (64, 64),
        "n_embd / n_head"
    );
    assert_eq!(f.kv_shared_layers, 2);
    assert_eq!(facts_of(&base("gemma3n", 30)).unwrap().kv_shared_layers, 10);
}

/// A Qwen3-Next-like hybrid: 3 gated-delta-net layers, then one attention layer.
fn qwen3next(n_layer: u32) -> Writer {
    let ssm = [
        ("ssm.conv_kernel", 4),
        ("ssm.inner_size", 4096),
        ("ssm.state_size", 128),
        ("ssm.group_count", 16),
    ];
    with(base("qwen3next", n_layer), &ssm)
}

#[test]
fn interval_hybrids_and_their_state_size() {
    let f = facts_of(&qwen3next(8)).unwrap();
    let recurrent = [true, true, true, false, true, true, true, false];
    assert_eq!(f.recurrent_layers, recurrent);
    let ssm = f.ssm.unwrap();
    assert_eq!(
        (ssm.d_state, ssm.d_conv, ssm.d_inner, ssm.n_group),
        (128, 4, 4096, 16)
    );
    // (d_conv - 1) x (d_inner + 2 x n_group x d_state), and d_state x d_inner.
    assert_eq!(
        (ssm.conv_state, ssm.ssm_state),
        (3 * (4096 + 2 * 16 * 128), 128 * 4096)
    );

    let interval = |n| facts_of(&with(qwen3next(4), &[("full_attention_interval", n)]));
    assert_eq!(
        interval(2).unwrap().recurrent_layers,
        [true, false, true, false]
    );
    assert!(matches!(interval(0), Err(FactsError::Invalid(_))));

    let flags = [false, true, true].map(MetaValue::Bool).to_vec();
    let explicit = qwen3next(3).kv(
        "qwen3next.attention.recurrent_layers",
        MetaValue::Array(flags),
    );
    assert_eq!(
        facts_of(&explicit).unwrap().recurrent_layers,
        [false, true, true]
    );
}

/// `arch` with per-layer KV head counts.
fn kv_heads(arch: &str, heads: &[u32]) -> Writer {
    let key = format!("{arch}.attention.head_count_kv");
    base(arch, heads.len() as u32)
        .without(&key)
        .u32s(&key, heads)
}

#[test]
fn zero_kv_head_hybrids() {
    // Jamba marks its Mamba layers with zero KV heads; Mamba-1 has no groups.
    let ssm = [
        ("ssm.conv_kernel", 4),
        ("ssm.inner_size", 8192),
        ("ssm.state_size", 16),
    ];
    let f = facts_of(&with(kv_heads("jamba", &[0, 0, 8, 0]), &ssm)).unwrap();
    assert_eq!(f.recurrent_layers, [true, true, false, true]);
    assert_eq!(f.n_head_kv, [0, 0, 8, 0]);
    let ssm = f.ssm.unwrap();
    assert_eq!((ssm.conv_state, ssm.ssm_state), (3 * 8192, 16 * 8192));

    // Nemotron-H: zero KV heads and zero FFN is Mamba; zero KV heads with an FFN is an MLP.
    let nemotron =
        kv_heads("nemotron_h", &[0, 0, 2]).u32s("nemotron_h.feed_forward_length", &[0, 1024, 0]);
    assert_eq!(
        facts_of(&nemotron).unwrap().recurrent_layers,
        [true, false, false]
    );

    // LFM2: short convolutions only.
    let lfm2 = with(kv_heads("lfm2", &[0, 2]), &[("shortconv.l_cache", 3)]);
    let f = facts_of(&lfm2).unwrap();
    assert_eq!(f.recurrent_layers, [true, false]);
    let ssm = f.ssm.unwrap();
    assert_eq!(
        (ssm.d_conv, ssm.conv_state, ssm.ssm_state),
        (3, 2 * EMBD, 0)
    );
}

#[test]
fn recurrent_models_keep_state_in_every_layer() {
    // RWKV: token-shift rows plus one head_size x head_size matrix per head.
    let f = facts_of(&with(base("rwkv7", 2), &[("wkv.head_size", 64)])).unwrap();
    assert_eq!(f.recurrent_layers, [true, true]);
    let ssm = f.ssm.unwrap();
    assert_eq!((ssm.conv_state, ssm.ssm_state), (2 * EMBD, EMBD * 64));

    let mamba = [
        ("ssm.conv_kernel", 4),
        ("ssm.inner_size", 512),
        ("ssm.state_size", 16),
    ];
    let f = facts_of(&with(base("mamba", 3), &mamba)).unwrap();
    assert_eq!(f.recurrent_layers, [true, true, true]);
    assert_eq!(f.ssm.map(|s| s.ssm_state), Some(16 * 512));
}
