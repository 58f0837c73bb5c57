//! Data nodes and logs live in object stores: `file://` folders, `s3://` buckets (AWS or any
//! S3-compatible server), `gs://` Google Cloud Storage buckets and `az://` Azure Blob Storage
//! containers, through `object_store`, so staging, copies and log upload work the same way
//! everywhere.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use futures_util::{StreamExt, TryStreamExt};
use object_store::ClientOptions;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Files up to this size go up in one request; larger ones in parts, never whole in memory.
const SINGLE_PUT_BYTES: u64 = 8 * 1024 * 1024;
/// A script fetched with `scriptUri` is read whole: it must be a script, not data.
const MAX_READ_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, Default)]
pub struct StorageSettings {
    /// An S3-compatible endpoint instead of AWS's; credentials come from the environment.
    pub s3_endpoint: Option<String>,
    pub region: String,
    /// A PEM file of certificates trusted for object stores beside the system's roots (a
    /// private CA, or a self-signed endpoint in development). Certificates are always verified.
    pub ca_bundle: Option<PathBuf>,
    /// S3 credentials of the task's role (its `s3.accessKeyId` and `s3.secretAccessKey`
    /// secrets) instead of the runner's environment.
    pub s3_credentials: Option<(String, sluice_crypto::Secret<String>)>,
}

impl StorageSettings {
    /// Says once, at start, what is less than TLS with verification: a plain-HTTP endpoint is
    /// the explicit opt-out for local development, and is logged as such.
    pub fn warn_if_insecure(&self) {
        if let Some(endpoint) = self.s3_endpoint.as_deref()
            && endpoint.starts_with("http://")
        {
            tracing::warn!(
                endpoint,
                "the S3 endpoint is plain HTTP: data and request signatures travel unencrypted (use it for local development only; https:// with --ca-bundle for a private CA)"
            );
        }
    }

    fn client_options(&self) -> anyhow::Result<ClientOptions> {
        let mut options = ClientOptions::new();
        if let Some(path) = &self.ca_bundle {
            let pem = std::fs::read(path).with_context(|| format!("cannot read the CA bundle {}", path.display()))?;
            let certificates = object_store::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("{} holds no PEM certificates", path.display()))?;
            for certificate in certificates {
                options = options.with_root_certificate(certificate);
            }
        }
        Ok(options)
    }
}

/// Server-side encryption asked of S3 for what is written: S3DataNode's `s3EncryptionType`
/// (`SERVER_SIDE_ENCRYPTION`, AWS's default → SSE-S3; `NONE`), and Sluice's
/// `SERVER_SIDE_ENCRYPTION_KMS` with `s3EncryptionKmsKeyId` → SSE-KMS. Other stores encrypt at
/// rest on their own terms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Encryption {
    #[default]
    S3Managed,
    /// SSE-KMS with this key (the bucket's default KMS key when empty).
    Kms(String),
    None,
}

impl Encryption {
    /// What a data node asks for.
    pub fn of_node(node: &crate::task::Object) -> anyhow::Result<Encryption> {
        let kms_key = node.string("s3EncryptionKmsKeyId").unwrap_or("").to_string();
        match node.string("s3EncryptionType") {
            None => Ok(Encryption::S3Managed),
            Some(kind) if kind.eq_ignore_ascii_case("SERVER_SIDE_ENCRYPTION") => Ok(Encryption::S3Managed),
            Some(kind) if kind.eq_ignore_ascii_case("SERVER_SIDE_ENCRYPTION_KMS") => Ok(Encryption::Kms(kms_key)),
            Some(kind) if kind.eq_ignore_ascii_case("NONE") => Ok(Encryption::None),
            Some(other) => bail!(
                "data node {}: s3EncryptionType '{other}' is not SERVER_SIDE_ENCRYPTION, SERVER_SIDE_ENCRYPTION_KMS or NONE",
                node.component_id()
            ),
        }
    }
}

/// object_store's configuration key for the `x-amz-server-side-encryption` header.
fn server_side_encryption_key() -> anyhow::Result<AmazonS3ConfigKey> {
    "aws_server_side_encryption"
        .parse()
        .map_err(|error| anyhow::anyhow!("object_store lacks its server-side encryption setting: {error}"))
}

/// A location: the store and the key prefix inside it.
pub struct Location {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    description: String,
}

impl Location {
    /// A location written with the default encryption (SSE-S3 on S3), or only read.
    pub fn parse(url: &str, settings: &StorageSettings) -> anyhow::Result<Location> {
        Location::parse_with(url, settings, &Encryption::default())
    }

    /// A location whose writes ask for `encryption`.
    pub fn parse_with(url: &str, settings: &StorageSettings, encryption: &Encryption) -> anyhow::Result<Location> {
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                bail!("'{url}' is not an absolute file:// location");
            }
            let prefix =
                ObjectPath::from_absolute_path(path).with_context(|| format!("'{url}' is not a usable path"))?;
            return Ok(Location {
                store: Arc::new(LocalFileSystem::new()),
                prefix,
                description: url.to_string(),
            });
        }
        if let Some((scheme, rest)) = url
            .strip_prefix("gs://")
            .map(|rest| ("gs", rest))
            .or_else(|| url.strip_prefix("az://").map(|rest| ("az", rest)))
        {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() || bucket.contains('@') {
                bail!("'{url}' must name a bucket or container and carry no credentials");
            }
            // Credentials and accounts come from the environment, as Google's and Azure's
            // tools take them (GOOGLE_APPLICATION_CREDENTIALS; AZURE_STORAGE_ACCOUNT_NAME with
            // AZURE_STORAGE_ACCOUNT_KEY or a client secret).
            let store: Arc<dyn ObjectStore> = if scheme == "gs" {
                Arc::new(
                    GoogleCloudStorageBuilder::from_env()
                        .with_client_options(settings.client_options()?)
                        .with_bucket_name(bucket)
                        .build()
                        .with_context(|| format!("cannot reach bucket '{bucket}'"))?,
                )
            } else {
                Arc::new(
                    MicrosoftAzureBuilder::from_env()
                        .with_client_options(settings.client_options()?)
                        .with_container_name(bucket)
                        .build()
                        .with_context(|| format!("cannot reach container '{bucket}'"))?,
                )
            };
            return Ok(Location {
                store,
                prefix: ObjectPath::from(key.trim_end_matches('/')),
                description: url.to_string(),
            });
        }
        let Some(rest) = url.strip_prefix("s3://") else {
            bail!("'{url}' is not an s3://, gs://, az:// or file:// location");
        };
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        // Credentials would sit before the bucket (`s3://key:secret@bucket`); keys may hold `@`.
        if bucket.contains('@') {
            bail!("the location must not carry credentials");
        }
        if bucket.is_empty() {
            bail!("'{url}' names no bucket");
        }
        let mut builder = AmazonS3Builder::from_env()
            .with_client_options(settings.client_options()?)
            .with_bucket_name(bucket)
            .with_region(&settings.region);
        if let Some((access_key_id, secret)) = &settings.s3_credentials {
            builder = builder
                .with_access_key_id(access_key_id)
                .with_secret_access_key(secret.expose_secret())
                .with_skip_signature(false);
        }
        builder = match encryption {
            Encryption::S3Managed => builder.with_config(server_side_encryption_key()?, "AES256"),
            Encryption::Kms(key) if key.is_empty() => builder.with_config(server_side_encryption_key()?, "aws:kms"),
            Encryption::Kms(key) => builder.with_sse_kms_encryption(key),
            Encryption::None => builder,
        };
        if let Some(endpoint) = &settings.s3_endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        Ok(Location {
            store: Arc::new(
                builder
                    .build()
                    .with_context(|| format!("cannot reach bucket '{bucket}'"))?,
            ),
            prefix: ObjectPath::from(key.trim_end_matches('/')),
            description: url.to_string(),
        })
    }

    /// Copies every object under the location into `directory`, keeping relative paths; a
    /// location that is a single object is copied as that file. Returns the bytes copied.
    pub async fn download_to(&self, directory: &Path) -> anyhow::Result<u64> {
        tokio::fs::create_dir_all(directory).await?;
        let objects: Vec<_> = self
            .store
            .list(Some(&self.prefix))
            .try_collect()
            .await
            .with_context(|| format!("cannot list {}", self.description))?;
        let mut copied = 0;
        if objects.is_empty() {
            // A single object (filePath) rather than a folder.
            let name = self.prefix.filename().unwrap_or("data").to_string();
            return self
                .stream_to_file(&self.prefix, &directory.join(name))
                .await
                .with_context(|| format!("{} does not exist", self.description));
        }
        for object in objects {
            let relative: Vec<_> = object
                .location
                .prefix_match(&self.prefix)
                .map(|parts| parts.map(|part| part.as_ref().to_string()).collect())
                .unwrap_or_default();
            if relative.is_empty() || relative.iter().any(|part| part == ".." || part.is_empty()) {
                continue;
            }
            let target: PathBuf = relative
                .iter()
                .fold(directory.to_path_buf(), |path, part| path.join(part));
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            copied += self
                .stream_to_file(&object.location, &target)
                .await
                .with_context(|| format!("cannot read {}", object.location))?;
        }
        Ok(copied)
    }

    /// Copies one object to a file chunk by chunk.
    async fn stream_to_file(&self, location: &ObjectPath, target: &Path) -> anyhow::Result<u64> {
        let mut stream = self.store.get(location).await?.into_stream();
        let mut file = tokio::fs::File::create(target).await?;
        let mut written = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            written += chunk.len() as u64;
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        Ok(written)
    }

    /// Uploads one file: small ones in one request, large ones in parts.
    async fn upload_file(&self, key: &ObjectPath, source: &Path) -> anyhow::Result<u64> {
        let size = tokio::fs::metadata(source).await?.len();
        if size <= SINGLE_PUT_BYTES {
            let bytes = tokio::fs::read(source).await?;
            self.store.put(key, PutPayload::from(bytes)).await?;
            return Ok(size);
        }
        let mut writer = WriteMultipart::new(self.store.put_multipart(key).await?);
        let mut file = tokio::fs::File::open(source).await?;
        let mut buffer = vec![0; 1024 * 1024];
        loop {
            let read = file.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            writer.wait_for_capacity(4).await?;
            writer.write(&buffer[..read]);
        }
        writer.finish().await?;
        Ok(size)
    }

    /// Uploads every file under `directory` below the location. Returns the bytes written.
    pub async fn upload_from(&self, directory: &Path) -> anyhow::Result<u64> {
        let mut written = 0;
        let mut pending = vec![directory.to_path_buf()];
        while let Some(folder) = pending.pop() {
            let mut entries = tokio::fs::read_dir(&folder).await?;
            while let Some(entry) = entries.next_entry().await? {
                let path = entry.path();
                let kind = entry.file_type().await?;
                if kind.is_dir() {
                    pending.push(path);
                } else if kind.is_file() {
                    let relative = path.strip_prefix(directory)?;
                    let key = relative
                        .components()
                        .map(|component| component.as_os_str().to_string_lossy().to_string())
                        .fold(self.prefix.clone(), |key, part| key.clone().join(part));
                    written += self
                        .upload_file(&key, &path)
                        .await
                        .with_context(|| format!("cannot write {key} to {}", self.description))?;
                }
            }
        }
        Ok(written)
    }

    /// Uploads a local file as the object named `name` below the location.
    pub async fn put_file(&self, name: &str, source: &Path) -> anyhow::Result<u64> {
        let key = self.prefix.clone().join(name);
        self.upload_file(&key, source)
            .await
            .with_context(|| format!("cannot write {name} to {}", self.description))
    }

    /// Reads the location as one object (a script: at most 16 MiB).
    pub async fn read(&self) -> anyhow::Result<bytes::Bytes> {
        let result = self
            .store
            .get(&self.prefix)
            .await
            .with_context(|| format!("cannot read {}", self.description))?;
        if result.meta.size > MAX_READ_BYTES as u64 {
            anyhow::bail!("{} is larger than {} MiB", self.description, MAX_READ_BYTES >> 20);
        }
        Ok(result.bytes().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn folders_round_trip_through_file_locations() {
        let root = tempfile::tempdir().expect("temporary directory");
        let source = root.path().join("source");
        std::fs::create_dir_all(source.join("nested")).expect("folders");
        std::fs::write(source.join("a.csv"), "1,2\n").expect("file");
        std::fs::write(source.join("nested/b.csv"), "3,4\n").expect("file");
        let settings = StorageSettings::default();
        let target = Location::parse(&format!("file://{}/copy", root.path().display()), &settings).expect("location");
        assert_eq!(target.upload_from(&source).await.expect("upload"), 8);
        let back = root.path().join("back");
        assert_eq!(target.download_to(&back).await.expect("download"), 8);
        assert_eq!(
            std::fs::read_to_string(back.join("nested/b.csv")).expect("file"),
            "3,4\n"
        );
        // Larger than one request: uploaded in parts, downloaded chunk by chunk.
        let big = root.path().join("big");
        std::fs::create_dir_all(&big).expect("folder");
        let content: Vec<u8> = (0..9 * 1024 * 1024 + 7).map(|index| (index % 251) as u8).collect();
        std::fs::write(big.join("large.bin"), &content).expect("file");
        let large = Location::parse(&format!("file://{}/large", root.path().display()), &settings).expect("location");
        assert_eq!(large.upload_from(&big).await.expect("upload"), content.len() as u64);
        let again = root.path().join("again");
        large.download_to(&again).await.expect("download");
        assert_eq!(std::fs::read(again.join("large.bin")).expect("file"), content);
        assert!(Location::parse("file://relative/path", &settings).is_err());
        assert!(Location::parse("s3://key:secret@bucket/x", &settings).is_err());
        assert!(Location::parse("s3://bucket/logs/@Copy_1/@Copy_1_Attempt=1", &settings).is_ok());
        assert!(Location::parse("ftp://host/x", &settings).is_err());
    }
}
