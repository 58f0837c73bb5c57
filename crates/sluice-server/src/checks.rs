//! Service-evaluated preconditions (reference §h.6): `S3KeyExists` and `S3PrefixNotEmpty`, checked
//! by the scheduler itself through `object_store`, against S3 (AWS or any S3-compatible server)
//! or a local folder (`file://`).

use std::time::Duration;

use chrono::NaiveDateTime;
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use sluice_core::expression::{Scope, Value};
use sluice_core::runtime::{self, CheckResult, ServiceCheck};

use crate::scheduler::Run;

/// A check that does not answer within this counts as "could not be checked" and is retried.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Default)]
pub struct CheckSettings {
    /// An S3-compatible endpoint (MinIO, Garage, Ceph, ...) instead of AWS's.
    pub s3_endpoint: Option<String>,
    /// PEM certificates trusted for the object store beside the system's roots.
    pub ca_bundle: Option<std::path::PathBuf>,
    pub region: String,
    /// The folder `file://` locations may point into; `None` refuses them (a definition must not
    /// be able to probe the server's own files).
    pub local_root: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone)]
pub struct CheckRequest {
    pub instance: String,
    pub kind: ServiceCheck,
    /// The evaluated `s3Key` / `s3Prefix`, or why it could not be evaluated.
    pub target: Result<String, String>,
}

/// The checks due now, with their targets evaluated for each instance's interval.
pub fn requests(run: &Run, pipeline_id: &str, now: NaiveDateTime) -> Vec<CheckRequest> {
    let mut requests = Vec::new();
    for instance_id in runtime::due_checks(&run.graph, &run.state, now) {
        let Some(instance) = run.state.instance(&instance_id) else {
            continue;
        };
        let Some(kind) = run.graph.node(&instance.component).and_then(|node| node.service_check) else {
            continue;
        };
        let field = match kind {
            ServiceCheck::S3KeyExists => "s3Key",
            ServiceCheck::S3PrefixNotEmpty => "s3Prefix",
        };
        let target = match crate::runs::instance_scope(&run.definition, pipeline_id, instance, None) {
            None => Err(format!("{} is not in the active definition", instance.component)),
            Some(scope) => match scope.resolve(field) {
                Some(Value::String(text)) => Ok(text),
                Some(other) => Ok(other.render()),
                None => Err(format!("{}: field '{field}' is not set", instance.component)),
            },
        };
        requests.push(CheckRequest {
            instance: instance_id,
            kind,
            target,
        });
    }
    requests
}

/// Runs one check. `Ok(false)`: not (yet) true; `Err`: it could not be checked (both retry).
pub async fn perform(settings: &CheckSettings, request: &CheckRequest) -> CheckResult {
    let target = request.target.clone()?;
    match tokio::time::timeout(CHECK_TIMEOUT, check(settings, request.kind, &target)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "no answer from {target} within {} seconds",
            CHECK_TIMEOUT.as_secs()
        )),
    }
}

async fn check(settings: &CheckSettings, kind: ServiceCheck, target: &str) -> CheckResult {
    if let Some(path) = target.strip_prefix("file://") {
        let path = local_path(settings, path)?;
        return check_local(kind, &path).await;
    }
    let (store, key) = s3_store(settings, target)?;
    match kind {
        ServiceCheck::S3KeyExists => match store.head(&ObjectPath::from(key.as_str())).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(format!("cannot check {target}: {error}")),
        },
        ServiceCheck::S3PrefixNotEmpty => {
            let prefix = ObjectPath::from(key.trim_end_matches('/'));
            let mut listing = store.list(Some(&prefix));
            match listing.next().await {
                None => Ok(false),
                Some(Ok(_)) => Ok(true),
                Some(Err(object_store::Error::NotFound { .. })) => Ok(false),
                Some(Err(error)) => Err(format!("cannot list {target}: {error}")),
            }
        }
    }
}

/// The bucket of an `s3://bucket/key` location (the server's S3 settings and credentials from
/// its environment), and the key.
pub(crate) fn s3_store(settings: &CheckSettings, target: &str) -> Result<(Box<dyn ObjectStore>, String), String> {
    let Some(rest) = target.strip_prefix("s3://") else {
        return Err(format!("'{target}' is not an s3:// or file:// location"));
    };
    if rest.contains('@') {
        return Err("the location must not carry credentials".to_string());
    }
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("'{target}' names no bucket"));
    }
    let mut options = object_store::ClientOptions::new();
    if let Some(path) = &settings.ca_bundle {
        let pem =
            std::fs::read(path).map_err(|error| format!("cannot read the CA bundle {}: {error}", path.display()))?;
        let certificates = object_store::Certificate::from_pem_bundle(&pem)
            .map_err(|error| format!("{} holds no PEM certificates: {error}", path.display()))?;
        for certificate in certificates {
            options = options.with_root_certificate(certificate);
        }
    }
    let mut builder = AmazonS3Builder::from_env()
        .with_client_options(options)
        .with_bucket_name(bucket)
        .with_region(&settings.region);
    if let Some(endpoint) = &settings.s3_endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    let store = builder
        .build()
        .map_err(|error| format!("cannot reach bucket '{bucket}': {error}"))?;
    Ok((Box::new(store), key.to_string()))
}

/// A `file://` path inside the configured root, with no `..` to climb out of it.
pub(crate) fn local_path(settings: &CheckSettings, path: &str) -> Result<String, String> {
    let Some(root) = &settings.local_root else {
        return Err("file:// locations are disabled on this server (see `sluice serve --local-data-root`)".to_string());
    };
    let candidate = std::path::Path::new(path);
    let climbs = candidate
        .components()
        .any(|component| matches!(component, std::path::Component::ParentDir));
    if climbs || !candidate.starts_with(root) {
        return Err(format!("{path} is outside the local data root"));
    }
    // A symbolic link inside the root must not lead out of it.
    if let (Ok(real), Ok(real_root)) = (std::fs::canonicalize(candidate), std::fs::canonicalize(root))
        && !real.starts_with(&real_root)
    {
        return Err(format!("{path} is outside the local data root"));
    }
    Ok(path.to_string())
}

async fn check_local(kind: ServiceCheck, path: &str) -> CheckResult {
    match kind {
        ServiceCheck::S3KeyExists => match tokio::fs::metadata(path).await {
            Ok(metadata) => Ok(metadata.is_file()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(format!("cannot check {path}: {error}")),
        },
        ServiceCheck::S3PrefixNotEmpty => match tokio::fs::read_dir(path).await {
            Ok(mut entries) => Ok(matches!(entries.next_entry().await, Ok(Some(_)))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(format!("cannot list {path}: {error}")),
        },
    }
}
