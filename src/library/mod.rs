//! The model library: every model on disk (catalog) with its memory budget on this machine
//! (budget), before anything is loaded. The glue between the two, and the machine facts.

use std::path::PathBuf;

use serde::Serialize;

use crate::budget::{self, Budget, Machine, ModelShape, RecurrentShape};
use crate::catalog::{self, gguf::as_u64, GgufFile, ModelFacts, ModelFile};
use crate::engine::rpc::Workers;
use crate::engine::{EngineSpec, FlashAttn};

pub mod bandwidth;
mod report;

pub use report::{grouped, Report};

/// What macOS and other apps keep, as the source document's budget table reserves it.
pub const OS_RESERVE_BYTES: u64 = 10 << 30;

/// One model file set, what it is, and what loading it would take here.
#[derive(Debug, Serialize)]
pub struct Entry {
    pub id: String,
    pub parts: Vec<PathBuf>,
    pub source: catalog::Source,
    pub read_only: bool,
    /// Why the model cannot be described (unreadable file, missing split parts...).
    pub error: Option<String>,
    pub facts: Option<ModelFacts>,
    pub budget: Option<Budget>,
    /// The largest context (tokens, shared by the slots) that fits with these settings, at
    /// most the trained context (more loads, but quality falls past it).
    pub largest_context: Option<u32>,
    /// Generation ceiling, tokens/s: memory bandwidth / bytes read per token (when known).
    pub tg_ceiling: Option<f64>,
}

/// Where to look for models, and the settings and machine their budgets are for.
#[derive(Debug, Clone, Serialize)]
pub struct Library {
    pub folders: Vec<(PathBuf, catalog::Source)>,
    pub settings: budget::Settings,
    pub machine: Machine,
}

impl Library {
    /// Paddock's own models folder, the Hugging Face and LM Studio caches (read-only), and
    /// the folder of `served` (if any).
    pub fn new(served: Option<&std::path::Path>, settings: budget::Settings) -> Self {
        let mut folders = Vec::new();
        // Paddock's own folder first: a file reachable from two folders is listed once, from
        // the first, and only files in Paddock's own folder may be deleted.
        if let Some(own) = crate::config::paths::models_dir() {
            folders.extend(catalog::default_folders(&own));
        }
        // Made absolute first: `-m model.gguf` has the empty path as its parent.
        let served = served.and_then(|p| std::path::absolute(p).ok());
        if let Some(dir) = served.as_deref().and_then(std::path::Path::parent) {
            folders.push((dir.to_path_buf(), catalog::Source::UserFolder));
        }
        Self {
            folders,
            settings,
            machine: this_machine(),
        }
    }

    /// Reads every model's header now (files change under us: downloads, deletes).
    pub fn scan(&self) -> Vec<Entry> {
        scan(&self.folders, &self.settings, &self.machine)
    }

    /// Every model's files, without reading them.
    pub fn files(&self) -> Vec<ModelFile> {
        catalog::scan(&self.folders)
    }

    /// The model file set `path` belongs to (all parts of a split model), from its folder.
    pub fn file_at(path: &std::path::Path) -> ModelFile {
        let canonical = |p: &std::path::Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        let wanted = canonical(path);
        let folder = path.parent().unwrap_or(std::path::Path::new("."));
        catalog::scan(&[(folder.to_path_buf(), catalog::Source::UserFolder)])
            .into_iter()
            .find(|f| f.parts.iter().any(|p| canonical(p) == wanted))
            .unwrap_or_else(|| ModelFile {
                id: crate::engine::model_id(path),
                parts: vec![path.to_path_buf()],
                source: catalog::Source::UserFolder,
                read_only: true,
                missing_parts: Vec::new(),
            })
    }

    /// One model's facts and budget under other settings (what-if, or before a load).
    pub fn describe(&self, file: ModelFile, settings: &budget::Settings) -> Entry {
        entry(file, settings, &self.machine, None)
    }

    /// One model as `spec` serves it spread over RPC workers: its budget is for this machine
    /// and the workers' devices together ([`with_workers`]). Estimated: the dry run that gives
    /// the exact compute buffer needs the workers' devices in this process.
    pub fn describe_spread(&self, file: ModelFile, spec: &EngineSpec, workers: &Workers) -> Entry {
        let (machine, _) = with_workers(&self.machine, workers);
        entry(file, &budget_settings(spec), &machine, None)
    }

    /// One model as `spec` serves it: its budget counts the draft model too, if there is one.
    pub fn describe_serving(&self, file: ModelFile, spec: &EngineSpec) -> Entry {
        let draft = spec
            .speculation
            .draft_model
            .as_deref()
            .filter(|_| spec.speculation.is_on())
            .and_then(|path| describe(&Self::file_at(path)).ok())
            .map(|(_, shape)| shape);
        let settings = budget_settings(spec);
        let described = described(&file);
        let shape = described.as_ref().ok().map(|(_, shape)| shape.clone());
        let mut entry = entry_of(file, described, &settings, &self.machine, draft.as_ref());
        // The compute buffer from llama.cpp itself, for the budget a load is judged by.
        if let Some(shape) = shape {
            match crate::engine::dry_run::context_memory(spec) {
                Ok(a) => {
                    let known = budget::KnownCompute {
                        gpu: a.compute - a.compute_host,
                        host: a.compute_host,
                    };
                    entry.budget = Some(budget::budget_with_compute(
                        &shape,
                        draft.as_ref(),
                        &settings,
                        &self.machine,
                        known,
                    ));
                }
                Err(e) => {
                    tracing::debug!(model = %entry.id, error = %e, "no dry run; the compute buffer is estimated")
                }
            }
        }
        entry
    }
}

/// Every model in `folders` with its budget under `settings` on `machine`, sorted by id.
pub fn scan(
    folders: &[(PathBuf, catalog::Source)],
    settings: &budget::Settings,
    machine: &Machine,
) -> Vec<Entry> {
    let mut entries: Vec<Entry> = catalog::scan(folders)
        .into_iter()
        .map(|file| entry(file, settings, machine, None))
        .collect();
    entries.sort_by(|a, b| a.id.cmp(&b.id));
    entries
}

fn entry(
    file: ModelFile,
    settings: &budget::Settings,
    machine: &Machine,
    draft: Option<&ModelShape>,
) -> Entry {
    let described = described(&file);
    entry_of(file, described, settings, machine, draft)
}

/// The file's facts and shape, unless it cannot be read or parts of it are missing.
fn described(file: &ModelFile) -> Result<(ModelFacts, ModelShape), String> {
    if file.missing_parts.is_empty() {
        describe(file)
    } else {
        Err(format!("split parts missing: {:?}", file.missing_parts))
    }
}

fn entry_of(
    file: ModelFile,
    described: Result<(ModelFacts, ModelShape), String>,
    settings: &budget::Settings,
    machine: &Machine,
    draft: Option<&ModelShape>,
) -> Entry {
    let (facts, shape, error) = match described {
        Ok((facts, shape)) => (Some(facts), Some(shape), None),
        Err(e) => (None, None, Some(e)),
    };
    let budget = shape
        .as_ref()
        .map(|s| budget::budget_with_draft(s, draft, settings, machine));
    let largest_context = shape.as_ref().and_then(|s| {
        budget::largest_context(s, settings, machine).map(|n| n.min(s.n_ctx_train.max(1)))
    });
    let tg_ceiling = shape.as_ref().and_then(|s| budget::tg_ceiling(s, machine));
    Entry {
        id: file.id,
        parts: file.parts,
        source: file.source,
        read_only: file.read_only,
        error,
        facts,
        budget,
        largest_context,
        tg_ceiling,
    }
}

fn describe(file: &ModelFile) -> Result<(ModelFacts, ModelShape), String> {
    let mut parts = Vec::with_capacity(file.parts.len());
    let mut bytes = 0u64;
    for path in &file.parts {
        parts.push(catalog::gguf::read(path).map_err(|e| e.to_string())?);
        bytes += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    }
    let facts = catalog::facts(&parts, bytes).map_err(|e| e.to_string())?;
    let shape = shape(&facts, &parts);
    Ok((facts, shape))
}

/// The budget's view of a model: its facts plus where the weight bytes sit (per layer, head).
pub fn shape(facts: &ModelFacts, parts: &[GgufFile]) -> ModelShape {
    let mut layer_bytes = vec![0u64; facts.n_layer as usize];
    let mut output_bytes = 0;
    for t in parts.iter().flat_map(|p| &p.tensors) {
        let bytes = t.bytes().unwrap_or(0);
        if t.name.starts_with("output.") {
            output_bytes += bytes;
        } else if let Some(layer) = block_index(&t.name) {
            if let Some(slot) = layer_bytes.get_mut(layer) {
                *slot += bytes;
            }
        }
    }
    let arch = &facts.architecture;
    let meta = |key: &str| {
        parts
            .first()
            .and_then(|p| p.get(&format!("{arch}.{key}")))
            .and_then(as_u64)
    };
    let n_ff = meta("expert_feed_forward_length")
        .or_else(|| meta("feed_forward_length"))
        .unwrap_or(0);
    ModelShape {
        weight_bytes: facts.tensor_bytes,
        n_layer: facts.n_layer,
        mtp_layers: facts.nextn_layers,
        layer_bytes,
        output_bytes,
        n_ctx_train: facts.n_ctx_train,
        n_embd: facts.n_embd,
        n_vocab: facts.vocab_size,
        n_head: facts.n_head,
        n_head_kv: facts.n_head_kv.clone(),
        head_dim_k: facts.head_dim_k,
        head_dim_v: facts.head_dim_v,
        n_ff: u32::try_from(n_ff).unwrap_or(u32::MAX),
        n_expert_used: facts.moe.as_ref().map_or(0, |m| m.expert_used_count),
        swa_window: facts.sliding_window,
        swa_layers: facts.swa_layers.clone(),
        recurrent: facts.ssm.as_ref().map(|s| RecurrentShape {
            layers: facts.recurrent_layers.clone(),
            n_embd_r: u32::try_from(s.conv_state).unwrap_or(u32::MAX),
            n_embd_s: u32::try_from(s.ssm_state).unwrap_or(u32::MAX),
        }),
        active_bytes: facts.active_bytes,
    }
}

/// The budget settings of a serving configuration.
pub fn budget_settings(spec: &EngineSpec) -> budget::Settings {
    // Both enums use llama.cpp's names; the budget's own type keeps it free of llama.cpp.
    let kv = |t: crate::engine::KvType| {
        serde_json::from_value(serde_json::Value::from(t.name())).unwrap_or_default()
    };
    budget::Settings {
        n_ctx: spec.n_ctx,
        n_parallel: spec.n_parallel,
        cache_type_k: kv(spec.cache_type_k),
        cache_type_v: kv(spec.cache_type_v),
        n_gpu_layers: i32::try_from(spec.n_gpu_layers).unwrap_or(i32::MAX),
        n_ubatch: spec.n_ubatch,
        n_batch: spec.n_batch,
        flash_attn: spec.flash_attn != FlashAttn::Off,
        // As the engine makes its contexts.
        swa_full: false,
        kv_unified: true,
        mtp_heads: spec.loads_mtp_heads(),
    }
}

/// The engine's default settings, as budget settings.
pub fn default_budget_settings() -> budget::Settings {
    budget::Settings {
        n_ctx: 4096,
        n_parallel: 2,
        cache_type_k: budget::KvType::F16,
        cache_type_v: budget::KvType::F16,
        n_gpu_layers: 99,
        n_ubatch: 512,
        n_batch: 2048,
        flash_attn: true,
        swa_full: false,
        kv_unified: true,
        mtp_heads: false,
    }
}

/// The library as a table in the source document's terms, one model a row.
pub fn markdown(entries: &[Entry], machine: &Machine) -> String {
    let gib = |b: u64| format!("{:.2}", b as f64 / f64::from(1u32 << 30));
    let mut out = format!(
        "Machine: {} GiB memory{}, OS reserve {} GiB\n\n",
        gib(machine.total_memory),
        if machine.unified { " (unified)" } else { "" },
        gib(machine.os_reserve),
    );
    out.push_str("| model | arch | params (active) | quant | weights GiB | KV GiB | compute GiB | total GiB | headroom GiB | fit | largest ctx |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for e in entries {
        let (Some(f), Some(b)) = (&e.facts, &e.budget) else {
            let why = e.error.as_deref().unwrap_or("unreadable");
            out.push_str(&format!("| {} | {why} | | | | | | | | | |\n", e.id));
            continue;
        };
        let fit = match b.fits {
            budget::Fit::Fits => "fits".to_string(),
            budget::Fit::Tight => "tight".to_string(),
            budget::Fit::DoesNotFit { short_by } => format!("short by {} GiB", gib(short_by)),
        };
        out.push_str(&format!(
            "| {} | {} | {:.2}B ({:.2}B) | {} | {} | {} | {} | {} | {:.2} | {fit} | {} |\n",
            e.id,
            f.architecture,
            f.total_params as f64 / 1e9,
            f.active_params as f64 / 1e9,
            f.quantization.label,
            gib(b.weights_gpu + b.weights_cpu),
            gib(b.kv_cache + b.recurrent_state),
            gib(b.compute),
            gib(b.total),
            b.headroom as f64 / f64::from(1u32 << 30),
            e.largest_context.map_or("-".into(), |c| c.to_string()),
        ));
    }
    out
}

/// `blk.12.attn_q.weight` → 12.
fn block_index(name: &str) -> Option<usize> {
    name.strip_prefix("blk.")?.split('.').next()?.parse().ok()
}

/// The machine a model spread over `workers` sees: their devices' free memory joins the GPU
/// pool (a discrete one, or Metal's working set), as llama.cpp offloads to them as to GPUs.
/// Also the share of the offloaded part that stays here: llama.cpp splits it by free memory,
/// so none on a machine without a GPU.
pub fn with_workers(machine: &Machine, workers: &Workers) -> (Machine, f64) {
    let remote: u64 = workers.devices.iter().map(|d| d.memory_free).sum();
    let local = machine.gpu_memory.or(machine.gpu_limit).unwrap_or(0);
    let mut pooled = machine.clone();
    if machine.unified {
        pooled.gpu_limit = Some(local + remote);
    } else if local + remote > 0 {
        pooled.gpu_memory = Some(local + remote);
    }
    let share = if local + remote == 0 {
        1.0
    } else {
        local as f64 / (local + remote) as f64
    };
    (pooled, share)
}

/// This machine: RAM from the OS, and the GPUs llama.cpp sees. On Apple Silicon the GPU shares
/// the RAM and Metal caps what it keeps resident (ggml reports `recommendedMaxWorkingSetSize` as
/// the device's memory); elsewhere a discrete GPU's memory is a pool of its own. The bandwidth
/// is the published figure of the chip or card, or one measured earlier in this process (a
/// benchmark measures it).
pub fn this_machine() -> Machine {
    let mut system = sysinfo::System::new();
    system.refresh_memory();
    let unified = cfg!(all(target_os = "macos", target_arch = "aarch64"));
    let gpus = crate::engine::gpus();
    let discrete: u64 = gpus
        .iter()
        .filter(|g| !g.integrated && !g.remote)
        .map(|g| g.memory_total)
        .sum();
    // RPC workers' devices take offloaded layers as local GPUs do; what they have free is
    // what they can take (llama.cpp splits by it).
    let remote: u64 = gpus
        .iter()
        .filter(|g| g.remote)
        .map(|g| g.memory_free)
        .sum();
    // Metal reports itself as a GPU, not an integrated one.
    let metal = gpus
        .iter()
        .find(|g| !g.remote)
        .map(|g| g.memory_total)
        .filter(|&n| n > 0);
    Machine {
        total_memory: system.total_memory(),
        unified,
        // llama.cpp spreads offloaded layers over every discrete GPU and every worker.
        gpu_memory: (!unified && discrete + remote > 0).then_some(discrete + remote),
        gpu_limit: unified.then_some(metal).flatten().map(|m| m + remote),
        os_reserve: OS_RESERVE_BYTES.min(system.total_memory() / 4),
        bandwidth: bandwidth::known().map(|b| b.bytes_per_sec),
        memory_limit: None,
    }
}

#[cfg(test)]
mod tests {
    use super::{block_index, Library};
    use crate::catalog::Source;

    #[test]
    fn a_model_given_by_a_relative_path_brings_its_folder() {
        let settings = crate::library::default_budget_settings();
        let library = Library::new(Some(std::path::Path::new("model.gguf")), settings);
        let cwd = std::env::current_dir().unwrap();
        assert!(
            library.folders.contains(&(cwd, Source::UserFolder)),
            "{:?}",
            library.folders
        );
    }

    #[test]
    fn layer_numbers_come_from_block_tensor_names() {
        assert_eq!(block_index("blk.12.attn_q.weight"), Some(12));
        assert_eq!(block_index("output.weight"), None);
        assert_eq!(block_index("blk.x.ffn"), None);
    }
}
