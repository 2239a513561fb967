//! Lending the machine to work that must run alone (a benchmark): every model is unloaded and
//! requests and loads are refused until the [`Pause`] is dropped.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::{lock, write, ModelRouter, RouterError};

/// The router held for something that must run alone (see [`ModelRouter::pause`]); dropping
/// it lets requests and loads in again.
pub struct Pause {
    paused: Arc<Mutex<Option<String>>>,
    changes: Arc<watch::Sender<u64>>,
    /// The models that were loaded when the pause began, to load again after it.
    pub unloaded: Vec<String>,
}

impl Drop for Pause {
    fn drop(&mut self) {
        *lock(&self.paused) = None;
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl ModelRouter {
    /// Unloads every model and refuses requests and loads until the returned [`Pause`] is
    /// dropped: for work that must have the machine to itself. Refused while a load or a
    /// request runs (so nobody's answer is cut off) or another pause holds.
    pub fn pause(&self, reason: &str) -> Result<Pause, RouterError> {
        let mut paused = lock(&self.paused);
        if let Some(reason) = paused.as_ref() {
            return Err(RouterError::Paused {
                reason: reason.clone(),
            });
        }
        if let Some(current) = self.loading() {
            return Err(RouterError::Busy {
                model: current.model,
            });
        }
        let mut models = write(&self.models);
        if let Some(m) = models.iter().find(|m| m.engine.activity().busy_slots > 0) {
            return Err(RouterError::Busy {
                model: m.id.clone(),
            });
        }
        *paused = Some(reason.to_string());
        drop(paused);
        let unloaded = models.drain(..).map(|m| m.id).collect();
        drop(models);
        self.changed();
        Ok(Pause {
            paused: Arc::clone(&self.paused),
            changes: Arc::clone(&self.changes),
            unloaded,
        })
    }

    /// Why requests are refused now, if they are.
    pub fn paused(&self) -> Option<String> {
        lock(&self.paused).clone()
    }
}
