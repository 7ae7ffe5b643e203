//! `rayward gateway passwd`: adds or changes a user in an htpasswd file with a bcrypt
//! hash, after checking the guide's password policy (8-30 characters, at least three of
//! upper case, lower case, digit, special). The file is rewritten through a temporary
//! file and a rename, so a reader (the running gateway) never sees half a file.

use std::io::Write;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum PasswdError {
    #[error("password must be 8 to 30 characters (got {0})")]
    Length(usize),
    #[error("password must mix at least three of: upper case, lower case, digit, special character (has {0})")]
    Classes(usize),
    #[error("user name must be non-empty, without ':', whitespace or control characters")]
    BadUser,
    #[error("{path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error(transparent)]
    Existing(#[from] crate::authn::htpasswd::HtpasswdError),
}

/// Checks the guide's password policy.
pub fn check_policy(pw: &str) -> Result<(), PasswdError> {
    let n = pw.chars().count();
    if !(8..=30).contains(&n) {
        return Err(PasswdError::Length(n));
    }
    let classes = [
        pw.chars().any(|c| c.is_uppercase()),
        pw.chars().any(|c| c.is_lowercase()),
        pw.chars().any(|c| c.is_ascii_digit()),
        pw.chars().any(|c| !c.is_alphanumeric() && !c.is_control()),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if classes < 3 {
        return Err(PasswdError::Classes(classes));
    }
    Ok(())
}

/// Sets `user`'s password in the htpasswd file at `path` (created 0600 if missing), with
/// bcrypt at `cost`. Returns whether the user existed before.
pub fn set_password(
    path: &Path,
    user: &str,
    password: &str,
    cost: u32,
) -> Result<bool, PasswdError> {
    if user.is_empty()
        || user
            .chars()
            .any(|c| c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(PasswdError::BadUser);
    }
    check_policy(password)?;
    let io = |err| PasswdError::Io {
        path: path.display().to_string(),
        err,
    };
    let old = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(e)),
    };
    // Refuse to rewrite a file we cannot read correctly.
    crate::authn::htpasswd::parse(&old, &path.display().to_string())?;
    let hash = bcrypt::hash(password, cost)
        .map_err(|e| io(std::io::Error::other(e.to_string())))?
        .replacen("$2b$", "$2y$", 1);
    let mut existed = false;
    let mut out = String::with_capacity(old.len() + 80);
    for line in old.lines() {
        if line.split_once(':').map(|(u, _)| u) == Some(user) {
            existed = true;
            out.push_str(&format!("{user}:{hash}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !existed {
        out.push_str(&format!("{user}:{hash}\n"));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.rayward-tmp"));
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp).map_err(io)?;
        if let Ok(meta) = std::fs::metadata(path) {
            f.set_permissions(meta.permissions()).map_err(io)?;
        }
        f.write_all(out.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(existed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::htpasswd::parse;

    #[test]
    fn policy() {
        for ok in [
            "Abcdefg1",
            "abcdefg1!",
            "ABCDEFG1!",
            "Zz9-Zz9-Zz9-Zz9-Zz9-Zz9-Zz9-Zz",
            "pässwörD1",
        ] {
            assert!(check_policy(ok).is_ok(), "{ok}");
        }
        assert!(matches!(check_policy("Ab1!"), Err(PasswdError::Length(4))));
        assert!(matches!(
            check_policy(&"Ab1!".repeat(8)),
            Err(PasswdError::Length(32))
        ));
        assert!(matches!(
            check_policy("abcdefgh1"),
            Err(PasswdError::Classes(2))
        ));
        assert!(matches!(
            check_policy("abcdefgh"),
            Err(PasswdError::Classes(1))
        ));
        assert!(matches!(
            check_policy("ABCD!!!!"),
            Err(PasswdError::Classes(2))
        ));
    }

    #[test]
    fn adds_and_changes_users_keeping_others() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("htpasswd");
        let apr1 = "$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/";
        std::fs::write(&p, format!("bob:{apr1}\n")).unwrap();
        assert!(!set_password(&p, "alice", "Secret-Pass1", 4).unwrap());
        assert!(set_password(&p, "alice", "Other-Pass2", 4).unwrap());
        let text = std::fs::read_to_string(&p).unwrap();
        let users = parse(&text, "h").unwrap();
        assert_eq!(users.len(), 2);
        assert!(text.contains("alice:$2y$04$"), "{text}");
        assert!(users["alice"].verify("Other-Pass2"));
        assert!(!users["alice"].verify("Secret-Pass1"));
        assert!(users["bob"].verify("myPassword"));
    }

    #[test]
    fn new_file_is_private_and_bad_input_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("new");
        set_password(&p, "alice", "Secret-Pass1", 4).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(matches!(
            set_password(&p, "a:b", "Secret-Pass1", 4),
            Err(PasswdError::BadUser)
        ));
        assert!(matches!(
            set_password(&p, "bob", "weak", 4),
            Err(PasswdError::Length(4))
        ));
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "junk\n").unwrap();
        let e = set_password(&bad, "a", "Secret-Pass1", 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains(":1: expected user:hash"), "{e}");
    }
}
