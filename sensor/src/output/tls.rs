//! TLS for `syslog+tls` and `cef+tls`: rustls (with the `ring` provider, which builds in
//! seconds where aws-lc needs a C toolchain and minutes), the receiver checked against a CA
//! file, and an optional client certificate. The client key comes only from a file that
//! only its owner can read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The TLS files of the outputs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificates (PEM) the receiver's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM), when the receiver asks for one.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM); refused if others can read it.
    pub key: Option<PathBuf>,
}

/// Reads a private key, refusing a file others could read or change (the one rule for key
/// files: [`crate::file_perms`]).
pub fn read_secret(path: &Path) -> Result<Vec<u8>, String> {
    crate::file_perms::refuse_if_exposed(path, "the TLS private key", crate::file_perms::Exposure::Secret)?;
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(certs)
}

/// The client configuration of the TLS outputs.
pub fn client_config(files: &TlsFiles) -> Result<Arc<rustls::ClientConfig>, String> {
    let ca = files.ca.as_ref().ok_or("a TLS output needs a CA file (--tls-ca or tls_ca)")?;
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca)? {
        roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots);
    let config = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            let pem = read_secret(key)?;
            let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| format!("{}: {e}", key.display()))?;
            builder.with_client_auth_cert(certs(cert)?, key).map_err(|e| format!("TLS client certificate: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("a TLS client certificate needs both --tls-cert and --tls-key".into()),
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_key_others_can_read_is_refused() {
        let dir = std::env::temp_dir().join(format!("otsensor-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let key = dir.join("key.pem");
        std::fs::write(&key, "secret").expect("write");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        for mode in [0o644, 0o640] {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).expect("chmod");
            let e = read_secret(&key).expect_err("readable by others");
            assert!(e.contains("readable by others") && e.contains(&format!("{mode:o}")), "{e}");
        }
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(read_secret(&key).expect("private"), b"secret");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn no_ca_is_a_clear_error() {
        assert!(client_config(&TlsFiles::default()).is_err_and(|e| e.contains("CA file")));
    }
}
