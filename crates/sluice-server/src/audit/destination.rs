//! Where audit files go: a local folder or an S3 bucket, both through `object_store`, so
//! delivery and verification read and write them the same way.

use std::sync::Arc;

use anyhow::Context;
use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

pub struct AuditDestination {
    store: Arc<dyn ObjectStore>,
    /// Key prefix inside the bucket (empty for a folder).
    prefix: String,
    /// What digests name as their bucket: the bucket's name, or `local` for a folder.
    pub bucket_label: String,
    pub description: String,
}

impl AuditDestination {
    pub fn folder(directory: &std::path::Path) -> anyhow::Result<AuditDestination> {
        std::fs::create_dir_all(directory)
            .with_context(|| format!("cannot create audit folder {}", directory.display()))?;
        let store = LocalFileSystem::new_with_prefix(directory)?;
        Ok(AuditDestination {
            store: Arc::new(store),
            prefix: String::new(),
            bucket_label: super::delivery::LOCAL_BUCKET.to_string(),
            description: directory.display().to_string(),
        })
    }

    /// `s3://bucket[/prefix]`, credentials from the environment as AWS tools take them; an
    /// endpoint URL for S3-compatible servers (path-style addressing).
    pub fn bucket(url: &str, endpoint: Option<&str>, region: &str) -> anyhow::Result<AuditDestination> {
        let rest = url
            .strip_prefix("s3://")
            .with_context(|| format!("'{url}' is not an s3://bucket/prefix URL"))?;
        if rest.contains('@') {
            anyhow::bail!(
                "the audit bucket URL must not carry credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            );
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            anyhow::bail!("'{url}' names no bucket");
        }
        // Log and digest files are encrypted at rest by the bucket (SSE-S3), as CloudTrail's are.
        let server_side_encryption = "aws_server_side_encryption"
            .parse()
            .map_err(|error| anyhow::anyhow!("object_store lacks its server-side encryption setting: {error}"))?;
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_region(region)
            .with_config(server_side_encryption, "AES256");
        if let Some(endpoint) = endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let store = builder.build().context("cannot configure the audit bucket")?;
        Ok(AuditDestination {
            store: Arc::new(store),
            prefix: prefix.trim_matches('/').to_string(),
            bucket_label: bucket.to_string(),
            description: url.to_string(),
        })
    }

    fn path(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.store
            .put(&self.path(key), PutPayload::from(bytes))
            .await
            .with_context(|| format!("cannot write {key} to {}", self.description))?;
        Ok(())
    }

    /// The object's bytes, or `None` if it does not exist.
    pub async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        match self.store.get(&self.path(key)).await {
            Ok(result) => Ok(Some(result.bytes().await?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(error).with_context(|| format!("cannot read {key} from {}", self.description)),
        }
    }

    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Keys (relative to the prefix) of every object under `under`.
    pub async fn list(&self, under: &str) -> anyhow::Result<Vec<String>> {
        let base = self.path(under);
        let objects: Vec<_> = self
            .store
            .list(Some(&base))
            .try_collect()
            .await
            .with_context(|| format!("cannot list {}", self.description))?;
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        Ok(objects
            .into_iter()
            .map(|meta| {
                meta.location
                    .to_string()
                    .strip_prefix(&strip)
                    .map(str::to_string)
                    .unwrap_or_default()
            })
            .collect())
    }
}
