//! Reading and writing the files: private keys at 0600, nothing overwritten without `force`.

use crate::{Error, Result};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One file to write.
pub(crate) struct Output {
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub private: bool,
}

pub(crate) fn read_text(path: &Path) -> Result<String> {
    let bytes = fs::read(path).map_err(|err| Error::Io {
        path: path.to_owned(),
        err,
    })?;
    String::from_utf8(bytes).map_err(|_| Error::invalid(path, "not a PEM file (not UTF-8 text)"))
}

/// Writes all outputs into `dir` (created if missing). Checks every target first, so a
/// refusal leaves nothing half written.
pub(crate) fn write_all(dir: &Path, outputs: &[Output], force: bool) -> Result<()> {
    fs::create_dir_all(dir).map_err(|err| Error::Io {
        path: dir.to_owned(),
        err,
    })?;
    for o in outputs {
        match fs::symlink_metadata(&o.path) {
            Ok(m) if m.is_dir() => return Err(Error::invalid(&o.path, "is a folder")),
            Ok(_) if !force => {
                return Err(Error::Exists {
                    path: o.path.clone(),
                })
            }
            _ => {}
        }
    }
    for o in outputs {
        write_one(o, force)?;
    }
    Ok(())
}

fn write_one(o: &Output, force: bool) -> Result<()> {
    let io = |err| Error::Io {
        path: o.path.clone(),
        err,
    };
    if force {
        // Removed rather than truncated: a new file gets the mode below, and a symlink is
        // replaced instead of followed.
        match fs::remove_file(&o.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
    }
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if o.private { 0o600 } else { 0o644 });
    }
    let mut f = opts.open(&o.path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::Exists {
                path: o.path.clone(),
            }
        } else {
            io(e)
        }
    })?;
    #[cfg(unix)]
    if o.private {
        // The umask can only take bits away; this makes 0600 exact whatever it is.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io)?;
    }
    f.write_all(&o.contents).map_err(io)?;
    f.sync_all().map_err(io)
}
