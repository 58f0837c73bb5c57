//! `sluice doctor tls URL`: what a TLS endpoint offers (1.3, 1.2, their cipher suites) and
//! whether its certificate is trusted — for the API, a database or an object store.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Accepts any certificate. Used only to learn which protocol versions an endpoint speaks when
/// its certificate is not trusted; no data is ever sent over such a connection.
#[derive(Debug)]
struct ProbeOnly(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for ProbeOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn roots(ca_bundle: Option<&std::path::Path>) -> anyhow::Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_bundle {
        Some(path) => {
            let pem = std::fs::read(path).with_context(|| format!("cannot read CA bundle {}", path.display()))?;
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
    Ok(roots)
}

async fn handshake(host: &str, port: u16, config: rustls::ClientConfig) -> Result<(String, String), String> {
    let name = ServerName::try_from(host.to_string()).map_err(|error| error.to_string())?;
    let connect = async {
        let stream = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|error| format!("cannot connect: {error}"))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, stream)
            .await
            .map_err(|error| error.to_string())?;
        let session = tls.get_ref().1;
        let version = session
            .protocol_version()
            .map(|version| format!("{version:?}"))
            .unwrap_or_default();
        let suite = session
            .negotiated_cipher_suite()
            .map(|suite| format!("{:?}", suite.suite()))
            .unwrap_or_default();
        Ok((version, suite))
    };
    tokio::time::timeout(Duration::from_secs(10), connect)
        .await
        .unwrap_or_else(|_| Err("timed out".to_string()))
}

pub async fn tls(url: &str, ca_bundle: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let uri: http::Uri = url.parse().with_context(|| format!("'{url}' is not a URL"))?;
    let host = uri
        .host()
        .context("the URL has no host")?
        .trim_matches(|c| c == '[' || c == ']')
        .to_string();
    let port = uri.port_u16().unwrap_or(443);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = roots(ca_bundle)?;
    let trusted_by = ca_bundle.map_or_else(|| "the system's roots".to_string(), |path| path.display().to_string());
    println!("endpoint      {host}:{port}");
    let mut offered = 0;
    for (label, version) in [
        ("TLS 1.3", &rustls::version::TLS13),
        ("TLS 1.2", &rustls::version::TLS12),
    ] {
        let probe = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[version])?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ProbeOnly(provider.clone())))
            .with_no_client_auth();
        match handshake(&host, port, probe).await {
            Ok((_, suite)) => {
                offered += 1;
                println!("{label:<13} offered   {suite}");
            }
            Err(error) if error.starts_with("cannot connect") || error == "timed out" => {
                println!("{label:<13} {error}");
                return Ok(ExitCode::from(2));
            }
            Err(error) => println!("{label:<13} refused   {error}"),
        }
    }
    println!("TLS 1.0/1.1   not probed: Sluice's TLS stack cannot speak them (openssl s_client -tls1_1 can)");
    let verifying = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let trusted = match handshake(&host, port, verifying).await {
        Ok(_) => {
            println!("certificate   trusted (verified against {trusted_by})");
            true
        }
        Err(error) => {
            println!("certificate   NOT trusted by {trusted_by}: {error}");
            false
        }
    };
    Ok(if offered > 0 && trusted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
