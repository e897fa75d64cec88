//! HTTPS, for clients that insist on it (`--tls-cert FILE --tls-key FILE`, PEM): rustls (TLS
//! 1.2 and 1.3) in front of the same router, served by hyper's connection builder (HTTP/1.1
//! and HTTP/2), with the same graceful shutdown as the plain listener.
//!
//! A plain HTTP request sent to the HTTPS port gets DynamoDB's clean answer, `400 Bad Request`
//! "The plain HTTP request was sent to HTTPS port", rather than a broken handshake: the first
//! byte of a connection tells (every TLS connection starts with a handshake record, 0x16).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// The first byte of a TLS handshake record.
const HANDSHAKE: u8 = 0x16;
const PLAIN_HTTP_ANSWER: &str = "The plain HTTP request was sent to HTTPS port";

/// The certificate chain and private key files of `--tls-cert` and `--tls-key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, the node's certificate first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// Why `--tls-cert` and `--tls-key` make no TLS acceptor: the node refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read, or is not PEM.
    #[error("cannot read {}: {reason}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{} holds no certificate", .0.display())]
    NoCertificate(PathBuf),
    /// rustls has no protocol version to offer.
    #[error("TLS: {0}")]
    Protocols(rustls::Error),
    /// The certificate and key do not make a server configuration.
    #[error("TLS certificate or key: {0}")]
    CertificateOrKey(rustls::Error),
}

/// The TLS acceptor of `files`.
///
/// # Errors
/// A file cannot be read or holds no usable certificate or key.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let unreadable = |path: &Path| {
        let path = path.to_path_buf();
        move |reason| TlsError::Unreadable { path, reason }
    };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .map_err(unreadable(&files.cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable(&files.cert))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(files.cert.clone()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(unreadable(&files.key))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Protocols)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(TlsError::CertificateOrKey)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `router` over TLS on `listener` until `shutdown` resolves, then stops accepting and
/// lets the open connections finish their requests.
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    acceptor: TlsAcceptor,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => break,
        };
        super::low_latency(&stream);
        let (acceptor, router) = (acceptor.clone(), router.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let Some(tls) = handshake(stream, &acceptor).await else {
                return;
            };
            let service = TowerToHyperService::new(router);
            let builder = auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, error = %e, "HTTPS connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
    Ok(())
}

/// The TLS session of `stream`, or `None` after answering a plain HTTP request or a failed
/// handshake.
async fn handshake(
    mut stream: TcpStream,
    acceptor: &TlsAcceptor,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(1) if first[0] == HANDSHAKE => {}
        Ok(1) => {
            let answer = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{PLAIN_HTTP_ANSWER}",
                PLAIN_HTTP_ANSWER.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
            return None;
        }
        _ => return None,
    }
    match acceptor.accept(stream).await {
        Ok(tls) => Some(tls),
        Err(e) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_make_no_acceptor_say_which_and_why() {
        let manifest = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
        let missing = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/no-such-cert.pem"));
        let refused = acceptor(&TlsFiles {
            cert: missing.clone(),
            key: manifest.clone(),
        })
        .err()
        .expect("a missing certificate file is refused");
        assert!(matches!(&refused, TlsError::Unreadable { path, .. } if *path == missing));
        assert!(
            refused
                .to_string()
                .starts_with(&format!("cannot read {}: ", missing.display())),
            "{refused}"
        );
        let refused = acceptor(&TlsFiles {
            cert: manifest.clone(),
            key: manifest.clone(),
        })
        .err()
        .expect("a file without a certificate is refused");
        assert_eq!(
            refused.to_string(),
            format!("{} holds no certificate", manifest.display())
        );
    }
}
