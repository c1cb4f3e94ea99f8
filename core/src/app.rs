//! Assembling Qubit's parts from a [`Config`]: the store, the webhook client, the
//! dispatcher, the scheduler control and the HTTP API's state.

use std::sync::Arc;

use reqwest::Url;
use secrecy::SecretString;
use tokio::sync::Notify;

use crate::config::Config;
use crate::dispatch::{DispatchSettings, Dispatcher};
use crate::http::AppState;
use crate::retry::RetryPolicy;
use crate::schedule::{DatabaseSchedule, EventBridgeSchedule, ScheduleControl, ScheduleId};
use crate::store::{Store, StoreError, StoreSettings};
use crate::webhook::{WebhookClient, WebhookSettings};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration error: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
    #[error("{0} must be set")]
    Missing(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Webhook(String),
}

/// Everything a runner needs, ready to serve and dispatch.
pub struct App {
    pub store: Store,
    pub dispatcher: Dispatcher,
    pub state: AppState,
    /// Wakes the local tick loop after a start through this instance's API.
    pub wake: Arc<Notify>,
}

impl App {
    /// Builds the parts and applies pending migrations. `database_url` and `webhook_url`
    /// are passed apart from `config` because the local runner may supply its own.
    pub async fn build(
        config: &Config,
        database_url: SecretString,
        webhook_url: Url,
    ) -> Result<Self, StartupError> {
        let store = Store::connect(&StoreSettings {
            url: database_url,
            ca_file: config.database_ca_file.clone(),
            pool_size: config.database_pool_size,
            timeout: config.database_timeout,
        })?;
        store.migrate().await?;

        // The phone-number metadata loads on first use, which takes most of a second; load
        // it now rather than in the first client's request.
        let _ = crate::message::PhoneNumber::parse("+905321234567");

        let webhook = WebhookClient::new(&WebhookSettings {
            url: webhook_url,
            auth_header: config.webhook_auth_header.clone(),
            auth_key: config.webhook_auth_key.clone(),
            timeout: config.webhook_timeout,
        })
        .map_err(StartupError::Webhook)?;
        let dispatcher = Dispatcher::new(store.clone(), webhook, dispatch_settings(config));

        let wake = Arc::new(Notify::new());
        let schedule: Arc<dyn ScheduleControl> = match &config.schedule_name {
            Some(name) => {
                let id = ScheduleId {
                    name: name.clone(),
                    group: config.schedule_group.clone(),
                };
                Arc::new(EventBridgeSchedule::from_env(id).await)
            }
            None => {
                store.init_scheduler(config.scheduler_autostart).await?;
                Arc::new(DatabaseSchedule::new(store.clone(), wake.clone()))
            }
        };

        let state = AppState {
            store: store.clone(),
            schedule,
            interval: config.scheduler_interval,
            batch_size: config.batch_size,
        };
        Ok(Self {
            store,
            dispatcher,
            state,
            wake,
        })
    }
}

impl App {
    /// The Lambda functions' start-up, once per cold start: settings from the environment,
    /// secrets from SSM, and no embedded fallbacks.
    pub async fn from_lambda_env() -> Result<Self, StartupError> {
        let mut config = Config::from_env()?;
        crate::secrets::resolve(&mut config).await?;

        let database_url = config.database_url.clone().ok_or(StartupError::Missing(
            "DATABASE_URL or DATABASE_URL_PARAMETER",
        ))?;
        let webhook_url = config
            .webhook_url
            .clone()
            .ok_or(StartupError::Missing("WEBHOOK_URL"))?;
        Self::build(&config, database_url, webhook_url).await
    }
}

pub fn dispatch_settings(config: &Config) -> DispatchSettings {
    DispatchSettings {
        batch_size: config.batch_size,
        lease: config.lease_duration,
        retry: RetryPolicy {
            max_attempts: config.max_attempts,
            base_delay: config.retry_base_delay,
            max_delay: config.retry_max_delay,
        },
    }
}
