//! A small SigV4-signing client for Sluice's own APIs, over HTTPS (or plain HTTP on loopback).
//! Credentials come the way AWS tools take them from the environment.

use std::sync::Arc;

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use sluice_crypto::Secret;
use sluice_crypto::sigv4::{self, RequestParts};

/// Signatures carry the real time, whatever clock a server is told to use.
#[allow(clippy::disallowed_methods, reason = "SigV4 signs with the wall clock")]
fn signing_time() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// An API error as the service sent it: `__type` and message.
#[derive(Debug, Clone)]
pub struct ServiceError {
    pub kind: String,
    pub status: u16,
    pub message: String,
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} (HTTP {}): {}", self.kind, self.status, self.message)
    }
}

impl std::error::Error for ServiceError {}

pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret<String>,
    /// Session credentials' token (`X-Amz-Security-Token`, signed with the request).
    pub session_token: Option<Secret<String>>,
}

impl Credentials {
    /// As AWS tools take them: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`, else the profile
    /// `AWS_PROFILE` (or `default`) of the shared credentials file
    /// (`AWS_SHARED_CREDENTIALS_FILE`, or `~/.aws/credentials`).
    #[allow(
        clippy::disallowed_methods,
        reason = "a runner takes credentials from the environment, as AWS tools do"
    )]
    pub fn from_environment() -> anyhow::Result<Credentials> {
        if let (Ok(access_key_id), Ok(secret)) = (
            std::env::var("AWS_ACCESS_KEY_ID"),
            std::env::var("AWS_SECRET_ACCESS_KEY"),
        ) {
            return Ok(Credentials {
                access_key_id,
                secret_access_key: Secret::new(secret),
                session_token: std::env::var("AWS_SESSION_TOKEN")
                    .ok()
                    .filter(|token| !token.is_empty())
                    .map(Secret::new),
            });
        }
        let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_string());
        let path = match std::env::var("AWS_SHARED_CREDENTIALS_FILE") {
            Ok(path) => std::path::PathBuf::from(path),
            Err(_) => std::path::PathBuf::from(std::env::var("HOME").context(
                "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws/credentials",
            )?)
            .join(".aws")
            .join("credentials"),
        };
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "no credentials: AWS_ACCESS_KEY_ID is not set and {} cannot be read",
                path.display()
            )
        })?;
        Credentials::from_profile(&text, &profile).with_context(|| format!("profile '{profile}' in {}", path.display()))
    }

    /// A profile of a shared credentials file (INI: `[name]`, then `key = value` lines).
    pub fn from_profile(text: &str, profile: &str) -> anyhow::Result<Credentials> {
        let mut in_profile = false;
        let (mut access_key_id, mut secret, mut token) = (None, None, None);
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
                in_profile = name.trim() == profile;
                continue;
            }
            if !in_profile {
                continue;
            }
            if let Some((key, value)) = line.split_once('=') {
                match key.trim() {
                    "aws_access_key_id" => access_key_id = Some(value.trim().to_string()),
                    "aws_secret_access_key" => secret = Some(value.trim().to_string()),
                    "aws_session_token" => token = Some(Secret::new(value.trim().to_string())),
                    _ => {}
                }
            }
        }
        match (access_key_id, secret) {
            (Some(access_key_id), Some(secret)) => Ok(Credentials {
                access_key_id,
                secret_access_key: Secret::new(secret),
                session_token: token,
            }),
            _ => bail!("has no aws_access_key_id and aws_secret_access_key"),
        }
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<bytes::Bytes>>;

/// Idle keep-alive connections kept for reuse.
const IDLE_CONNECTIONS: usize = 8;

pub struct Client {
    endpoint: http::Uri,
    credentials: Credentials,
    tls: Option<Arc<rustls::ClientConfig>>,
    region: String,
    /// Keep-alive connections not in use: a call takes one (or opens one) and gives it back.
    idle: std::sync::Mutex<Vec<Sender>>,
}

impl Client {
    pub fn new(
        endpoint: &str,
        credentials: Credentials,
        ca_bundle: Option<&std::path::Path>,
        region: String,
    ) -> anyhow::Result<Client> {
        let endpoint: http::Uri = endpoint.parse().with_context(|| format!("'{endpoint}' is not a URL"))?;
        let tls = match endpoint.scheme_str() {
            Some("https") => {
                let mut roots = rustls::RootCertStore::empty();
                match ca_bundle {
                    Some(path) => {
                        let pem =
                            std::fs::read(path).with_context(|| format!("cannot read CA bundle {}", path.display()))?;
                        for certificate in rustls_pemfile::certs(&mut pem.as_slice()) {
                            roots.add(certificate?)?;
                        }
                    }
                    None => {
                        for certificate in rustls_native_certs::load_native_certs().certs {
                            let _ = roots.add(certificate);
                        }
                    }
                }
                let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                Some(Arc::new(config))
            }
            Some("http") if matches!(endpoint.host(), Some("127.0.0.1" | "localhost" | "[::1]" | "::1")) => None,
            Some("http") => bail!("plain http:// is allowed on loopback only; use https://"),
            _ => bail!("the endpoint must be an https:// (or loopback http://) URL"),
        };
        Ok(Client {
            endpoint,
            credentials,
            tls,
            region,
            idle: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// An idle connection that is still open and ready for a request.
    async fn reusable(&self) -> Option<Sender> {
        loop {
            let mut sender = self.idle.lock().ok()?.pop()?;
            if !sender.is_closed() && sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    async fn connect(&self, host: &str, port: u16, authority: &str) -> anyhow::Result<Sender> {
        let stream = tokio::net::TcpStream::connect((host, port))
            .await
            .with_context(|| format!("cannot connect to {authority}"))?;
        stream.set_nodelay(true)?;
        Ok(match &self.tls {
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(host.to_string())?;
                let tls_stream = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, stream)
                    .await
                    .context("TLS handshake failed")?;
                let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls_stream)).await?;
                tokio::spawn(connection);
                sender
            }
            None => {
                let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(connection);
                sender
            }
        })
    }

    /// A Data Pipeline call (`DataPipeline.<operation>`).
    pub async fn datapipeline(&self, operation: &str, body: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
        self.call(&format!("DataPipeline.{operation}"), "datapipeline", body)
            .await
    }

    /// One AWS JSON 1.1 call. Returns the response body, or an error with the service's
    /// `__type` and message.
    pub async fn call(
        &self,
        target: &str,
        signing_service: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let host = self.endpoint.host().context("the endpoint has no host")?.to_string();
        let port = self
            .endpoint
            .port_u16()
            .unwrap_or(if self.tls.is_some() { 443 } else { 80 });
        let authority = self
            .endpoint
            .authority()
            .context("the endpoint has no host")?
            .to_string();
        let payload = serde_json::to_vec(body)?;
        let amz_date = signing_time().format("%Y%m%dT%H%M%SZ").to_string();
        let mut headers = vec![
            ("content-type".to_string(), "application/x-amz-json-1.1".to_string()),
            ("host".to_string(), authority.clone()),
            ("x-amz-date".to_string(), amz_date.clone()),
            ("x-amz-target".to_string(), target.to_string()),
        ];
        if let Some(token) = &self.credentials.session_token {
            headers.push(("x-amz-security-token".to_string(), token.expose_secret().clone()));
        }
        let signed: Vec<String> = headers.iter().map(|(name, _)| name.clone()).collect();
        let parts = RequestParts {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: &payload,
        };
        let signature = sigv4::signature(
            &parts,
            &signed,
            &self.credentials.secret_access_key,
            &amz_date,
            &self.region,
            signing_service,
        );
        headers.push((
            "authorization".to_string(),
            format!(
                "{} Credential={}/{}/{}/{signing_service}/aws4_request, SignedHeaders={}, Signature={signature}",
                sigv4::ALGORITHM,
                self.credentials.access_key_id,
                &amz_date[..8],
                self.region,
                signed.join(";")
            ),
        ));
        let payload = bytes::Bytes::from(payload);
        let build = || {
            let mut request = Request::post("/");
            for (name, value) in &headers {
                request = request.header(name, value);
            }
            request.body(Full::new(payload.clone()))
        };
        // A kept connection the server closed meanwhile fails at once: retry on a fresh one.
        let (sender, response) = match self.reusable().await {
            Some(mut sender) => match sender.send_request(build()?).await {
                Ok(response) => (sender, response),
                Err(_) => {
                    let mut sender = self.connect(&host, port, &authority).await?;
                    let response = sender.send_request(build()?).await?;
                    (sender, response)
                }
            },
            None => {
                let mut sender = self.connect(&host, port, &authority).await?;
                let response = sender.send_request(build()?).await?;
                (sender, response)
            }
        };
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if !sender.is_closed()
            && let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE_CONNECTIONS
        {
            idle.push(sender);
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        if !status.is_success() {
            let kind = value.get("__type").and_then(|kind| kind.as_str()).unwrap_or("error");
            let message = value.get("message").and_then(|message| message.as_str()).unwrap_or("");
            return Err(ServiceError {
                kind: kind.rsplit('#').next().unwrap_or(kind).to_string(),
                status: status.as_u16(),
                message: message.to_string(),
            }
            .into());
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_read_from_a_credentials_file() {
        let text = "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = d\n\n# comment\n[runner]\naws_access_key_id=AKIARUNNER\naws_secret_access_key=s3cret\n";
        let runner = Credentials::from_profile(text, "runner").expect("profile");
        assert_eq!(runner.access_key_id, "AKIARUNNER");
        assert_eq!(runner.secret_access_key.expose_secret(), "s3cret");
        assert_eq!(
            Credentials::from_profile(text, "default")
                .expect("default")
                .access_key_id,
            "AKIADEFAULT"
        );
        assert!(Credentials::from_profile(text, "missing").is_err());
        assert!(Credentials::from_profile("[x]\naws_session_token = t\n", "x").is_err());
        let session = Credentials::from_profile(
            "[s]\naws_access_key_id = ASIAX\naws_secret_access_key = k\naws_session_token = tok\n",
            "s",
        )
        .expect("session profile");
        assert_eq!(
            session.session_token.map(|token| token.expose_secret().clone()),
            Some("tok".into())
        );
    }
}
