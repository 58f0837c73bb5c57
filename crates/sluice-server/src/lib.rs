//! The `sluice serve` process: an HTTPS server speaking the AWS Data Pipeline API.
//!
//! Every request goes through one path, in this order: parse `X-Amz-Target` → read the body
//! (bounded) → authenticate (SigV4) → authorize → handle, all inside one store transaction that
//! commits only if the handler succeeded. This crate never runs user code or starts processes,
//! and never writes a secret or a signature to a log.

pub mod api;
pub mod authz;
pub mod bootstrap;
pub mod clock;
mod handlers;
pub mod tls;
pub mod vault;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use sluice_core::Limits;
use sluice_store::{SqliteStore, Store};
use tokio::net::TcpListener;

pub use api::AppState;

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub insecure_http: bool,
    pub limits: Limits,
    /// Live pipelines per account. AWS's default is 100 (adjustable on request); a self-hosted
    /// service has no reason for so low a ceiling.
    pub max_pipelines: i64,
}

/// Opens the data directory (creating the root identity on first start), binds the listener
/// and serves until the process is stopped.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    if config.insecure_http && !config.listen.ip().is_loopback() {
        bail!(
            "--insecure-http serves plain HTTP and is only allowed on a loopback address, not {}",
            config.listen.ip()
        );
    }
    if config.tls_cert.is_some() != config.tls_key.is_some() {
        bail!("--tls-cert and --tls-key go together");
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    // The directory holds the store, keys and credentials: nobody else needs to list or read it.
    std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| {
            format!(
                "cannot restrict the permissions of {}",
                config.data_dir.display()
            )
        })?;
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&config.data_dir.join("sluice.db"))
            .await
            .context("cannot open the store")?,
    );
    let clock: Arc<dyn clock::Clock> = Arc::new(clock::SystemClock);
    let vault: Arc<dyn vault::SecretVault> = Arc::new(vault::UnsealedVault);
    bootstrap::ensure_root(
        store.as_ref(),
        vault.as_ref(),
        clock.as_ref(),
        &config.data_dir,
    )
    .await?;

    let tls = if config.insecure_http {
        None
    } else {
        let (cert, key) = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => (cert.clone(), key.clone()),
            _ => tls::ensure_self_signed(&config.data_dir)?,
        };
        Some(tls::server_config(&cert, &key)?)
    };

    let state = AppState {
        store,
        clock,
        vault,
        limits: config.limits.clone(),
        max_pipelines: config.max_pipelines,
    };
    let router = api::router(state);
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Tests and scripts read this line to learn the port when listening on port 0.
    println!("sluice: listening on {scheme}://{address}");
    tracing::info!(%address, scheme, "listening");
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);

    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                continue;
            }
        };
        let router = router.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let service = TowerToHyperService::new(router.layer(axum::Extension(api::Peer(peer))));
            let builder = auto::Builder::new(TokioExecutor::new());
            let result = match acceptor {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls_stream) => {
                        builder
                            .serve_connection(TokioIo::new(tls_stream), service)
                            .await
                    }
                    Err(error) => {
                        tracing::debug!(%peer, %error, "tls handshake failed");
                        return;
                    }
                },
                None => {
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
}
