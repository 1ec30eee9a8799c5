//! `ferrymq serve`: binds the listener, opens the broker (recovery may take a while; `/healthz`
//! says `503` meanwhile), serves the router, and on SIGINT or SIGTERM stops accepting, closes
//! WebSocket connections and shuts the broker down cleanly.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::time::Duration;

use axum::serve::ListenerExt;
use ferrymq_core::broker::Broker;
use tokio::net::TcpListener;

use crate::auth::{AuthConfig, AuthError};
use crate::config::Config;
use crate::state::{AppState, GatewaySettings};
use crate::tls::TlsError;

/// Why `ferrymq serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The `--listen` value is not an address.
    #[error("--listen {text:?} is not an address like 127.0.0.1:8080: {reason}")]
    Listen {
        /// The value as given.
        text: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The `auth_file` cannot be used.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The TLS settings cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Binding or serving the socket failed.
    #[error("serving failed: {0}")]
    Io(#[from] std::io::Error),
    /// The broker could not open its data directory.
    #[error("the broker could not open: {0}")]
    Broker(#[source] ferrymq_core::Error),
    /// The broker could not shut down cleanly (recovery runs on the next start).
    #[error("the broker did not shut down cleanly: {0}")]
    Shutdown(#[source] ferrymq_core::Error),
    /// The task that opened the broker panicked or was cancelled.
    #[error("the broker task failed: {0}")]
    Task(String),
}

/// How long in-flight HTTP requests (long polls included) get to finish after a signal.
const DRAIN: Duration = Duration::from_secs(5);

/// The gateway settings a server configuration asks for.
pub fn gateway_settings(config: &Config) -> Result<GatewaySettings, ServeError> {
    let (broker, server) = (&config.settings.broker, &config.settings.server);
    let auth = match &server.auth_file {
        Some(path) => Some(AuthConfig::load(path)?),
        None => None,
    };
    // A batch's bodies travel base64-encoded in JSON: room for that plus the envelope.
    let largest = broker.max_batch_bytes.max(broker.store.max_message_bytes);
    let body_limit = largest.saturating_mul(4) / 3 + (1 << 20);
    Ok(GatewaySettings { body_limit, ws_ticket_ttl: server.ws_ticket_ttl, auth, ..GatewaySettings::default() })
}

/// Switches of `ferrymq serve` that are not configuration keys.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServeOptions {
    /// Open the store with repair (`--repair`): quarantine damaged records instead of refusing
    /// to start.
    pub repair: bool,
}

/// Serves until SIGINT or SIGTERM, then shuts the broker down.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    serve_with(config, ServeOptions::default()).await
}

/// [`serve`] with the command-line switches.
pub async fn serve_with(config: Config, options: ServeOptions) -> Result<(), ServeError> {
    let settings = gateway_settings(&config)?;
    let tls = crate::tls::server_config(&config.settings.server)?;
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%addr, scheme, data_dir = %config.settings.broker.store.dir.display(), "ferrymq listening");
    let state = AppState::new(settings);
    let app = crate::app(state.clone());

    let opener = {
        let state = state.clone();
        let mut broker_config = config.settings.broker.clone();
        broker_config.store.repair = options.repair;
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
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let server: std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>> = match tls {
        // TCP_NODELAY: answers and deliveries are small writes; with Nagle's algorithm one
        // that follows another unacknowledged one waits for the peer's delayed ACK (40 ms).
        None => {
            let listener = listener.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "could not set TCP_NODELAY");
                }
            });
            Box::pin(axum::serve(listener, service).with_graceful_shutdown(graceful).into_future())
        }
        Some(tls) => {
            let handle = axum_server::Handle::new();
            let stopper = handle.clone();
            tokio::spawn(async move {
                graceful.await;
                stopper.graceful_shutdown(Some(DRAIN));
            });
            let rustls = axum_server::tls_rustls::RustlsConfig::from_config(tls);
            let server = axum_server::from_tcp_rustls(listener.into_std()?, rustls)?
                .map(|tls| tls.acceptor(axum_server::accept::NoDelayAcceptor::new()));
            Box::pin(server.handle(handle).serve(service))
        }
    };
    tokio::pin!(server);
    let served = tokio::select! {
        result = &mut server => result.map_err(ServeError::from),
        _ = state.stopping() => {
            // Give in-flight requests a moment, then stop regardless.
            match tokio::time::timeout(DRAIN, &mut server).await {
                Ok(result) => result.map_err(ServeError::from),
                Err(_) => {
                    tracing::warn!("requests still running after the drain period; stopping anyway");
                    Ok(())
                }
            }
        }
    };

    let broker = match opener.await {
        Ok(Ok(broker)) => broker,
        Ok(Err(err)) => return Err(ServeError::Broker(err)),
        Err(err) => return Err(ServeError::Task(err.to_string())),
    };
    broker.shutdown().await.map_err(ServeError::Shutdown)?;
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
pub fn listen_addr(text: &str) -> Result<SocketAddr, ServeError> {
    text.parse()
        .map_err(|e: std::net::AddrParseError| ServeError::Listen { text: text.to_string(), reason: e.to_string() })
}
