//! TLS to Postgres, as libpq's `sslmode` in the URL says, so that a URL that works with
//! `psql` works here:
//!
//! - `disable`: plain TCP;
//! - `prefer` (the default) and `require`: encrypted, the server's certificate not checked
//!   (what libpq does: it stops eavesdropping, not a man in the middle), except that `require`
//!   with `[storage] ca_file` checks the chain as `verify-ca` does;
//! - `verify-ca` and `verify-full`: encrypted, the certificate checked against the system's
//!   roots plus `ca_file`, and its name against the host (rustls always checks the name, so
//!   `verify-ca` is as strict as `verify-full` here).
//!
//! rustls over ring (the stack the HTTP client already uses): no OpenSSL to link.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::PgError;

/// How the server's certificate is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Encrypt only (libpq's `prefer` and `require`).
    None,
    /// The chain and the host name (libpq's `verify-ca` / `verify-full`).
    Full,
}

/// The parsed URL and its TLS connector.
pub fn connector(
    url: &str,
    ca_file: Option<&str>,
) -> Result<(postgres::Config, MakeRustlsConnect), PgError> {
    let (url, verify) = sslmode(url, ca_file.is_some());
    let config: postgres::Config = url
        .parse()
        .map_err(|e: postgres::Error| PgError::Other(format!("bad URL: {e}")))?;
    Ok((
        config,
        MakeRustlsConnect::new(client_config(verify, ca_file)?),
    ))
}

/// The URL as tokio-postgres parses it (it knows `disable`, `prefer`, `require`), and how to
/// verify: `verify-ca`/`verify-full` become `require` with full verification.
fn sslmode(url: &str, have_ca: bool) -> (String, Verify) {
    let mode = url
        .split(['?', '&'])
        .skip(1)
        .find_map(|kv| kv.strip_prefix("sslmode="))
        .unwrap_or("prefer");
    match mode {
        "verify-ca" | "verify-full" => (
            url.replace(&format!("sslmode={mode}"), "sslmode=require"),
            Verify::Full,
        ),
        "require" if have_ca => (url.to_string(), Verify::Full),
        _ => (url.to_string(), Verify::None),
    }
}

fn client_config(verify: Verify, ca_file: Option<&str>) -> Result<ClientConfig, PgError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::Other(format!("TLS: {e}")))?;
    let config = match verify {
        Verify::Full => {
            let mut roots = RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            if let Some(path) = ca_file {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| PgError::Other(format!("[storage] ca_file {path}: {e}")))?;
                if certs.is_empty() {
                    return Err(PgError::Other(format!(
                        "[storage] ca_file {path}: no PEM certificate in it"
                    )));
                }
                for cert in certs {
                    roots
                        .add(cert)
                        .map_err(|e| PgError::Other(format!("[storage] ca_file {path}: {e}")))?;
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Verify::None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// libpq's `prefer`/`require`: any certificate is accepted, but the handshake's signatures
/// are still checked (the session is encrypted to whoever holds the certificate's key).
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
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
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_maps_to_what_the_client_parses_and_how_it_verifies() {
        let u = "postgres://u@h/db";
        assert_eq!(sslmode(u, false), (u.to_string(), Verify::None));
        assert_eq!(sslmode(u, true), (u.to_string(), Verify::None));
        let r = "postgres://u@h/db?sslmode=require";
        assert_eq!(sslmode(r, false).1, Verify::None);
        assert_eq!(sslmode(r, true).1, Verify::Full);
        let f = "postgres://u@h/db?application_name=x&sslmode=verify-full";
        assert_eq!(
            sslmode(f, false),
            (
                "postgres://u@h/db?application_name=x&sslmode=require".to_string(),
                Verify::Full
            )
        );
        assert_eq!(
            sslmode("postgres://u@h/db?sslmode=verify-ca", false).1,
            Verify::Full
        );
        // Every mode gives a URL the client parses.
        for m in ["disable", "prefer", "require", "verify-ca", "verify-full"] {
            let (url, _) = sslmode(&format!("postgres://u@h/db?sslmode={m}"), false);
            assert!(url.parse::<postgres::Config>().is_ok(), "{m}");
        }
    }

    #[test]
    fn a_bad_ca_file_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("slmgate-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let url = "postgres://u@h/db?sslmode=verify-full";
        let err = connector(url, Some(empty.to_str().unwrap())).err().unwrap();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        let missing = dir.join("missing.pem");
        let err = connector(url, Some(missing.to_str().unwrap()))
            .err()
            .unwrap();
        assert!(err.to_string().contains("ca_file"), "{err}");
        assert!(connector(url, None).is_ok());
        let _ = std::fs::remove_dir_all(dir);
    }
}
