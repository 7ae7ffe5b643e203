//! htpasswd files as Apache's `htpasswd` writes them and nginx reads them: `user:hash`
//! lines with bcrypt (`$2y$`, `$2b$`, `$2a$`) or apr1 (`$apr1$`) hashes. The file is
//! re-read when its size, modification time or inode changes; a file that fails to parse
//! leaves the previous users in force (and the error is reported), so a half-written
//! edit never locks everyone out or lets anyone in.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum HtpasswdError {
    #[error("{path}: cannot read: {err}")]
    Read { path: String, err: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Line {
        path: String,
        line: usize,
        message: String,
    },
}

/// A stored hash, by scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hash {
    Bcrypt(String),
    Apr1(String),
}

impl Hash {
    pub fn as_str(&self) -> &str {
        match self {
            Hash::Bcrypt(s) | Hash::Apr1(s) => s,
        }
    }

    /// Verifies a password; costs ~100 ms for bcrypt at cost 10, so callers run it on a
    /// blocking thread and cache successes.
    pub fn verify(&self, password: &str) -> bool {
        match self {
            Hash::Bcrypt(h) => bcrypt::verify(password, h).unwrap_or(false),
            Hash::Apr1(h) => super::apr1::verify(password.as_bytes(), h),
        }
    }
}

/// Parses htpasswd text; `name` is used in error messages.
pub fn parse(text: &str, name: &str) -> Result<HashMap<String, Hash>, HtpasswdError> {
    let mut users = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let err = |message: String| HtpasswdError::Line {
            path: name.to_string(),
            line: i + 1,
            message,
        };
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (user, hash) = line
            .split_once(':')
            .ok_or_else(|| err("expected user:hash".into()))?;
        if user.is_empty() {
            return Err(err("empty user name".into()));
        }
        let hash = if hash.starts_with("$2y$")
            || hash.starts_with("$2b$")
            || hash.starts_with("$2a$")
        {
            if hash.parse::<bcrypt::HashParts>().is_err() {
                return Err(err(format!("user {user:?}: malformed bcrypt hash")));
            }
            Hash::Bcrypt(hash.to_string())
        } else if let Some(rest) = hash.strip_prefix("$apr1$") {
            match rest.split_once('$') {
                Some((salt, h)) if !salt.is_empty() && salt.len() <= 8 && h.len() == 22 => {
                    Hash::Apr1(hash.to_string())
                }
                _ => return Err(err(format!("user {user:?}: malformed apr1 hash"))),
            }
        } else {
            return Err(err(format!(
                "user {user:?}: unsupported hash scheme (use bcrypt `htpasswd -B` or apr1 `htpasswd -m`)"
            )));
        };
        if users.insert(user.to_string(), hash).is_some() {
            return Err(err(format!("user {user:?} appears twice")));
        }
    }
    Ok(users)
}

type Stamp = (u64, i64, i64, u64);

/// An htpasswd file kept current by [`HtpasswdFile::reload_if_changed`].
pub struct HtpasswdFile {
    path: PathBuf,
    users: RwLock<Arc<HashMap<String, Hash>>>,
    stamp: Mutex<Option<Stamp>>,
    /// Bumped after every reload that swapped the users in: whoever remembers a
    /// verification (the gateway's per-connection memo) keys it on this, so a removed user
    /// or a changed password is judged afresh on the next request.
    generation: AtomicU64,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok((m.len(), m.mtime(), m.mtime_nsec(), m.ino()))
}

impl HtpasswdFile {
    /// Loads the file; any error is fatal at start.
    pub fn open(path: &Path) -> Result<HtpasswdFile, HtpasswdError> {
        let f = HtpasswdFile {
            path: path.to_path_buf(),
            users: RwLock::new(Arc::new(HashMap::new())),
            stamp: Mutex::new(None),
            generation: AtomicU64::new(0),
        };
        f.reload_if_changed()?;
        Ok(f)
    }

    /// Re-reads the file if it changed. Returns whether it did; on error the previous
    /// users stay in force.
    pub fn reload_if_changed(&self) -> Result<bool, HtpasswdError> {
        let read_err = |err| HtpasswdError::Read {
            path: self.path.display().to_string(),
            err,
        };
        let now = stamp(&self.path).map_err(read_err)?;
        let mut last = self.stamp.lock().expect("stamp lock");
        if *last == Some(now) {
            return Ok(false);
        }
        let text = std::fs::read_to_string(&self.path).map_err(read_err)?;
        let users = parse(&text, &self.path.display().to_string())?;
        *self.users.write().expect("users lock") = Arc::new(users);
        // After the swap: a reader that sees the new generation also sees the new users.
        self.generation.fetch_add(1, Ordering::AcqRel);
        *last = Some(now);
        Ok(true)
    }

    pub fn get(&self, user: &str) -> Option<Hash> {
        self.users.read().expect("users lock").get(user).cloned()
    }

    /// How many times the users were (re)loaded: changes whenever [`HtpasswdFile::get`]'s
    /// answers may have.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APR1: &str = "$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/";

    #[test]
    fn parses_bcrypt_and_apr1() {
        let b = bcrypt::hash("s3cret-Pass", 4)
            .unwrap()
            .replacen("$2b$", "$2y$", 1);
        let text = format!("# comment\nalice:{b}\r\n\nbob:{APR1}\n");
        let users = parse(&text, "h").unwrap();
        assert!(users["alice"].verify("s3cret-Pass"));
        assert!(!users["alice"].verify("s3cret-pass"));
        assert!(users["bob"].verify("myPassword"));
        assert!(!users["bob"].verify("wrong"));
    }

    #[test]
    fn errors_name_the_line() {
        for (text, want) in [
            (
                "alice:{SHA}abc\n",
                "h:1: user \"alice\": unsupported hash scheme",
            ),
            ("\nnocolon\n", "h:2: expected user:hash"),
            (":$apr1$a$b\n", "h:1: empty user name"),
            (
                "a:$apr1$toolongsalt$HqJZimcKQFAMYayBlzkrA/\n",
                "h:1: user \"a\": malformed apr1",
            ),
            ("a:$2y$10$short\n", "h:1: user \"a\": malformed bcrypt"),
            ("a:plaintext\n", "unsupported"),
        ] {
            let e = parse(text, "h").unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let e = parse(&format!("a:{APR1}\na:{APR1}\n"), "h")
            .unwrap_err()
            .to_string();
        assert!(e.contains("h:2: user \"a\" appears twice"), "{e}");
    }

    #[test]
    fn reloads_on_change_and_keeps_old_users_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("htpasswd");
        std::fs::write(&p, format!("bob:{APR1}\n")).unwrap();
        let f = HtpasswdFile::open(&p).unwrap();
        assert!(f.get("bob").is_some());
        let g = f.generation();
        assert!(!f.reload_if_changed().unwrap());
        assert_eq!(f.generation(), g, "unchanged file, same generation");

        std::fs::write(&p, format!("carol:{APR1}\nbob2:{APR1}\n")).unwrap();
        assert!(f.reload_if_changed().unwrap());
        assert!(f.generation() > g, "a reload bumps the generation");
        let g = f.generation();
        assert!(f.get("bob").is_none());
        assert!(f.get("carol").is_some());

        std::fs::write(&p, "garbage\n").unwrap();
        assert!(f.reload_if_changed().is_err());
        assert!(f.get("carol").is_some(), "previous users stay in force");
        assert_eq!(f.generation(), g, "a failed reload changes nothing");
    }
}
