//! Making room for a model beside the loaded ones: while the budgets say they do not fit
//! together, the least recently used model that is neither pinned nor in use is unloaded.
//! What a model needs is its predicted budget (llama.cpp's own figures from a dry run, or an
//! upper-bound estimate where none ran), so a load never counts on memory a loaded model may
//! still take.

use crate::budget::{self, Budget, Fit};

use super::{
    take_models, wait_for_exit, write, LoadRequest, LoadedModel, ModelRouter, Remote, RouterError,
    ENGINE_EXIT,
};

impl ModelRouter {
    /// Unloads what must go for `request` to fit (and the model it replaces, by the same id),
    /// then waits for their memory to be freed. Nothing is unloaded when even that would not
    /// be enough. Without a machine or a prediction there is nothing to weigh.
    pub(super) fn make_room(&self, request: &LoadRequest) -> Result<(), RouterError> {
        let mut models = write(&self.models);
        let mut going: Vec<String> = models
            .iter()
            .filter(|m| m.id == request.id)
            .map(|m| m.id.clone())
            .collect();
        if let (Some(machine), Some(need)) = (self.machine.get(), request.predicted.as_ref()) {
            let need = here(need, request.remote.as_ref());
            let mut idle: Vec<&LoadedModel> = models
                .iter()
                .filter(|m| m.id != request.id && !m.pinned && !m.in_use())
                .collect();
            // The least recently used (idle longest) last, to pop first.
            idle.sort_by_key(|m| m.idle_for());
            loop {
                let staying: Vec<&LoadedModel> =
                    models.iter().filter(|m| !going.contains(&m.id)).collect();
                let held: Vec<Budget> = staying
                    .iter()
                    .filter_map(|m| Some(here(m.predicted.as_ref()?, m.remote.as_ref())))
                    .collect();
                let held: Vec<&Budget> = held.iter().collect();
                let short_by = match budget::fit_beside(&need, &held, machine) {
                    Fit::DoesNotFit { short_by } if !staying.is_empty() => short_by,
                    // Alone, it is the planner's call: a configured model loads even when its
                    // budget says it is too big.
                    _ => break,
                };
                match idle.pop() {
                    Some(victim) => going.push(victim.id.clone()),
                    None => {
                        return Err(RouterError::NoRoom {
                            model: request.id.clone(),
                            short_by,
                            kept: staying.iter().map(|m| why_kept(m)).collect(),
                        })
                    }
                }
            }
        }
        let gone = take_models(&mut models, |m| going.contains(&m.id));
        drop(models);
        if gone.is_empty() {
            return Ok(());
        }
        for m in gone.iter().filter(|m| m.id != request.id) {
            tracing::info!(model = %m.id, to_load = %request.id, "unloading the least recently used model to make room");
        }
        self.changed();
        if !wait_for_exit(gone, ENGINE_EXIT) {
            tracing::warn!(timeout = ?ENGINE_EXIT, "an unloaded model still holds its memory; loading anyway");
        }
        Ok(())
    }
}

/// What a model takes on this machine: one spread over workers leaves them their share of
/// its GPU part.
fn here(predicted: &Budget, remote: Option<&Remote>) -> Budget {
    let mut budget = predicted.clone();
    if let Some(remote) = remote {
        budget.on_gpu = (budget.on_gpu as f64 * remote.local_share.clamp(0.0, 1.0)) as u64;
    }
    budget
}

fn why_kept(m: &LoadedModel) -> String {
    let why = if m.pinned { "pinned" } else { "in use" };
    format!("{} ({why})", m.id)
}
