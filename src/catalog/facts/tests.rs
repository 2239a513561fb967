use super::*;
use crate::catalog::gguf::{parse, read, MetaValue};
use crate::catalog::test_gguf::{bytes_of, real_model, Writer, F32, Q4_K, Q8_0};

const EMBD: u64 = 256;
const VOCAB: u64 = 1000;

/// The keys every model needs, for `arch` with `n_layer` blocks of 4 query and 2 KV heads.
fn base(arch: &str, n_layer: u32) -> Writer {
    Writer::new()
        .str("general.architecture", arch)
        .u32(&format!("{arch}.block_count"), n_layer)
        .u32(&format!("{arch}.context_length"), 4096)
        .u32(&format!("{arch}.embedding_length"), EMBD as u32)
        .u32(&format!("{arch}.attention.head_count"), 4)
        .u32(&format!("{arch}.attention.head_count_kv"), 2)
}

/// Sets `<arch>.<key>` for each pair (the architecture is the first key, as `base` writes it).
fn with(w: Writer, keys: &[(&str, u32)]) -> Writer {
    let arch = match w.kv.first() {
        Some((_, MetaValue::String(arch))) => arch.clone(),
        _ => unreachable!("base() sets the architecture first"),
    };
    keys.iter()
        .fold(w, |w, (key, value)| w.u32(&format!("{arch}.{key}"), *value))
}

/// Attention of one layer: norm, Q (4 heads of 64), K and V (2 heads of 64), output.
fn attention(w: Writer, il: u32) -> Writer {
    w.tensor(&format!("blk.{il}.attn_norm.weight"), &[EMBD], F32)
        .tensor(&format!("blk.{il}.attn_q.weight"), &[EMBD, 256], Q8_0)
        .tensor(&format!("blk.{il}.attn_k.weight"), &[EMBD, 128], Q8_0)
        .tensor(&format!("blk.{il}.attn_v.weight"), &[EMBD, 128], Q8_0)
        .tensor(&format!("blk.{il}.attn_output.weight"), &[256, EMBD], Q8_0)
}

fn attention_bytes() -> u64 {
    bytes_of(&[EMBD], F32) + 2 * bytes_of(&[EMBD, 256], Q8_0) + 2 * bytes_of(&[EMBD, 128], Q8_0)
}

fn facts_of(w: &Writer) -> Result<ModelFacts, FactsError> {
    facts(&[parse(&w.header()).unwrap()], 12345)
}

/// Facts of a real test model. The expected numbers below come from gguf-py's `GGUFReader`
/// (tensor sizes, parameters) and llama.cpp's own load log (KV heads, SWA layers, vocabulary).
fn real_facts(file: &str) -> ModelFacts {
    let path = real_model(file);
    let file_bytes = std::fs::metadata(&path).unwrap().len();
    facts(&[read(&path).unwrap()], file_bytes).unwrap()
}

#[test]
fn smollm2_facts_match_gguf_py() {
    let f = real_facts("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert_eq!(f.architecture, "llama");
    assert_eq!(f.name.as_deref(), Some("Smollm2 135M 8k Lc100K Mix1 Ep2"));
    assert_eq!(
        (f.file_bytes, f.tensor_bytes, f.total_params),
        (98_362_432, 96_576_768, 134_515_008)
    );
    let q = &f.quantization;
    assert_eq!(
        (q.label.as_str(), q.file_type, q.dominant.as_str()),
        ("Q4_1", Some(3), "Q4_1")
    );
    let mix = [("Q4_1", 66_355_200), ("Q8_0", 30_081_024), ("F32", 140_544)];
    assert_eq!(q.mix, mix.map(|(n, b)| (n.to_owned(), b)));
    // Tied embeddings: the output head reads all of token_embd, so every byte is active.
    assert_eq!(
        (f.active_params, f.active_bytes, f.moe),
        (134_515_008, 96_576_768, None)
    );
    assert_eq!(
        (f.n_layer, f.n_ctx_train, f.n_embd, f.n_head),
        (30, 8192, 576, 9)
    );
    assert_eq!(f.n_head_kv, vec![3; 30]);
    assert_eq!(
        (
            f.head_dim_k,
            f.head_dim_v,
            f.head_dim_k_swa,
            f.head_dim_v_swa
        ),
        (64, 64, 64, 64)
    );
    assert_eq!(
        (f.sliding_window, f.swa_layers.clone()),
        (None, vec![false; 30])
    );
    assert_eq!(
        (f.recurrent_layers.clone(), f.ssm.clone()),
        (vec![false; 30], None)
    );
    let template = f.chat_template.as_deref().unwrap();
    assert!(template.contains("<|im_start|>") && !f.template_supports_tools);
    assert_eq!(
        (f.pooling, f.nextn_layers, f.kv_shared_layers, f.vocab_size),
        (None, 0, 0, 49152)
    );
}

#[test]
fn gemma3_facts_match_gguf_py() {
    let f = real_facts("gemma-3-270m-q4_k_m.gguf");
    assert_eq!(
        (f.architecture.as_str(), f.name.as_deref()),
        ("gemma3", Some("Gemma 3 270m"))
    );
    assert_eq!(
        (f.file_bytes, f.tensor_bytes, f.total_params),
        (253_113_024, 246_587_904, 268_098_176)
    );
    let q = &f.quantization;
    // Named Q4_K_M, but the 262k x 640 embedding matrix stayed Q8_0 and outweighs the rest.
    assert_eq!(
        (q.label.as_str(), q.file_type, q.dominant.as_str()),
        ("Q4_K_M", Some(15), "Q8_0")
    );
    let mix = [
        ("Q8_0", 179_824_640),
        ("Q5_0", 43_591_680),
        ("Q4_K", 13_271_040),
        ("Q6_K", 9_676_800),
        ("F32", 223_744),
    ];
    assert_eq!(q.mix, mix.map(|(n, b)| (n.to_owned(), b)));
    assert_eq!(
        (f.active_params, f.active_bytes),
        (268_098_176, 246_587_904)
    );
    assert_eq!(
        (f.n_layer, f.n_ctx_train, f.n_embd, f.n_head),
        (18, 32768, 640, 4)
    );
    assert_eq!(f.n_head_kv, vec![1; 18]);
    assert_eq!(
        (
            f.head_dim_k,
            f.head_dim_v,
            f.head_dim_k_swa,
            f.head_dim_v_swa
        ),
        (256, 256, 256, 256)
    );
    // llama.cpp's Gemma 3 period of 6: five sliding-window layers, then a global one.
    assert_eq!(f.sliding_window, Some(512));
    let swa: Vec<bool> = (0..18).map(|il| il % 6 != 5).collect();
    assert_eq!(f.swa_layers, swa);
    assert_eq!(f.recurrent_layers, vec![false; 18]);
    assert_eq!(
        (f.chat_template.as_deref(), f.template_supports_tools),
        (None, false)
    );
    assert_eq!(
        (f.pooling, f.nextn_layers, f.vocab_size),
        (None, 0, 262_144)
    );
}

fn split_part(no: u32, count: u32, tensor: &str) -> Writer {
    let w = if no == 0 {
        base("llama", 1)
    } else {
        Writer::new()
    };
    w.kv("split.no", MetaValue::U16(no as u16))
        .kv("split.count", MetaValue::U16(count as u16))
        .tensor(tensor, &[EMBD, VOCAB], Q8_0)
}

#[test]
fn split_models_sum_their_parts() {
    let parts: Vec<_> = ["token_embd.weight", "blk.0.ffn_up.weight", "output.weight"]
        .iter()
        .enumerate()
        .map(|(i, t)| parse(&split_part(i as u32, 3, t).header()).unwrap())
        .collect();
    let f = facts(&parts, 3_000_000).unwrap();
    assert_eq!(
        (f.file_bytes, f.tensor_bytes),
        (3_000_000, 3 * bytes_of(&[EMBD, VOCAB], Q8_0))
    );
    assert_eq!(f.total_params, 3 * EMBD * VOCAB);

    assert!(
        matches!(facts(&parts[..2], 0), Err(FactsError::Split(_))),
        "a part missing"
    );
    let swapped = [parts[0].clone(), parts[2].clone(), parts[1].clone()];
    assert!(
        matches!(facts(&swapped, 0), Err(FactsError::Split(_))),
        "out of order"
    );
    let single = parse(&base("llama", 1).header()).unwrap();
    assert!(matches!(
        facts(&[single.clone(), single], 0),
        Err(FactsError::Split(_))
    ));
    assert!(matches!(facts(&[], 0), Err(FactsError::NoParts)));
}

#[test]
fn bad_metadata_gives_clear_errors() {
    let no_arch = Writer::new().u32("llama.block_count", 1);
    assert!(
        matches!(facts_of(&no_arch), Err(FactsError::MissingKey(k)) if k == "general.architecture")
    );
    let no_embd = base("llama", 1).without("llama.embedding_length");
    assert!(
        matches!(facts_of(&no_embd), Err(FactsError::MissingKey(k)) if k == "llama.embedding_length")
    );
    assert!(matches!(
        facts_of(&base("llama", 0)),
        Err(FactsError::TooManyLayers(0))
    ));
    assert!(matches!(
        facts_of(&base("llama", 513)),
        Err(FactsError::TooManyLayers(513))
    ));
    let text_layers = Writer::new()
        .str("general.architecture", "llama")
        .str("llama.block_count", "many");
    assert!(matches!(
        facts_of(&text_layers),
        Err(FactsError::WrongType { .. })
    ));
    let negative = base("llama", 1).kv("llama.pooling_type", MetaValue::I32(-1));
    assert!(matches!(
        facts_of(&negative),
        Err(FactsError::WrongType { .. })
    ));
    let moe = |used: &[(&str, u32)]| facts_of(&with(base("qwen3moe", 1), used));
    let too_many_used = moe(&[("expert_count", 4), ("expert_used_count", 8)]);
    assert!(matches!(too_many_used, Err(FactsError::Invalid(_))));
    let no_used = moe(&[("expert_count", 4)]);
    let want = "qwen3moe.expert_used_count";
    assert!(matches!(no_used, Err(FactsError::MissingKey(k)) if k == want));
}

#[test]
fn template_pooling_and_vocabulary() {
    let tokens = (0..7).map(|i| MetaValue::String(format!("t{i}"))).collect();
    let w = with(base("bert", 1), &[("pooling_type", 2)])
        .str(
            "tokenizer.chat_template",
            "{% if tools %}{{ tools | tojson }}{% endif %}",
        )
        .kv("tokenizer.ggml.tokens", MetaValue::Array(tokens));
    let f = facts_of(&w).unwrap();
    assert_eq!(
        (f.pooling, f.template_supports_tools, f.vocab_size),
        (Some(2), true, 7)
    );
    let from_embedding = base("llama", 1).tensor("token_embd.weight", &[EMBD, 300], F32);
    assert_eq!(facts_of(&from_embedding).unwrap().vocab_size, 300);
    let unknown_file_type =
        base("llama", 1)
            .u32("general.file_type", 999)
            .tensor("x", &[EMBD], F32);
    assert_eq!(
        facts_of(&unknown_file_type).unwrap().quantization.label,
        "F32"
    );
}

mod hostile;
mod layers;
mod weights;
