//! Baseline files: loaded with their checksum verified, written atomically (a temporary
//! file in the same directory, fsync, rename over the old one, fsync of the directory), so a
//! crash never leaves a half-written baseline behind.
//!
//! Signed baselines: with a private key (`--sign-key`), writing a baseline also writes
//! `FILE.sig`, an Ed25519 signature of its checksum (the SHA-256 of its canonical content);
//! with a public key (`--baseline-key`), loading refuses a baseline whose signature is
//! missing, made with another key, or made for other content. The signature file is written
//! before the baseline and keeps the signature of the baseline it replaces, so a kill between
//! the two writes leaves a pair that still verifies.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use otsensor_models::baseline::{Baseline, BaselineError};
use otsensor_models::reseal;
use serde::{Deserialize, Serialize};

use crate::keys::key_id;

/// `--baseline-key PUB` and `--sign-key FILE`, resolved.
#[derive(Clone, Debug, Default)]
pub struct BaselineKeys {
    /// Verifies every baseline loaded.
    pub verify: Option<VerifyingKey>,
    /// Signs every baseline written.
    pub sign: Option<SigningKey>,
}

impl BaselineKeys {
    /// Loads the keys named (refusing key files others could change or read).
    pub fn load(verify: Option<&Path>, sign: Option<&Path>) -> Result<BaselineKeys, String> {
        Ok(BaselineKeys {
            verify: verify.map(crate::keys::load_verifying_key).transpose()?,
            sign: sign.map(crate::keys::load_signing_key).transpose()?,
        })
    }
}

/// `FILE.sig`: who signed, and the signatures of this baseline and of the one before it.
#[derive(Serialize, Deserialize, Debug, Default)]
struct SigFile {
    key_id: String,
    signatures: Vec<SigEntry>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
struct SigEntry {
    checksum: String,
    sig: String,
}

/// The path of a baseline's signature.
pub fn sig_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

fn sig_message(checksum: &str) -> Vec<u8> {
    let mut m = b"otsensor baseline v1\0".to_vec();
    m.extend(checksum.as_bytes());
    m
}

/// Why a baseline file could not be used.
#[derive(Debug)]
pub enum BaselineFileError {
    /// Reading or writing failed.
    Io(PathBuf, io::Error),
    /// The document was refused.
    Invalid(PathBuf, BaselineError),
    /// The signature is missing, another key's, or not this content's.
    Signature(PathBuf, String),
}

impl std::fmt::Display for BaselineFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BaselineFileError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            BaselineFileError::Invalid(p, e) => write!(f, "{}: {e}", p.display()),
            BaselineFileError::Signature(p, e) => write!(f, "{}: refused: {e}", p.display()),
        }
    }
}

impl std::error::Error for BaselineFileError {}

/// Reads and verifies a baseline (its checksum; not a signature: see [`load_with`]).
pub fn load(path: &Path) -> Result<Baseline, BaselineFileError> {
    let text = fs::read_to_string(path).map_err(|e| BaselineFileError::Io(path.to_path_buf(), e))?;
    Baseline::from_json(&text).map_err(|e| BaselineFileError::Invalid(path.to_path_buf(), e))
}

/// Reads and verifies a baseline, and its signature when `keys` has a public key.
pub fn load_with(path: &Path, keys: &BaselineKeys) -> Result<Baseline, BaselineFileError> {
    let b = load(path)?;
    if let Some(key) = &keys.verify {
        verify_signature(path, &b.checksum, key).map_err(|e| BaselineFileError::Signature(path.to_path_buf(), e))?;
    }
    Ok(b)
}

fn read_sig_file(path: &Path) -> Result<SigFile, String> {
    let sp = sig_path(path);
    let text = fs::read_to_string(&sp).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => format!("it is not signed ({} is missing)", sp.display()),
        _ => format!("{}: {e}", sp.display()),
    })?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not a signature file ({e})", sp.display()))
}

/// Checks that `checksum` (the baseline's, already verified against its content) is signed
/// by `key` in the baseline's signature file.
fn verify_signature(path: &Path, checksum: &str, key: &VerifyingKey) -> Result<(), String> {
    let file = read_sig_file(path)?;
    let want = key_id(key);
    if file.key_id != want {
        return Err(format!("it is signed by key {}, not by the key given ({want})", file.key_id));
    }
    let entry = file.signatures.iter().find(|s| s.checksum == checksum).ok_or_else(|| {
        format!(
            "its signature is for other content: the baseline (checksum {checksum}) was modified after it was signed"
        )
    })?;
    let sig = unhex64(&entry.sig).map(|b| Signature::from_bytes(&b)).ok_or("its signature is unreadable")?;
    key.verify(&sig_message(checksum), &sig)
        .map_err(|_| format!("the signature in {} does not verify: forged or altered", sig_path(path).display()))
}

fn unhex64(s: &str) -> Option<[u8; 64]> {
    let mut out = [0u8; 64];
    if s.len() != 128 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Writes `FILE.sig` for a baseline of `checksum` about to be written at `path`, keeping the
/// signature of the one there now (valid under this key) so that a kill before the baseline
/// lands leaves a verifiable pair.
fn write_signature(path: &Path, checksum: &str, key: &SigningKey) -> io::Result<()> {
    let id = key_id(&key.verifying_key());
    let sig: String = key.sign(&sig_message(checksum)).to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let mut signatures = vec![SigEntry { checksum: checksum.to_string(), sig }];
    let current = load(path).ok().map(|b| b.checksum);
    if let (Ok(old), Some(current)) = (read_sig_file(path), current) {
        if old.key_id == id {
            signatures.extend(old.signatures.into_iter().filter(|s| s.checksum == current && s.checksum != checksum));
        }
    }
    let text = serde_json::to_string_pretty(&SigFile { key_id: id, signatures }).map_err(io::Error::other)?;
    write_atomic(&sig_path(path), &text)
}

/// Writes `text` to `path` atomically.
pub fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "baseline".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        #[cfg(unix)]
        File::open(&dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Seals `baseline` (sets its checksum) and writes it atomically; returns the bytes written.
pub fn save(path: &Path, baseline: &mut Baseline) -> Result<usize, BaselineFileError> {
    save_with(path, baseline, &BaselineKeys::default())
}

/// [`save`], then signs it when `keys` has a private key.
pub fn save_with(path: &Path, baseline: &mut Baseline, keys: &BaselineKeys) -> Result<usize, BaselineFileError> {
    let text = baseline.to_json();
    write_text(path, &text, &baseline.checksum, keys)?;
    Ok(text.len())
}

/// Writes a sealed document of `checksum`: its signature first (when signing), then itself.
fn write_text(path: &Path, text: &str, checksum: &str, keys: &BaselineKeys) -> Result<(), BaselineFileError> {
    let io_err = |e| BaselineFileError::Io(path.to_path_buf(), e);
    if let Some(key) = &keys.sign {
        write_signature(path, checksum, key).map_err(io_err)?;
    }
    write_atomic(path, text).map_err(io_err)
}

/// Re-seals a reviewed baseline file in place: `otsensor baseline seal FILE`; signs it too
/// when `keys` has a private key.
pub fn seal(path: &Path, keys: &BaselineKeys) -> Result<(), BaselineFileError> {
    let text = fs::read_to_string(path).map_err(|e| BaselineFileError::Io(path.to_path_buf(), e))?;
    let sealed = reseal(&text).map_err(|e| BaselineFileError::Invalid(path.to_path_buf(), e))?;
    let checksum =
        Baseline::from_json(&sealed).map_err(|e| BaselineFileError::Invalid(path.to_path_buf(), e))?.checksum;
    write_text(path, &sealed, &checksum, keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_atomically_and_refuses_a_corrupted_file() {
        let dir = std::env::temp_dir().join(format!("otsensor-baseline-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("b.json");
        let mut b = otsensor_models::Learner::new().finish();
        save(&path, &mut b).unwrap();
        assert!(load(&path).is_ok());
        let text = fs::read_to_string(&path).unwrap().replace("\"runs\": 0", "\"runs\": 7");
        fs::write(&path, text).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
        seal(&path, &BaselineKeys::default()).unwrap();
        assert_eq!(load(&path).unwrap().learning.runs, 7);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_kill_between_the_signature_and_the_baseline_leaves_a_pair_that_verifies() {
        let dir = std::env::temp_dir().join(format!("otsensor-baseline-sig-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let (k, p) = crate::keys::generate(&dir.join("k")).unwrap();
        let keys = BaselineKeys::load(Some(&p), Some(&k)).unwrap();
        let path = dir.join("b.json");
        let mut b = otsensor_models::Learner::new().finish();
        save_with(&path, &mut b, &keys).unwrap();
        // The next save is killed after its signature landed and before the baseline did.
        let mut next = otsensor_models::Learner::new().finish();
        next.learning.runs = 9;
        let text = next.to_json();
        write_signature(&path, &next.checksum, keys.sign.as_ref().unwrap()).unwrap();
        assert_eq!(load_with(&path, &keys).unwrap().learning.runs, 0, "the old baseline still verifies");
        write_atomic(&path, &text).unwrap();
        assert_eq!(load_with(&path, &keys).unwrap().learning.runs, 9, "and so does the new one");
        fs::remove_dir_all(&dir).unwrap();
    }
}
