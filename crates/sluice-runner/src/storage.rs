//! Data nodes and logs live in object stores: `file://` folders and `s3://` buckets (AWS or any
//! S3-compatible server), through `object_store`, so staging and log upload work the same way
//! everywhere.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

#[derive(Debug, Clone, Default)]
pub struct StorageSettings {
    /// An S3-compatible endpoint instead of AWS's; credentials come from the environment.
    pub s3_endpoint: Option<String>,
    pub region: String,
}

/// A location: the store and the key prefix inside it.
pub struct Location {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    description: String,
}

impl Location {
    pub fn parse(url: &str, settings: &StorageSettings) -> anyhow::Result<Location> {
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
        let Some(rest) = url.strip_prefix("s3://") else {
            bail!("'{url}' is neither an s3:// nor a file:// location");
        };
        if rest.contains('@') {
            bail!("the location must not carry credentials");
        }
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            bail!("'{url}' names no bucket");
        }
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_region(&settings.region);
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
            let bytes = self
                .store
                .get(&self.prefix)
                .await
                .with_context(|| format!("{} does not exist", self.description))?
                .bytes()
                .await?;
            let name = self.prefix.filename().unwrap_or("data");
            tokio::fs::write(directory.join(name), &bytes).await?;
            return Ok(bytes.len() as u64);
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
            let bytes = self
                .store
                .get(&object.location)
                .await
                .with_context(|| format!("cannot read {}", object.location))?
                .bytes()
                .await?;
            copied += bytes.len() as u64;
            tokio::fs::write(&target, &bytes).await?;
        }
        Ok(copied)
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
                    let bytes = tokio::fs::read(&path).await?;
                    written += bytes.len() as u64;
                    self.store
                        .put(&key, PutPayload::from(bytes))
                        .await
                        .with_context(|| format!("cannot write {key} to {}", self.description))?;
                }
            }
        }
        Ok(written)
    }

    /// Writes one object named `name` below the location.
    pub async fn put_file(&self, name: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        let key = self.prefix.clone().join(name);
        self.store
            .put(&key, PutPayload::from(bytes))
            .await
            .with_context(|| format!("cannot write {name} to {}", self.description))?;
        Ok(())
    }

    /// Reads the location as one object.
    pub async fn read(&self) -> anyhow::Result<bytes::Bytes> {
        Ok(self
            .store
            .get(&self.prefix)
            .await
            .with_context(|| format!("cannot read {}", self.description))?
            .bytes()
            .await?)
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
        assert!(Location::parse("file://relative/path", &settings).is_err());
        assert!(Location::parse("s3://key:secret@bucket/x", &settings).is_err());
        assert!(Location::parse("ftp://host/x", &settings).is_err());
    }
}
