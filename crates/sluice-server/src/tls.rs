//! TLS for every listener: TLS 1.2 and 1.3 only (rustls offers nothing older), AEAD suites with
//! forward secrecy, and a self-signed certificate for localhost when the operator gives none.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

/// `DIR/tls/cert.pem` and `DIR/tls/key.pem`, created on first use for `localhost` and
/// `127.0.0.1`; clients trust the certificate file.
pub fn ensure_self_signed(data_dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let directory = data_dir.join("tls");
    let cert_path = directory.join("cert.pem");
    let key_path = directory.join("key.pem");
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    std::fs::create_dir_all(&directory)?;
    let certified = rcgen::generate_simple_self_signed(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])
    .context("cannot generate a self-signed certificate")?;
    let mut key_file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&key_path)?;
    key_file.write_all(certified.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(&cert_path, certified.cert.pem())?;
    eprintln!(
        "sluice: created a self-signed TLS certificate for localhost in {} (clients trust this file)",
        cert_path.display()
    );
    Ok((cert_path, key_path))
}

/// The TLS provider: AWS-LC, through its FIPS 140-3 module when `fips` (which needs a build with
/// the `fips` feature).
#[cfg(feature = "fips")]
fn provider(fips: bool) -> anyhow::Result<Arc<rustls::crypto::CryptoProvider>> {
    Ok(Arc::new(if fips {
        rustls::crypto::default_fips_provider()
    } else {
        rustls::crypto::aws_lc_rs::default_provider()
    }))
}

#[cfg(not(feature = "fips"))]
fn provider(fips: bool) -> anyhow::Result<Arc<rustls::crypto::CryptoProvider>> {
    if fips {
        anyhow::bail!(
            "this sluice was built without the FIPS module: build it with `cargo build --release --features fips` (needs CMake and Go)"
        );
    }
    Ok(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// Whether the process's cryptography (at rest and SigV4, not only TLS) runs in AWS-LC's FIPS
/// module.
#[cfg(feature = "fips")]
pub fn crypto_module_is_fips() -> bool {
    aws_lc_rs::try_fips_mode().is_ok()
}

#[cfg(not(feature = "fips"))]
pub fn crypto_module_is_fips() -> bool {
    false
}

pub fn server_config(cert_path: &Path, key_path: &Path, fips: bool) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let cert_pem = std::fs::read(cert_path).with_context(|| format!("cannot read {}", cert_path.display()))?;
    let key_pem = std::fs::read(key_path).with_context(|| format!("cannot read {}", key_path.display()))?;
    let certificates = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} holds no readable PEM certificate", cert_path.display()))?;
    if certificates.is_empty() {
        anyhow::bail!("{} holds no certificate", cert_path.display());
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .with_context(|| format!("{} holds no readable PEM key", key_path.display()))?
        .with_context(|| format!("{} holds no private key", key_path.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider(fips)?)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .context("the TLS certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    if fips && !config.fips() {
        anyhow::bail!("--fips was asked for, but the TLS configuration does not run in FIPS mode");
    }
    Ok(Arc::new(config))
}
