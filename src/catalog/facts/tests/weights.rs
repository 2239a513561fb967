//! Parameters, bytes and what one token reads.

use super::*;

#[test]
fn qwen3moe_like_active_bytes_count_8_of_128_experts_and_one_embedding_row() {
    let moe = [("expert_count", 128), ("expert_used_count", 8)];
    let mut w = with(base("qwen3moe", 2), &moe)
        .tensor("token_embd.weight", &[EMBD, VOCAB], Q8_0)
        .tensor("output.weight", &[EMBD, VOCAB], Q8_0)
        .tensor("output_norm.weight", &[EMBD], F32);
    for il in 0..2 {
        w = attention(w, il)
            .tensor(&format!("blk.{il}.ffn_gate_inp.weight"), &[EMBD, 128], F32)
            .tensor(
                &format!("blk.{il}.ffn_gate_exps.weight"),
                &[EMBD, 256, 128],
                Q4_K,
            )
            .tensor(
                &format!("blk.{il}.ffn_up_exps.weight"),
                &[EMBD, 256, 128],
                Q4_K,
            )
            .tensor(
                &format!("blk.{il}.ffn_down_exps.weight"),
                &[256, EMBD, 128],
                Q4_K,
            );
    }
    let f = facts_of(&w).unwrap();

    let embd = bytes_of(&[EMBD, VOCAB], Q8_0); // 272_000
    let experts_per_layer = 3 * bytes_of(&[EMBD, 256, 128], Q4_K); // 3 x 4_718_592
    let rest_per_layer = attention_bytes() + bytes_of(&[EMBD, 128], F32);
    let total = 2 * embd + bytes_of(&[EMBD], F32) + 2 * (rest_per_layer + experts_per_layer);
    assert_eq!(f.tensor_bytes, total);
    // One row of the input embedding, the whole output head, 8/128 of the experts.
    let active = embd / VOCAB
        + embd
        + bytes_of(&[EMBD], F32)
        + 2 * (rest_per_layer + experts_per_layer / 16);
    assert_eq!(f.active_bytes, active);
    let expert_params = 2 * 3 * 256 * 256 * 128;
    assert_eq!(
        f.total_params - f.active_params,
        (VOCAB - 1) * EMBD + expert_params * 15 / 16
    );
    let moe = f.moe.unwrap();
    assert_eq!(
        (
            moe.expert_count,
            moe.expert_used_count,
            moe.expert_shared_count
        ),
        (128, 8, 0)
    );
    assert_eq!(
        (moe.expert_params, moe.expert_bytes),
        (expert_params, 2 * experts_per_layer)
    );
    assert_eq!(
        f.quantization.label, "Q4_K",
        "no general.file_type: the dominant type"
    );
}

#[test]
fn shared_experts_are_always_active_and_used_counts_may_vary_per_layer() {
    let w = base("qwen2moe", 2).u32("general.file_type", 15);
    let w = with(w, &[("expert_count", 16), ("expert_shared_count", 1)])
        .u32s("qwen2moe.expert_used_count", &[4, 2]);
    let mut w = w.tensor("token_embd.weight", &[EMBD, VOCAB], Q8_0);
    for il in 0..2 {
        w = attention(w, il)
            .tensor(&format!("blk.{il}.ffn_gate_inp.weight"), &[EMBD, 16], F32)
            .tensor(&format!("blk.{il}.ffn_gate_inp_shexp.weight"), &[EMBD], F32)
            .tensor(
                &format!("blk.{il}.ffn_gate_shexp.weight"),
                &[EMBD, 512],
                Q8_0,
            )
            .tensor(&format!("blk.{il}.ffn_up_shexp.weight"), &[EMBD, 512], Q8_0)
            .tensor(
                &format!("blk.{il}.ffn_down_shexp.weight"),
                &[512, EMBD],
                Q8_0,
            )
            .tensor(
                &format!("blk.{il}.ffn_gate_up_exps.weight"),
                &[EMBD, 512, 16],
                Q4_K,
            )
            .tensor(
                &format!("blk.{il}.ffn_down_exps.weight"),
                &[256, EMBD, 16],
                Q4_K,
            );
    }
    let f = facts_of(&w).unwrap();

    let embd = bytes_of(&[EMBD, VOCAB], Q8_0);
    let shared = bytes_of(&[EMBD], F32) + 3 * bytes_of(&[EMBD, 512], Q8_0);
    let dense = attention_bytes() + bytes_of(&[EMBD, 16], F32) + shared;
    let experts = bytes_of(&[EMBD, 512, 16], Q4_K) + bytes_of(&[256, EMBD, 16], Q4_K);
    assert_eq!(f.tensor_bytes, embd + 2 * (dense + experts));
    // Tied embeddings count in full; layer 0 reads 4/16 of its experts, layer 1 2/16.
    assert_eq!(
        f.active_bytes,
        embd + 2 * dense + experts * 4 / 16 + experts * 2 / 16
    );
    let moe = f.moe.unwrap();
    assert_eq!(
        (
            moe.expert_count,
            moe.expert_used_count,
            moe.expert_shared_count
        ),
        (16, 4, 1)
    );
    assert_eq!(moe.expert_bytes, 2 * experts);
    assert_eq!(
        (
            f.quantization.label.as_str(),
            f.quantization.dominant.as_str()
        ),
        ("Q4_K_M", "Q4_K")
    );
}

#[test]
fn mtp_layers_are_counted_in_total_but_not_active() {
    let w = with(base("glm4moe", 3), &[("nextn_predict_layers", 1)]);
    let w = attention(attention(attention(w, 0), 1), 2)
        .tensor("blk.2.nextn.eh_proj.weight", &[512, EMBD], Q8_0)
        .tensor("token_embd.weight", &[EMBD, VOCAB], Q8_0);
    let f = facts_of(&w).unwrap();
    let embd = bytes_of(&[EMBD, VOCAB], Q8_0);
    assert_eq!(
        f.tensor_bytes,
        embd + 3 * attention_bytes() + bytes_of(&[512, EMBD], Q8_0)
    );
    assert_eq!(f.active_bytes, embd + 2 * attention_bytes());
    assert_eq!((f.n_layer, f.nextn_layers, f.n_head_kv.len()), (3, 1, 3));

    let all_mtp = with(base("glm4moe", 3), &[("nextn_predict_layers", 3)]);
    assert!(matches!(facts_of(&all_mtp), Err(FactsError::Invalid(_))));
}
