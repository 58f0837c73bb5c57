//! The `sluice serve` process: an HTTPS server speaking the AWS Data Pipeline API.
//!
//! Every request goes through one path, in this order: parse `X-Amz-Target` → read the body
//! (bounded) → authenticate (SigV4) → authorize → handle, all inside one store transaction that
//! commits only if the handler succeeded. This crate never runs user code or starts processes,
//! and never writes a secret or a signature to a log.

mod admin;
pub mod api;
pub mod audit;
pub mod authz;
pub mod bootstrap;
mod checks;
mod classification;
pub mod clock;
mod console;
mod findings;
mod handlers;
mod iam;
pub mod keys;
mod login;
mod notify;
mod query;
mod roles;
mod runs;
pub mod scheduler;
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
use sluice_store::{IdentityRecord, SqliteStore, Store};
use tokio::net::TcpListener;

pub use api::AppState;

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    /// A PostgreSQL URL to keep state there instead of the data directory's SQLite file.
    pub store: Option<String>,
    pub listen: SocketAddr,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub insecure_http: bool,
    pub limits: Limits,
    /// Live pipelines per account. AWS's default is 100 (adjustable on request); a self-hosted
    /// service has no reason for so low a ceiling.
    pub max_pipelines: i64,
    pub region: String,
    pub audit: AuditConfig,
    /// The folder of key-encryption keys (`DIR/keys` by default).
    pub key_dir: Option<PathBuf>,
    /// Refuse to run unless TLS and all other cryptography use AWS-LC's FIPS 140-3 module.
    pub fips: bool,
    /// Key-encryption keys handed over by the environment instead of the key folder.
    pub kek_versions: Option<keys::KekVersions>,
    pub scheduler: scheduler::SchedulerSettings,
    /// Tests only: read "now" from this file (an RFC 3339 time) instead of the system clock.
    pub clock_file: Option<PathBuf>,
    /// Mint credentials for a task runner in this process (see `Ready::runner`).
    pub in_process_runner: bool,
    /// Whose credentials those are.
    pub in_process_runner_identity: RunnerIdentity,
    /// Where the in-process runner writes attempt logs (the console shows them from there, or
    /// from `pipelineLogUri`).
    pub runner_log_dir: Option<PathBuf>,
}

/// The in-process runner's key prefix of the server with this data directory: the shared
/// prefix and three characters of the directory's hash.
fn in_process_prefix(data_dir: &std::path::Path) -> String {
    let path = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, path.as_os_str().as_encoded_bytes());
    let tag: String = digest
        .as_ref()
        .iter()
        .take(3)
        .map(|byte| char::from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[usize::from(byte % 32)]))
        .collect();
    format!("{IN_PROCESS_KEY_PREFIX}{tag}")
}

/// A database URL as it may be logged: no password, neither in the user part nor as a
/// `password` parameter; a URL that does not parse is not shown at all.
fn without_password(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "(a database URL that does not parse)".into();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("****"));
    }
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(key, value)| {
            let value = if key.eq_ignore_ascii_case("password") {
                "****".into()
            } else {
                value.into_owned()
            };
            (key.into_owned(), value)
        })
        .collect();
    if !kept.is_empty() {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    parsed.to_string()
}

/// The identity an in-process runner's key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerIdentity {
    /// The account's root identity: `sluice run`, whose private server is driven with this key.
    Root,
    /// The service user `sluice-in-process-runner`, allowed only the task-runner operations
    /// (`sluice serve`): a task cannot reach anything else through its runner.
    TaskRunner,
}

/// The service user of in-process runners, with the SluiceInProcessRunner policy; created once.
async fn in_process_runner_user(state: &AppState) -> anyhow::Result<String> {
    const NAME: &str = "sluice-in-process-runner";
    let mut tx = state.store.begin().await?;
    let identity_id = match tx.user(&state.account_id, NAME).await? {
        Some(user) => user.identity.identity_id,
        None => {
            let identity_id = format!("AIDA{}", bootstrap::random_upper_alphanumeric(17)?);
            tx.insert_user(&sluice_store::UserRecord {
                identity: IdentityRecord {
                    identity_id: identity_id.clone(),
                    account_id: state.account_id.clone(),
                    kind: "IAMUser".into(),
                    name: NAME.into(),
                    arn: format!("arn:aws:iam::{}:user/sluice/{NAME}", state.account_id),
                },
                path: "/sluice/".into(),
                tags: vec![("sluice:service".into(), "true".into())],
                created_at: clock::render(state.clock.now()),
            })
            .await?;
            identity_id
        }
    };
    tx.attach_policy(&identity_id, &authz::managed_policy_arn("SluiceInProcessRunner"))
        .await?;
    tx.commit().await?;
    Ok(identity_id)
}

/// What `serve_until` tells its caller once it listens.
pub struct Ready {
    pub url: String,
    /// Credentials minted for an in-process task runner: an access key (of the root identity or
    /// of the task-runner service user, see `RunnerIdentity`) that exists only while this server runs (deleted at shutdown, and at the next start if
    /// the process died), never written to disk in plaintext.
    pub runner: Option<RunnerAccess>,
}

pub struct RunnerAccess {
    pub access_key_id: String,
    pub secret_access_key: sluice_crypto::Secret<String>,
    /// The certificate to trust for `url` (the self-signed one); `None` for plain HTTP.
    pub ca_bundle: Option<PathBuf>,
}

/// Access key ids minted for in-process runners start with this.
pub(crate) const IN_PROCESS_KEY_PREFIX: &str = "AKIAINPROCESS";

#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Where log and digest files go; `DIR/audit` by default.
    pub directory: Option<PathBuf>,
    /// `s3://bucket/prefix` instead of a folder.
    pub bucket: Option<String>,
    /// Endpoint of an S3-compatible server for `bucket` (AWS's when absent).
    pub s3_endpoint: Option<String>,
    /// The Ed25519 digest signing key; `DIR/keys/audit-signing.pk8` by default. Keep it off the
    /// database's disk to make digests trustworthy against someone who can edit the database.
    pub signing_key: Option<PathBuf>,
    pub schedule: audit::delivery::Schedule,
}

impl AuditConfig {
    pub fn directory(&self, data_dir: &std::path::Path) -> PathBuf {
        self.directory.clone().unwrap_or_else(|| data_dir.join("audit"))
    }

    pub fn destination(
        &self,
        data_dir: &std::path::Path,
        region: &str,
    ) -> anyhow::Result<audit::destination::AuditDestination> {
        match &self.bucket {
            Some(bucket) => audit::destination::AuditDestination::bucket(bucket, self.s3_endpoint.as_deref(), region),
            None => audit::destination::AuditDestination::folder(&self.directory(data_dir)),
        }
    }

    pub fn signing_key(&self, data_dir: &std::path::Path) -> PathBuf {
        self.signing_key
            .clone()
            .unwrap_or_else(|| audit::delivery::default_key_path(data_dir))
    }
}

fn tls_version_name(version: Option<rustls::ProtocolVersion>) -> Option<String> {
    version.map(|version| match version {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
        other => format!("{other:?}"),
    })
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
}

/// Opens the data directory (creating the root identity on first start), binds the listener
/// and serves until SIGTERM or SIGINT; then delivers and digests the audit trail one last time.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    serve_until(config, shutdown_signal(), None).await
}

/// `serve`, stopping when `shutdown` completes; `ready` learns the URL once it listens (and
/// nothing is printed then: the caller reports).
pub async fn serve_until(
    config: ServeConfig,
    shutdown: impl std::future::Future<Output = ()>,
    ready: Option<tokio::sync::oneshot::Sender<Ready>>,
) -> anyhow::Result<()> {
    if config.insecure_http && !config.listen.ip().is_loopback() {
        bail!(
            "--insecure-http serves plain HTTP and is only allowed on a loopback address, not {}",
            config.listen.ip()
        );
    }
    if config.tls_cert.is_some() != config.tls_key.is_some() {
        bail!("--tls-cert and --tls-key go together");
    }
    if config.fips && !tls::crypto_module_is_fips() {
        bail!(
            "--fips: the cryptographic module is not in FIPS mode{}",
            if cfg!(feature = "fips") {
                ""
            } else {
                " (this build has no FIPS module; build with --features fips, which needs CMake and Go)"
            }
        );
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    // The directory holds the store, keys and credentials: nobody else needs to list or read it.
    std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict the permissions of {}", config.data_dir.display()))?;
    let store: Arc<dyn Store> = match &config.store {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            // The URL as logged: without a password, should one have been put there.
            let shown = without_password(url);
            tracing::info!(store = %shown, "state is kept in PostgreSQL");
            Arc::new(
                sluice_store::PostgresStore::open(url)
                    .await
                    .with_context(|| format!("cannot open the PostgreSQL store {shown}"))?,
            )
        }
        Some(_) => {
            anyhow::bail!("--store takes a postgres:// URL (without it, the data directory's SQLite file is used)")
        }
        None => Arc::new(
            SqliteStore::open(&config.data_dir.join("sluice.db"))
                .await
                .context("cannot open the store")?,
        ),
    };
    let clock: Arc<dyn clock::Clock> = match &config.clock_file {
        Some(path) => {
            tracing::warn!(path = %path.display(), "the scheduler's clock is read from a file: for tests only");
            Arc::new(clock::FileClock::new(path.clone()))
        }
        None => Arc::new(clock::SystemClock),
    };
    let key_directory = config
        .key_dir
        .clone()
        .unwrap_or_else(|| keys::default_key_directory(&config.data_dir));
    let store_is_new = store.begin().await?.root_account_id().await?.is_none();
    let cipher = match &config.kek_versions {
        Some(versions) => Arc::new(keys::Cipher::new(keys::Keyring::from_versions(versions.clone())?)?),
        None => {
            let keyring = keys::Keyring::open_or_create(&key_directory, store_is_new)?;
            Arc::new(keys::Cipher::from_directory(&key_directory, keyring)?)
        }
    };
    let vault: Arc<dyn vault::SecretVault> = Arc::new(vault::KekVault { cipher: cipher.clone() });
    let account_id = bootstrap::ensure_root(store.as_ref(), vault.as_ref(), clock.as_ref(), &config.data_dir).await?;
    {
        let mut tx = store.begin().await?;
        roles::ensure_default_roles(tx.as_mut(), &account_id, &clock::render(clock.now())).await?;
        tx.commit().await?;
    }

    let delivery = Arc::new(
        audit::delivery::AuditDelivery::open(
            config.audit.destination(&config.data_dir, &config.region)?,
            &config.audit.signing_key(&config.data_dir),
            account_id.clone(),
            config.region.clone(),
        )
        .await
        .context("cannot set up audit delivery")?,
    );
    tracing::info!(destination = %delivery.destination.description, fingerprint = %delivery.fingerprint, "audit trail delivery");
    let (shutdown_sender, shutdown_receiver) = tokio::sync::watch::channel(false);
    // The scheduler's lease first: what must be done once (the scheduler's loop, audit
    // delivery) is done by the server holding it.
    let scheduler = scheduler::Scheduler::new(config.scheduler.clone());
    let lease_worker = tokio::spawn(scheduler::keep_lease(
        scheduler.clone(),
        store.clone(),
        shutdown_sender.subscribe(),
    ));
    let audit_worker = tokio::spawn(audit::delivery::run(
        delivery.clone(),
        store.clone(),
        clock.clone(),
        config.audit.schedule.clone(),
        shutdown_receiver,
        scheduler.clone(),
    ));

    let tls = if config.insecure_http {
        None
    } else {
        let (cert, key) = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => (cert.clone(), key.clone()),
            _ => tls::ensure_self_signed(&config.data_dir)?,
        };
        Some(tls::server_config(&cert, &key, config.fips)?)
    };

    let state = AppState {
        store,
        clock,
        vault,
        cipher,
        limits: config.limits.clone(),
        max_pipelines: config.max_pipelines,
        account_id,
        region: config.region.clone(),
        fips: config.fips,
        scheduler: scheduler.clone(),
        audit: delivery.clone(),
        admin: Arc::new(admin::AdminJobs::default()),
        classification: Arc::new(classification::ClassificationJobs::default()),
        runner_log_dir: config.runner_log_dir.clone(),
    };
    let scheduler_worker = tokio::spawn(scheduler::run(state.clone(), shutdown_sender.subscribe()));
    let router = api::router(state.clone());
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{address}");
    // Keys minted for an earlier process's runner die with it. Each server (its data directory)
    // has a prefix of its own: servers sharing a database remove only their own keys.
    let own_prefix = in_process_prefix(&config.data_dir);
    {
        let mut tx = state.store.begin().await?;
        tx.delete_access_keys_with_prefix(&own_prefix).await?;
        tx.commit().await?;
    }
    let runner = if config.in_process_runner && (config.tls_cert.is_none() || config.insecure_http) {
        let (_, secret) = bootstrap::new_access_key()?;
        let access_key_id = format!(
            "{own_prefix}{}",
            bootstrap::random_upper_alphanumeric(20 - own_prefix.len())?
        );
        let identity_id = match config.in_process_runner_identity {
            RunnerIdentity::Root => state.account_id.clone(),
            RunnerIdentity::TaskRunner => in_process_runner_user(&state).await?,
        };
        let mut tx = state.store.begin().await?;
        tx.insert_access_key(
            &access_key_id,
            &identity_id,
            &state.vault.seal(&keys::access_key_context(&access_key_id), &secret)?,
            &clock::render(state.clock.now()),
        )
        .await?;
        tx.commit().await?;
        Some(RunnerAccess {
            access_key_id,
            secret_access_key: secret,
            ca_bundle: (!config.insecure_http).then(|| config.data_dir.join("tls").join("cert.pem")),
        })
    } else {
        if config.in_process_runner {
            tracing::warn!(
                "no in-process task runner with --tls-cert: start `sluice runner` with the certificate's CA"
            );
        }
        None
    };
    let store_for_cleanup = state.store.clone();
    match ready {
        Some(ready) => {
            let _ = ready.send(Ready { url, runner });
        }
        // Tests and scripts read this line to learn the port when listening on port 0.
        None => println!("sluice: listening on {url}"),
    }
    tracing::info!(%address, scheme, fips = config.fips, "listening");
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);

    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let router = router.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let builder = auto::Builder::new(TokioExecutor::new());
            let result = match acceptor {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls_stream) => {
                        let session = tls_stream.get_ref().1;
                        let info = api::ConnectionInfo {
                            peer: Some(peer),
                            tls_version: tls_version_name(session.protocol_version()),
                            cipher_suite: session
                                .negotiated_cipher_suite()
                                .map(|suite| format!("{:?}", suite.suite())),
                        };
                        let service = TowerToHyperService::new(router.layer(axum::Extension(info)));
                        builder.serve_connection(TokioIo::new(tls_stream), service).await
                    }
                    Err(error) => {
                        tracing::debug!(%peer, %error, "tls handshake failed");
                        return;
                    }
                },
                None => {
                    let info = api::ConnectionInfo {
                        peer: Some(peer),
                        ..api::ConnectionInfo::default()
                    };
                    let service = TowerToHyperService::new(router.layer(axum::Extension(info)));
                    builder.serve_connection(TokioIo::new(stream), service).await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    tracing::info!("shutting down: delivering and digesting the audit trail");
    let _ = shutdown_sender.send(true);
    let _ = scheduler_worker.await;
    let _ = audit_worker.await;
    let _ = lease_worker.await;
    if let Ok(mut tx) = store_for_cleanup.begin().await
        && tx.delete_access_keys_with_prefix(&own_prefix).await.is_ok()
    {
        let _ = tx.commit().await;
    }
    Ok(())
}

#[cfg(test)]
mod store_url_tests {
    use super::without_password;

    #[test]
    fn a_database_url_is_logged_without_its_password() {
        assert_eq!(
            without_password("postgres://app:s3cr3t@db.internal:5432/sluice?sslmode=verify-full"),
            "postgres://app:****@db.internal:5432/sluice?sslmode=verify-full"
        );
        assert_eq!(
            without_password("postgres://app@db/sluice?password=s3cr3t&sslmode=require"),
            "postgres://app@db/sluice?password=****&sslmode=require"
        );
        assert_eq!(without_password("postgres://app@db/sluice"), "postgres://app@db/sluice");
        assert!(!without_password("postgres://app:pa/ss?@db/x").contains("pa/ss"));
    }
}
