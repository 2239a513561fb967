//! Which models are loaded and under which names. A request names a model; the router hands
//! back that model's engine. Knows nothing of HTTP.
//!
//! Today one model is loaded at start-up; loading on demand, idle unload and refusing models
//! that do not fit memory belong here too.

use std::time::SystemTime;

use crate::engine::EngineHandle;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RouterError {
    #[error("the model `{name}` does not exist")]
    UnknownModel { name: String },
    #[error("no model is loaded")]
    NoModel,
}

/// A model ready to serve.
#[derive(Clone)]
pub struct LoadedModel {
    pub id: String,
    pub aliases: Vec<String>,
    pub engine: EngineHandle,
    /// When it was loaded (OpenAI's `created`).
    pub loaded_at: SystemTime,
}

#[derive(Default)]
pub struct ModelRouter {
    models: Vec<LoadedModel>,
}

impl ModelRouter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, id: String, aliases: Vec<String>, engine: EngineHandle) {
        self.models.retain(|m| m.id != id);
        self.models.push(LoadedModel {
            id,
            aliases,
            engine,
            loaded_at: SystemTime::now(),
        });
    }

    /// The model a request named, by id or alias. With no name given and one model loaded,
    /// that one (clients that omit `model` mean "whatever is running").
    pub fn get(&self, name: Option<&str>) -> Result<&LoadedModel, RouterError> {
        match name {
            Some(name) => self
                .models
                .iter()
                .find(|m| m.id == name || m.aliases.iter().any(|a| a == name))
                .ok_or_else(|| RouterError::UnknownModel {
                    name: name.to_string(),
                }),
            None if self.models.len() == 1 => Ok(&self.models[0]),
            None => Err(RouterError::NoModel),
        }
    }

    pub fn list(&self) -> &[LoadedModel] {
        &self.models
    }
}
