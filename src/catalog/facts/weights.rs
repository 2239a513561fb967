//! Sizes from the tensor infos: bytes and parameters in all, the quantization mix, the MoE
//! share, and what one generated token reads ("active").
//!
//! The active rule, tensor by tensor (it drives the tg ceiling = bandwidth / active bytes):
//! - routed-expert tensors (`blk.N.*_exps.*`): their size × experts used / expert count, with
//!   layer N's used count when it varies per layer;
//! - embedding lookup tables (`token_embd`, `per_layer_token_embd`, `position_embd`,
//!   `token_types`): one row, since a token reads only its own row. Exception: without an
//!   `output.weight` the model ties its output head to `token_embd`, and the head reads all
//!   of it, so it counts in full;
//! - tensors of MTP layers (`blk.N.*` with N ≥ n_layer - nextn_layers): nothing, they run only
//!   when drafting with them;
//! - everything else (attention, dense FFN, shared experts, router, norms, output head): in full.

use std::collections::BTreeMap;

use super::meta::Meta;
use super::{FactsError, MoeFacts, Quantization};
use crate::catalog::ggml::{file_type_label, ggml_type};
use crate::catalog::gguf::TensorInfo;

const LOOKUP_TABLES: &[&str] = &[
    "token_embd",
    "per_layer_token_embd",
    "position_embd",
    "token_types",
];

pub(super) struct Weights {
    pub tensor_bytes: u64,
    pub total_params: u64,
    pub quantization: Quantization,
    pub moe: Option<MoeFacts>,
    pub active_params: u64,
    pub active_bytes: u64,
    /// Rows of `token_embd` (the vocabulary size when no key says it).
    pub embedding_rows: u32,
}

/// Bytes and parameters, added up.
#[derive(Default, Clone, Copy)]
struct Size {
    bytes: u64,
    params: u64,
}

impl Size {
    fn add(&mut self, other: Size) {
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.params = self.params.saturating_add(other.params);
    }

    /// `self × num / den`, exact in 128 bits.
    fn scaled(self, num: u64, den: u64) -> Size {
        let scale = |x: u64| {
            let scaled = u128::from(x) * u128::from(num) / u128::from(den.max(1));
            u64::try_from(scaled).unwrap_or(u64::MAX)
        };
        Size {
            bytes: scale(self.bytes),
            params: scale(self.params),
        }
    }
}

pub(super) fn weights<'a>(
    meta: &Meta,
    tensors: impl Iterator<Item = &'a TensorInfo> + Clone,
    n_layer: u32,
    nextn_layers: u32,
) -> Result<Weights, FactsError> {
    let expert_count = meta.arch_u32("expert_count")?.unwrap_or(0);
    let used = meta
        .per_layer("expert_used_count", n_layer as usize)?
        .unwrap_or_default();
    if expert_count > 1 && used.is_empty() {
        return Err(FactsError::MissingKey(meta.key("expert_used_count")));
    }
    if let Some(n) = used.iter().find(|&&n| n > expert_count) {
        return Err(FactsError::Invalid(format!(
            "{n} experts used of {expert_count}"
        )));
    }
    let tied = !tensors.clone().any(|t| t.name == "output.weight");
    let first_mtp_layer = n_layer - nextn_layers;

    let mut total = Size::default();
    let mut active = Size::default();
    let mut experts = Size::default();
    let mut by_type: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut embedding_rows = 0;

    for t in tensors {
        let (Some(bytes), Some(params), Some(ty)) =
            (t.bytes(), t.elements(), ggml_type(t.ggml_type))
        else {
            return Err(FactsError::BadTensor(t.name.clone()));
        };
        let size = Size { bytes, params };
        total.add(size);
        let of_type = by_type.entry(ty.name).or_default();
        *of_type = of_type.saturating_add(bytes);

        let (layer, kind) = split_name(&t.name);
        let row_len = t.dims.first().copied().unwrap_or(1).max(1);
        let rows = params / row_len;
        if kind == "token_embd" {
            embedding_rows = u32::try_from(rows).unwrap_or(u32::MAX);
        }

        let routed = kind.ends_with("exps") && expert_count > 0;
        if routed {
            experts.add(size);
        }
        let share = match layer {
            Some(n) if n >= first_mtp_layer => Size::default(),
            _ if routed => {
                let n_used = layer.and_then(|n| used.get(n as usize)).or(used.first());
                size.scaled(n_used.copied().unwrap_or(0).into(), expert_count.into())
            }
            None if LOOKUP_TABLES.contains(&kind) && !(tied && kind == "token_embd") => {
                size.scaled(1, rows)
            }
            _ => size,
        };
        active.add(share);
    }

    let mut mix: Vec<(String, u64)> = by_type
        .into_iter()
        .map(|(n, b)| (n.to_owned(), b))
        .collect();
    mix.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let dominant = mix
        .first()
        .map_or_else(|| "none".to_owned(), |(name, _)| name.clone());
    let file_type = meta.u32("general.file_type")?;
    let label = file_type
        .and_then(file_type_label)
        .map_or_else(|| dominant.clone(), str::to_owned);

    let expert_shared_count = meta.arch_u32("expert_shared_count")?.unwrap_or(0);
    let moe = (expert_count > 1).then(|| MoeFacts {
        expert_count,
        expert_used_count: used.iter().copied().max().unwrap_or(0),
        expert_shared_count,
        expert_params: experts.params,
        expert_bytes: experts.bytes,
    });

    Ok(Weights {
        tensor_bytes: total.bytes,
        total_params: total.params,
        quantization: Quantization {
            label,
            file_type,
            dominant,
            mix,
        },
        moe,
        active_params: active.params,
        active_bytes: active.bytes,
        embedding_rows,
    })
}

/// `blk.12.ffn_up_exps.weight` → (Some(12), "ffn_up_exps"); `token_embd.weight` →
/// (None, "token_embd").
fn split_name(name: &str) -> (Option<u32>, &str) {
    if let Some(rest) = name.strip_prefix("blk.") {
        if let Some((n, rest)) = rest.split_once('.') {
            if let Ok(n) = n.parse() {
                return (Some(n), rest.split('.').next().unwrap_or(rest));
            }
        }
    }
    (None, name.split('.').next().unwrap_or(name))
}
