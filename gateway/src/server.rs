//! `ferrymq serve`: binds the listener, opens the broker (recovery may take a while; `/healthz`
//! says `503` meanwhile), serves the router, and on SIGINT or SIGTERM stops accepting, closes
//! WebSocket connections and shuts the broker down cleanly.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::time::Duration;

use ferrymq_core::broker::{Broker, BrokerConfig};
use ferrymq_core::store::FlushMode as StoreFlushMode;
use tokio::net::TcpListener;

use crate::auth::AuthConfig;
use crate::config::{Config, FlushMode};
use crate::state::{AppState, GatewaySettings};

/// How long in-flight HTTP requests (long polls included) get to finish after a signal.
const DRAIN: Duration = Duration::from_secs(5);

/// The broker configuration a server configuration asks for.
pub fn broker_config(config: &Config) -> BrokerConfig {
    let mut broker = BrokerConfig::new(&config.data_dir);
    broker.store.segment_bytes = config.segment_bytes;
    broker.store.flush = match config.flush {
        FlushMode::Async => StoreFlushMode::Async,
        FlushMode::Sync => StoreFlushMode::Sync,
    };
    broker.store.flush_interval = config.flush_interval;
    broker.store.max_message_bytes = config.max_message_bytes;
    broker.store.retention = Duration::from_secs(config.retention_hours.saturating_mul(3600));
    broker.store.disk_max_used_ratio = config.disk_max_used_ratio;
    broker.delay_levels = config.delay_levels.clone();
    broker.max_delay = config.max_delay;
    broker.timer_precision = config.timer_precision;
    broker.max_reconsume_times = config.max_reconsume_times;
    broker.transaction_timeout = config.transaction_timeout;
    broker.transaction_check_interval = config.transaction_check_interval;
    broker.transaction_check_max = config.transaction_check_max;
    broker.lease_ttl = config.lease_ttl;
    broker.orderly_suspend = config.orderly_suspend;
    broker.auto_create_topics = config.auto_create_topics;
    broker.default_queues = config.default_queues;
    broker.max_batch_messages = config.max_batch_messages;
    broker.max_batch_bytes = config.max_batch_bytes;
    broker.dedup_window = config.dedup_window;
    broker.max_receive_bytes = config.max_receive_bytes;
    broker
}

/// The gateway settings a server configuration asks for.
pub fn gateway_settings(config: &Config) -> anyhow::Result<GatewaySettings> {
    let auth = match &config.auth_file {
        Some(path) => Some(AuthConfig::load(path)?),
        None => None,
    };
    // A batch's bodies travel base64-encoded in JSON: room for that plus the envelope.
    let largest = config.max_batch_bytes.max(config.max_message_bytes);
    let body_limit = largest.saturating_mul(4) / 3 + (1 << 20);
    Ok(GatewaySettings { body_limit, ws_ticket_ttl: config.ws_ticket_ttl, auth, ..GatewaySettings::default() })
}

/// Serves until SIGINT or SIGTERM, then shuts the broker down.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let settings = gateway_settings(&config)?;
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "ferrymq listening");
    let state = AppState::new(settings);
    let app = crate::app(state.clone());

    let opener = {
        let state = state.clone();
        let broker_config = broker_config(&config);
        tokio::spawn(async move {
            match Broker::open(broker_config).await {
                Ok(broker) => {
                    state.set_broker(broker.clone());
                    tracing::info!("broker open; serving");
                    Ok(broker)
                }
                Err(err) => {
                    tracing::error!(error = %err, "the broker could not open");
                    state.begin_shutdown();
                    Err(err)
                }
            }
        })
    };

    let graceful = {
        let state = state.clone();
        async move {
            tokio::select! {
                _ = shutdown_signal() => {
                    tracing::info!("shutting down");
                    state.begin_shutdown();
                }
                _ = state.stopping() => {}
            }
        }
    };
    let server = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(graceful)
        .into_future();
    tokio::pin!(server);
    let served = tokio::select! {
        result = &mut server => result.map_err(anyhow::Error::from),
        _ = state.stopping() => {
            // Give in-flight requests a moment, then stop regardless.
            match tokio::time::timeout(DRAIN, &mut server).await {
                Ok(result) => result.map_err(anyhow::Error::from),
                Err(_) => {
                    tracing::warn!("requests still running after the drain period; stopping anyway");
                    Ok(())
                }
            }
        }
    };

    let broker = match opener.await {
        Ok(Ok(broker)) => broker,
        Ok(Err(err)) => return Err(anyhow::anyhow!("the broker could not open: {err}")),
        Err(err) => return Err(anyhow::anyhow!("the broker task failed: {err}")),
    };
    broker.shutdown().await?;
    tracing::info!("broker shut down cleanly");
    served
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

/// The address a `--listen` value names.
pub fn listen_addr(text: &str) -> anyhow::Result<SocketAddr> {
    text.parse().map_err(|e| anyhow::anyhow!("--listen {text:?} is not an address like 127.0.0.1:8080: {e}"))
}
