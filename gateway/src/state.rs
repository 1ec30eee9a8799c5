//! The state every handler shares: the broker (once it has opened), the gateway's settings,
//! auth, tickets, metrics, the registry of WebSocket producers and the shutdown signal.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ferrymq_core::broker::Broker;
use tokio::sync::watch;

use crate::auth::{AuthConfig, TicketStore};
use crate::checks::ProducerRegistry;
use crate::metrics::Metrics;
use crate::problem::{ApiError, ApiResult};

/// Gateway settings that are not the broker's.
#[derive(Clone, Debug)]
pub struct GatewaySettings {
    /// Largest accepted HTTP request body in bytes (`413` beyond).
    pub body_limit: usize,
    /// Lifetime of a WebSocket ticket.
    pub ws_ticket_ttl: Duration,
    /// The parsed auth file; `None` means every request is allowed.
    pub auth: Option<AuthConfig>,
    /// Timeout of a check-back POST to a producer's `check_url`.
    pub check_timeout: Duration,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            body_limit: 32 << 20,
            ws_ticket_ttl: ferrymq_core::config::WS_TICKET_TTL.default(),
            auth: None,
            check_timeout: Duration::from_secs(3),
        }
    }
}

/// Shared, cheaply cloned handle on the gateway's state.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    broker: OnceLock<Arc<Broker>>,
    settings: GatewaySettings,
    tickets: TicketStore,
    metrics: Metrics,
    producers: ProducerRegistry,
    shutdown: watch::Sender<bool>,
    http: reqwest::Client,
}

impl AppState {
    /// A state whose broker is still opening: every route but `/healthz`, `/openapi.json` and
    /// `/metrics` answers `503` until [`AppState::set_broker`].
    pub fn new(settings: GatewaySettings) -> Self {
        // Check-back URLs may be https://, verified against the system's roots.
        let mut http = reqwest::Client::builder().timeout(settings.check_timeout);
        match ferrymq_core::client::tls_config(None) {
            Ok(tls) => http = http.use_preconfigured_tls(rustls::ClientConfig::clone(&tls)),
            Err(err) => tracing::warn!(error = %err, "no TLS roots; https check-back URLs will fail"),
        }
        let http = http.build().unwrap_or_default();
        AppState {
            inner: Arc::new(Inner {
                broker: OnceLock::new(),
                settings,
                tickets: TicketStore::new(),
                metrics: Metrics::default(),
                producers: ProducerRegistry::default(),
                shutdown: watch::channel(false).0,
                http,
            }),
        }
    }

    /// A state serving `broker` at once.
    pub fn with_broker(settings: GatewaySettings, broker: Arc<Broker>) -> Self {
        let state = AppState::new(settings);
        state.set_broker(broker);
        state
    }

    /// Makes the broker available; the first call wins. Starts routing transaction checks.
    pub fn set_broker(&self, broker: Arc<Broker>) {
        if self.inner.broker.set(broker).is_ok() {
            crate::checks::spawn_router(self.clone());
        }
    }

    /// The broker, or `503 unavailable` while it is opening or after shutdown began.
    pub fn broker(&self) -> ApiResult<Arc<Broker>> {
        if *self.inner.shutdown.borrow() {
            return Err(ApiError::Unavailable("the server is shutting down".to_string()));
        }
        self.inner
            .broker
            .get()
            .cloned()
            .ok_or_else(|| ApiError::Unavailable("the broker is still recovering".to_string()))
    }

    /// The broker if it has opened, even during shutdown (for metrics and health).
    pub fn opened_broker(&self) -> Option<Arc<Broker>> {
        self.inner.broker.get().cloned()
    }

    /// The gateway's settings.
    pub fn settings(&self) -> &GatewaySettings {
        &self.inner.settings
    }

    /// Single-use WebSocket tickets.
    pub fn tickets(&self) -> &TicketStore {
        &self.inner.tickets
    }

    /// Metrics of the gateway itself.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// WebSocket connections that answer transaction checks, by producer group.
    pub fn producers(&self) -> &ProducerRegistry {
        &self.inner.producers
    }

    /// HTTP client for check-back POSTs.
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Tells long-lived work (WebSocket connections, the check router) to stop.
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Resolves once shutdown has begun.
    pub async fn stopping(&self) {
        let mut signal = self.inner.shutdown.subscribe();
        let _ = signal.wait_for(|stopping| *stopping).await;
    }

    /// A receiver that turns `true` when shutdown begins.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }
}
