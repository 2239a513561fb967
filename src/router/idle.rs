//! Unloading models nobody has used for their idle time (`idle_unload_secs`).

use std::time::Duration;

use super::{read, take_models, write, ModelRouter};

impl ModelRouter {
    /// Unloads every model whose idle time has passed with no request on it; returns their ids.
    pub fn unload_idle(&self) -> Vec<String> {
        let gone = take_models(&mut write(&self.models), |m| {
            !m.pinned && m.idle_unload.is_some_and(|ttl| m.idle_for() >= ttl) && !m.in_use()
        });
        let ids: Vec<String> = gone.into_iter().map(|m| m.id).collect();
        if !ids.is_empty() {
            tracing::info!(models = ?ids, "unloading idle models");
            self.changed();
        }
        ids
    }

    /// The shortest idle time of the loaded models, for how often to check.
    pub fn shortest_idle_unload(&self) -> Option<Duration> {
        read(&self.models)
            .iter()
            .filter(|m| !m.pinned)
            .filter_map(|m| m.idle_unload)
            .min()
    }
}
