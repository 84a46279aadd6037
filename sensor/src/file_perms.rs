//! Files that steer the sensor (its config, policy and keys) are refused when someone other
//! than their owner (or root) could have changed them: a group- or world-writable file would
//! let a local user rewrite what the sensor trusts. Private keys are also refused when others
//! can read them. (The directories above the file are not checked.)

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// What a file holds, and so who may see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exposure {
    /// Settings, policies, public keys: anyone may read, only the owner write.
    Config,
    /// Private keys and tokens: only the owner may read or write.
    Secret,
}

/// An error naming `path` when its mode gives others more than `exposure` allows.
pub fn refuse_if_exposed(path: &Path, what: &str, exposure: Exposure) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "{}: {what} is writable by group or others (mode {mode:03o}); refused: chmod go-w {}",
            path.display(),
            path.display()
        ));
    }
    if exposure == Exposure::Secret && mode & 0o044 != 0 {
        return Err(format!(
            "{}: {what} is readable by others (mode {mode:03o}); refused: chmod 600 {}",
            path.display(),
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn modes_are_judged_by_what_the_file_holds() {
        let dir = std::env::temp_dir().join(format!("otsensor-perms-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        fs::write(&p, "x").unwrap();
        for (mode, config_ok, secret_ok) in [
            (0o600, true, true),
            (0o644, true, false),
            (0o640, true, false),
            (0o664, false, false),
            (0o602, false, false),
        ] {
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(refuse_if_exposed(&p, "x", Exposure::Config).is_ok(), config_ok, "{mode:o}");
            assert_eq!(refuse_if_exposed(&p, "x", Exposure::Secret).is_ok(), secret_ok, "{mode:o}");
        }
        let e = refuse_if_exposed(&dir.join("none"), "policy", Exposure::Config).unwrap_err();
        assert!(e.contains("none"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
