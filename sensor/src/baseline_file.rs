//! Baseline files: loaded with their checksum verified, written atomically (a temporary
//! file in the same directory, fsync, rename over the old one, fsync of the directory), so a
//! crash never leaves a half-written baseline behind.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use otsensor_models::baseline::{Baseline, BaselineError};
use otsensor_models::reseal;

/// Why a baseline file could not be used.
#[derive(Debug)]
pub enum BaselineFileError {
    /// Reading or writing failed.
    Io(PathBuf, io::Error),
    /// The document was refused.
    Invalid(PathBuf, BaselineError),
}

impl std::fmt::Display for BaselineFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BaselineFileError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            BaselineFileError::Invalid(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for BaselineFileError {}

/// Reads and verifies a baseline.
pub fn load(path: &Path) -> Result<Baseline, BaselineFileError> {
    let text = fs::read_to_string(path).map_err(|e| BaselineFileError::Io(path.to_path_buf(), e))?;
    Baseline::from_json(&text).map_err(|e| BaselineFileError::Invalid(path.to_path_buf(), e))
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
    let text = baseline.to_json();
    write_atomic(path, &text).map_err(|e| BaselineFileError::Io(path.to_path_buf(), e))?;
    Ok(text.len())
}

/// Re-seals a reviewed baseline file in place: `otsensor baseline seal FILE`.
pub fn seal(path: &Path) -> Result<(), BaselineFileError> {
    let text = fs::read_to_string(path).map_err(|e| BaselineFileError::Io(path.to_path_buf(), e))?;
    let sealed = reseal(&text).map_err(|e| BaselineFileError::Invalid(path.to_path_buf(), e))?;
    write_atomic(path, &sealed).map_err(|e| BaselineFileError::Io(path.to_path_buf(), e))
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
        seal(&path).unwrap();
        assert_eq!(load(&path).unwrap().learning.runs, 7);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left");
        fs::remove_dir_all(&dir).unwrap();
    }
}
