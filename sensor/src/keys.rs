//! Ed25519 keys: alert checkpoints and baselines are signed with a private key and checked
//! with its public key. Keys are PEM files (PKCS#8 private, SubjectPublicKeyInfo public), as
//! `otsensor keygen` and `openssl genpkey -algorithm ed25519` write them.
//!
//! A key file is refused when others could have replaced it (group- or world-writable), and a
//! private key also when others can read it: see [`crate::file_perms`].

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::file_perms::{refuse_if_exposed, Exposure};

pub use ed25519_dalek::{Signature, Signer, Verifier};

/// Reads a private key, refusing a file others can write or read.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, String> {
    refuse_if_exposed(path, "private key", Exposure::Secret)?;
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    SigningKey::from_pkcs8_pem(&text)
        .map_err(|e| format!("{}: not an Ed25519 private key in PKCS#8 PEM ({e})", path.display()))
}

/// Reads a public key, refusing a file others can write.
pub fn load_verifying_key(path: &Path) -> Result<VerifyingKey, String> {
    refuse_if_exposed(path, "public key", Exposure::Config)?;
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    VerifyingKey::from_public_key_pem(&text)
        .map_err(|e| format!("{}: not an Ed25519 public key in SubjectPublicKeyInfo PEM ({e})", path.display()))
}

/// A short name for a public key (the first 8 bytes of its SHA-256, hex), written beside
/// signatures so that a verifier given another key can say so.
pub fn key_id(key: &VerifyingKey) -> String {
    Sha256::digest(key.as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// `otsensor keygen PREFIX`: writes `PREFIX.key` (private, mode 0600) and `PREFIX.pub`
/// (public, 0644); refuses to overwrite either. Returns the two paths.
pub fn generate(prefix: &Path) -> Result<(PathBuf, PathBuf), String> {
    let mut seed = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    let private = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| format!("encoding the private key: {e}"))?;
    let public =
        key.verifying_key().to_public_key_pem(LineEnding::LF).map_err(|e| format!("encoding the public key: {e}"))?;
    let (priv_path, pub_path) = (with_suffix(prefix, "key"), with_suffix(prefix, "pub"));
    write_new(&priv_path, private.as_bytes(), 0o600)?;
    write_new(&pub_path, public.as_bytes(), 0o644)?;
    Ok((priv_path, pub_path))
}

fn with_suffix(prefix: &Path, ext: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// Creates `path` with `mode` from the start (never a moment readable by others) and syncs it.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let result: io::Result<()> = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    result.map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_keys_load_sign_and_verify_and_are_not_overwritten() {
        let dir = std::env::temp_dir().join(format!("otsensor-keygen-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let (k, p) = generate(&dir.join("sensor")).unwrap();
        assert_eq!(fs::metadata(&k).unwrap().permissions().mode() & 0o777, 0o600);
        let sk = load_signing_key(&k).unwrap();
        let vk = load_verifying_key(&p).unwrap();
        assert_eq!(sk.verifying_key(), vk);
        let sig = sk.sign(b"checkpoint");
        assert!(vk.verify(b"checkpoint", &sig).is_ok());
        assert!(vk.verify(b"checkpoinT", &sig).is_err());
        assert_eq!(key_id(&vk).len(), 16);
        let e = generate(&dir.join("sensor")).unwrap_err();
        assert!(e.contains("sensor.key") && e.contains("exists"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_key_others_can_read_or_write_is_refused() {
        let dir = std::env::temp_dir().join(format!("otsensor-keyperm-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let (k, p) = generate(&dir.join("s")).unwrap();
        fs::set_permissions(&k, fs::Permissions::from_mode(0o640)).unwrap();
        let e = load_signing_key(&k).unwrap_err();
        assert!(e.contains("s.key") && e.contains("readable by others"), "{e}");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o666)).unwrap();
        let e = load_verifying_key(&p).unwrap_err();
        assert!(e.contains("s.pub") && e.contains("writable by group or others"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_that_is_not_a_key_is_refused_with_its_name() {
        let dir = std::env::temp_dir().join(format!("otsensor-notkey-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.pub");
        fs::write(&p, "hello\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_verifying_key(&p).unwrap_err();
        assert!(e.contains("x.pub: not an Ed25519 public key"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
