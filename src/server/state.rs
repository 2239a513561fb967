use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

use crate::chat::ChatTemplate;
use crate::router::{LoadedModel, ModelRouter};

use super::admin::Admin;
use super::error::ApiError;
use super::lockout::KeyFailures;

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub router: Arc<ModelRouter>,
    pub api_key: Option<Arc<str>>,
    /// Bound to loopback: refuse requests whose Host is not a loopback name (DNS rebinding).
    pub loopback_only: bool,
    /// Other sites whose pages may call the model APIs (`[server] cors_origins`); never the
    /// admin API.
    pub cors_origins: Arc<[String]>,
    /// Wrong API keys by client address, to lock out guessers.
    pub key_failures: Arc<KeyFailures>,
    templates: Arc<Mutex<HashMap<String, Arc<ChatTemplate>>>>,
    /// What the admin API needs beyond the router (library, settings file, login item);
    /// none in bare test servers.
    pub admin: Option<Arc<Admin>>,
    /// Cancelled when the server stops: endless streams (`/api/events`) end, so the graceful
    /// shutdown does not wait the whole grace period for them.
    pub stopping: CancellationToken,
}

impl AppState {
    pub fn new(router: Arc<ModelRouter>, api_key: Option<String>, loopback_only: bool) -> Self {
        Self {
            router,
            api_key: api_key.map(Into::into),
            loopback_only,
            cors_origins: Arc::new([]),
            key_failures: Arc::default(),
            templates: Arc::default(),
            admin: None,
            stopping: CancellationToken::new(),
        }
    }

    pub fn with_cors_origins(mut self, origins: Vec<String>) -> Self {
        self.cors_origins = origins.into();
        self
    }

    pub fn with_admin(mut self, admin: Arc<Admin>) -> Self {
        self.admin = Some(admin);
        self
    }

    /// The admin side, or a 404 on servers without one.
    pub fn admin(&self) -> Result<Arc<Admin>, ApiError> {
        self.admin
            .clone()
            .ok_or_else(|| ApiError::not_found("this server has no admin API"))
    }

    /// The model's chat template, compiled on first use. A model without one, or with one
    /// minijinja cannot compile, gets the ChatML fallback and a warning in the log.
    pub fn template(&self, model: &LoadedModel) -> Result<Arc<ChatTemplate>, ApiError> {
        let mut cache = self.templates.lock().map_err(ApiError::internal)?;
        if let Some(t) = cache.get(&model.id) {
            return Ok(Arc::clone(t));
        }
        let info = model.engine.info();
        let template = match &info.chat_template {
            Some(source) => ChatTemplate::new(source, &info.bos_text, &info.eos_text).unwrap_or_else(|e| {
                tracing::warn!(model = %model.id, error = %e, "chat template unusable; using ChatML");
                ChatTemplate::chatml_fallback(&info.bos_text, &info.eos_text)
            }),
            None => {
                tracing::warn!(model = %model.id, "model has no chat template; using ChatML");
                ChatTemplate::chatml_fallback(&info.bos_text, &info.eos_text)
            }
        };
        let template = Arc::new(template);
        cache.insert(model.id.clone(), Arc::clone(&template));
        Ok(template)
    }
}
