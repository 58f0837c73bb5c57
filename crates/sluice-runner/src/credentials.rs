//! A task's own credentials, served to its processes on a loopback endpoint in the two
//! protocols AWS SDKs and the AWS CLI already look for, so `aws ...` or boto3 inside a task needs
//! no configuration:
//!
//! - the container-credentials protocol: `AWS_CONTAINER_CREDENTIALS_FULL_URI` and a token file
//!   (`AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`) whose content must come back as `Authorization`;
//! - IMDSv2: `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds`, then
//!   `GET /latest/meta-data/iam/security-credentials/<role>` with `X-aws-ec2-metadata-token`.
//!   Requests without a token (IMDSv1) are refused, and so is anything carrying
//!   `X-Forwarded-For` (a proxy relaying someone else's request).
//!
//! One endpoint per attempt, with its own tokens: it stops when the attempt ends, and the
//! service refuses the credentials from then on.

use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use sluice_crypto::Secret;
use tokio::net::TcpListener;

/// The credentials PollForTask handed out with a task (Sluice's `sluiceTaskCredentials`).
#[derive(Debug, Clone)]
pub struct TaskCredentials {
    pub role_arn: String,
    pub role_name: String,
    pub access_key_id: String,
    pub secret_access_key: Secret<String>,
    pub session_token: Secret<String>,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub expiration: String,
    /// Credentials for external systems the role carries, by name.
    pub secrets: Vec<(String, Secret<String>)>,
}

impl TaskCredentials {
    pub fn from_json(value: &Value) -> Option<TaskCredentials> {
        let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_string);
        Some(TaskCredentials {
            role_arn: text("roleArn")?,
            role_name: text("roleName")?,
            access_key_id: text("accessKeyId")?,
            secret_access_key: Secret::new(text("secretAccessKey")?),
            session_token: Secret::new(text("sessionToken")?),
            expiration: text("expiration")?,
            secrets: value
                .get("secrets")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter_map(|(name, value)| Some((name.clone(), Secret::new(value.as_str()?.to_string()))))
                .collect(),
        })
    }

    pub fn secret(&self, name: &str) -> Option<&str> {
        self.secrets
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, value)| value.expose_secret().as_str())
    }
}

const MAX_TOKEN_TTL_SECONDS: u64 = 21_600;
const MAX_IMDS_TOKENS: usize = 256;
const TOKEN_FILE: &str = ".aws-container-authorization-token";

struct Shared {
    credentials: TaskCredentials,
    container_token: Secret<String>,
    /// IMDSv2 session tokens and when each expires.
    imds_tokens: Mutex<Vec<(Secret<String>, Instant)>>,
}

fn random_token() -> anyhow::Result<String> {
    use aws_lc_rs::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

fn same(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// The answer to one request: status, content type and body.
struct Answer(StatusCode, &'static str, String);

fn refuse(status: StatusCode, message: &str) -> Answer {
    Answer(status, "text/plain", format!("{message}\n"))
}

impl Shared {
    fn credentials_json(&self, imds: bool) -> String {
        let credentials = &self.credentials;
        let mut body = json!({
            "AccessKeyId": credentials.access_key_id,
            "SecretAccessKey": credentials.secret_access_key.expose_secret(),
            "Token": credentials.session_token.expose_secret(),
            "Expiration": credentials.expiration,
        });
        if imds {
            body["Code"] = json!("Success");
            body["Type"] = json!("AWS-HMAC");
            body["LastUpdated"] = json!(credentials.expiration);
        } else {
            body["RoleArn"] = json!(credentials.role_arn);
        }
        body.to_string()
    }

    fn valid_imds_token(&self, presented: &str) -> bool {
        let now = Instant::now();
        let Ok(mut tokens) = self.imds_tokens.lock() else {
            return false;
        };
        tokens.retain(|(_, expires)| *expires > now);
        tokens.iter().any(|(token, _)| same(token.expose_secret(), presented))
    }

    fn answer(&self, method: &Method, path: &str, header: impl Fn(&str) -> Option<String>) -> Answer {
        if header("x-forwarded-for").is_some() {
            return refuse(StatusCode::FORBIDDEN, "forwarded requests are refused");
        }
        match (method, path) {
            (&Method::GET, "/credentials") => match header("authorization") {
                Some(token) if same(&token, self.container_token.expose_secret()) => {
                    Answer(StatusCode::OK, "application/json", self.credentials_json(false))
                }
                Some(_) => refuse(StatusCode::FORBIDDEN, "the authorization token is not this task's"),
                None => refuse(StatusCode::UNAUTHORIZED, "an authorization token is required"),
            },
            (&Method::GET, path) if path.starts_with("/secrets/") => match header("authorization") {
                Some(token) if same(&token, self.container_token.expose_secret()) => {
                    let name = path.trim_start_matches("/secrets/");
                    match self.credentials.secret(name) {
                        Some(value) => Answer(StatusCode::OK, "text/plain", value.to_string()),
                        None => refuse(StatusCode::NOT_FOUND, "the role carries no secret of that name"),
                    }
                }
                Some(_) => refuse(StatusCode::FORBIDDEN, "the authorization token is not this task's"),
                None => refuse(StatusCode::UNAUTHORIZED, "an authorization token is required"),
            },
            (&Method::PUT, "/latest/api/token") => {
                let ttl = header("x-aws-ec2-metadata-token-ttl-seconds").and_then(|ttl| ttl.trim().parse::<u64>().ok());
                match ttl {
                    Some(ttl) if (1..=MAX_TOKEN_TTL_SECONDS).contains(&ttl) => match random_token() {
                        Ok(token) => {
                            if let Ok(mut tokens) = self.imds_tokens.lock() {
                                let now = Instant::now();
                                tokens.retain(|(_, expires)| *expires > now);
                                // Bounded: the oldest go first.
                                if tokens.len() >= MAX_IMDS_TOKENS {
                                    tokens.remove(0);
                                }
                                tokens.push((Secret::new(token.clone()), now + Duration::from_secs(ttl)));
                            }
                            Answer(StatusCode::OK, "text/plain", token)
                        }
                        Err(_) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "no token could be made"),
                    },
                    _ => refuse(
                        StatusCode::BAD_REQUEST,
                        "X-aws-ec2-metadata-token-ttl-seconds must be between 1 and 21600",
                    ),
                }
            }
            (&Method::GET | &Method::HEAD, path) if path.starts_with("/latest/") => {
                match header("x-aws-ec2-metadata-token") {
                    None => refuse(
                        StatusCode::UNAUTHORIZED,
                        "IMDSv1 is disabled: get a session token with PUT /latest/api/token first",
                    ),
                    Some(token) if !self.valid_imds_token(&token) => {
                        refuse(StatusCode::UNAUTHORIZED, "the session token is not valid")
                    }
                    Some(_) => {
                        let listing = "/latest/meta-data/iam/security-credentials/";
                        match path.strip_prefix(listing) {
                            Some("") => Answer(StatusCode::OK, "text/plain", self.credentials.role_name.clone()),
                            Some(name) if name.trim_end_matches('/') == self.credentials.role_name => {
                                Answer(StatusCode::OK, "application/json", self.credentials_json(true))
                            }
                            _ if path == "/latest/meta-data/iam/security-credentials" => {
                                Answer(StatusCode::OK, "text/plain", self.credentials.role_name.clone())
                            }
                            _ => refuse(StatusCode::NOT_FOUND, "not found"),
                        }
                    }
                }
            }
            _ => refuse(StatusCode::NOT_FOUND, "not found"),
        }
    }
}

/// The endpoint of one attempt; it stops when dropped.
pub struct CredentialEndpoint {
    address: SocketAddr,
    token_file: PathBuf,
    server: tokio::task::JoinHandle<()>,
}

impl CredentialEndpoint {
    /// Listens on a free loopback port and writes the container token file into `folder`
    /// (mode 0600).
    pub async fn start(credentials: TaskCredentials, folder: &Path) -> anyhow::Result<CredentialEndpoint> {
        let container_token = random_token()?;
        let token_file = folder.join(TOKEN_FILE);
        {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&token_file)
                .with_context(|| format!("cannot write {}", token_file.display()))?;
            file.write_all(container_token.as_bytes())?;
        }
        let shared = Arc::new(Shared {
            credentials,
            container_token: Secret::new(container_token),
            imds_tokens: Mutex::new(Vec::new()),
        });
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("cannot listen for the task's credential endpoint")?;
        let address = listener.local_addr()?;
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                        let shared = shared.clone();
                        async move {
                            let headers = request.headers();
                            let header = |name: &str| {
                                headers
                                    .get(name)
                                    .and_then(|value| value.to_str().ok())
                                    .map(str::to_string)
                            };
                            let Answer(status, content_type, body) =
                                shared.answer(request.method(), request.uri().path(), header);
                            let mut response = Response::new(Full::new(Bytes::from(body)));
                            *response.status_mut() = status;
                            response
                                .headers_mut()
                                .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(CredentialEndpoint {
            address,
            token_file,
            server,
        })
    }

    /// What the task's environment needs for SDKs to find the endpoint.
    pub fn environment(&self) -> Vec<(String, String)> {
        let base = format!("http://{}", self.address);
        vec![
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI".into(),
                format!("{base}/credentials"),
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE".into(),
                self.token_file.display().to_string(),
            ),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT".into(), format!("{base}/")),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE".into(), "IPv4".into()),
            ("AWS_EC2_METADATA_V1_DISABLED".into(), "true".into()),
            // The role's secrets: GET <uri><name> with the token file's content as Authorization.
            ("SLUICE_SECRETS_URI".into(), format!("{base}/secrets/")),
        ]
    }
}

impl Drop for CredentialEndpoint {
    fn drop(&mut self) {
        self.server.abort();
        let _ = std::fs::remove_file(&self.token_file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared {
            credentials: TaskCredentials {
                role_arn: "arn:aws:iam::1:role/Reader".into(),
                role_name: "Reader".into(),
                access_key_id: "ASIAEXAMPLE".into(),
                secret_access_key: Secret::new("secret".into()),
                session_token: Secret::new("token".into()),
                expiration: "2026-11-29T02:00:00Z".into(),
                secrets: vec![("db.password".into(), Secret::new("hunter2".into()))],
            },
            container_token: Secret::new("container-token".into()),
            imds_tokens: Mutex::new(Vec::new()),
        }
    }

    fn ask(shared: &Shared, method: Method, path: &str, headers: &[(&str, &str)]) -> (StatusCode, String) {
        let Answer(status, _, body) = shared.answer(&method, path, |name| {
            headers
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        });
        (status, body)
    }

    #[test]
    fn imdsv2_needs_a_session_token_and_refuses_forwarded_requests() {
        let shared = shared();
        let path = "/latest/meta-data/iam/security-credentials/Reader";
        assert_eq!(ask(&shared, Method::GET, path, &[]).0, StatusCode::UNAUTHORIZED);
        assert_eq!(
            ask(&shared, Method::GET, path, &[("x-aws-ec2-metadata-token", "made-up")]).0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            ask(&shared, Method::PUT, "/latest/api/token", &[]).0,
            StatusCode::BAD_REQUEST
        );
        let (status, token) = ask(
            &shared,
            Method::PUT,
            "/latest/api/token",
            &[("x-aws-ec2-metadata-token-ttl-seconds", "60")],
        );
        assert_eq!(status, StatusCode::OK);
        let (status, listing) = ask(
            &shared,
            Method::GET,
            "/latest/meta-data/iam/security-credentials/",
            &[("x-aws-ec2-metadata-token", &token)],
        );
        assert_eq!((status, listing.as_str()), (StatusCode::OK, "Reader"));
        let (status, body) = ask(&shared, Method::GET, path, &[("x-aws-ec2-metadata-token", &token)]);
        assert_eq!(status, StatusCode::OK);
        let body: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(body["AccessKeyId"], "ASIAEXAMPLE");
        assert_eq!(body["Token"], "token");
        assert_eq!(
            ask(
                &shared,
                Method::GET,
                path,
                &[("x-aws-ec2-metadata-token", &token), ("x-forwarded-for", "10.0.0.1")]
            )
            .0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            ask(
                &shared,
                Method::PUT,
                "/latest/api/token",
                &[("x-aws-ec2-metadata-token-ttl-seconds", "60"), ("x-forwarded-for", "x")]
            )
            .0,
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn the_container_protocol_needs_the_tasks_token() {
        let shared = shared();
        assert_eq!(
            ask(&shared, Method::GET, "/credentials", &[]).0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            ask(&shared, Method::GET, "/credentials", &[("authorization", "other")]).0,
            StatusCode::FORBIDDEN
        );
        let (status, body) = ask(
            &shared,
            Method::GET,
            "/credentials",
            &[("authorization", "container-token")],
        );
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("\"RoleArn\":\"arn:aws:iam::1:role/Reader\""), "{body}");
        let secret = |token: &str, name: &str| {
            ask(
                &shared,
                Method::GET,
                &format!("/secrets/{name}"),
                &[("authorization", token)],
            )
        };
        assert_eq!(
            secret("container-token", "db.password"),
            (StatusCode::OK, "hunter2".into())
        );
        assert_eq!(secret("container-token", "other").0, StatusCode::NOT_FOUND);
        assert_eq!(secret("guess", "db.password").0, StatusCode::FORBIDDEN);
    }
}
