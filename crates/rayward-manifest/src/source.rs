//! From paths and bytes to objects.

use crate::error::{LoadError, LoadErrorKind};
use crate::load::{decode, parse_documents, Limits};
use crate::object::Object;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What one input gave: its objects, and the error that stopped it, if any.
#[derive(Debug, Default)]
pub struct Loaded {
    pub objects: Vec<Object>,
    pub error: Option<LoadError>,
    /// Documents read that were not Kubernetes objects (skipped quietly).
    pub skipped_documents: usize,
    /// The input is JSON (its first character is `{` or `[`): JSON quotes every string,
    /// which a command writing YAML may drop where that keeps them strings.
    pub json: bool,
}

/// Loads one input from memory.
pub fn load_bytes(name: &str, bytes: &[u8], limits: &Limits) -> Loaded {
    let file: Arc<str> = Arc::from(name);
    let mut out = Loaded {
        json: bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{' || *b == b'['),
        ..Loaded::default()
    };
    let text = match decode(name, bytes, limits) {
        Ok(t) => t,
        Err(e) => {
            out.error = Some(e);
            return out;
        }
    };
    match parse_documents(name, text, limits) {
        Ok(docs) => {
            for d in docs {
                if let Some((pos, why)) = crate::object::metadata_refusal(&d.root) {
                    out.error = Some(LoadError {
                        file: name.to_string(),
                        line: pos.line,
                        col: pos.col,
                        kind: LoadErrorKind::Refused(why),
                    });
                    return out;
                }
                let objs = Object::from_document(&file, d.index, d.root);
                if objs.is_empty() {
                    out.skipped_documents += 1;
                }
                out.objects.extend(objs);
            }
        }
        Err(e) => out.error = Some(e),
    }
    out
}

/// Loads one file, checking its size before reading it.
pub fn load_file(path: &Path, limits: &Limits) -> Loaded {
    let name = path.display().to_string();
    let io_err = |e: std::io::Error| Loaded {
        error: Some(LoadError {
            file: name.clone(),
            line: 0,
            col: 0,
            kind: LoadErrorKind::Io(e.to_string()),
        }),
        ..Loaded::default()
    };
    let too_large = |size: u64| Loaded {
        error: Some(LoadError {
            file: name.clone(),
            line: 0,
            col: 0,
            kind: LoadErrorKind::TooLarge {
                size,
                limit: limits.max_file_bytes,
            },
        }),
        ..Loaded::default()
    };
    // Only regular files are read: a FIFO would block the run forever and a device
    // (/dev/zero, /dev/urandom) never ends while its metadata says size 0. The check is
    // made before opening (opening a FIFO blocks) and again on the open file (the path may
    // have changed in between); standard input is `-`.
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => return not_regular(&name, m.file_type()),
        Ok(m) if m.len() > limits.max_file_bytes => return too_large(m.len()),
        Ok(_) => {}
        Err(e) => return io_err(e),
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: a FIFO swapped in after the check must not block the open.
        opts.custom_flags(0o4000);
    }
    let file = match opts.open(path) {
        Ok(f) => f,
        Err(e) => return io_err(e),
    };
    match file.metadata() {
        Ok(m) if !m.is_file() => return not_regular(&name, m.file_type()),
        Ok(_) => {}
        Err(e) => return io_err(e),
    }
    // Never more than the limit, whatever the metadata said (a file can grow, and
    // /proc-like files report size 0).
    let mut bytes = Vec::new();
    match std::io::Read::read_to_end(
        &mut std::io::Read::take(file, limits.max_file_bytes + 1),
        &mut bytes,
    ) {
        Ok(n) if n as u64 > limits.max_file_bytes => too_large(n as u64),
        Ok(_) => load_bytes(&name, &bytes, limits),
        Err(e) => io_err(e),
    }
}

/// The error for a path that is not a regular file.
fn not_regular(name: &str, t: std::fs::FileType) -> Loaded {
    use std::os::unix::fs::FileTypeExt;
    let what = if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    };
    Loaded {
        error: Some(LoadError {
            file: name.to_string(),
            line: 0,
            col: 0,
            kind: LoadErrorKind::Io(format!(
                "{what}: rayward reads regular files only (use `-` for standard input)"
            )),
        }),
        ..Loaded::default()
    }
}

/// Is this a manifest file by its extension?
fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Expands the given paths: files are kept as given (whatever their extension), folders
/// are walked recursively for `.yaml`, `.yml` and `.json` files in sorted order. Symbolic
/// links to folders are not followed, so a link cycle cannot loop. Paths that do not exist
/// are errors.
pub fn expand_paths(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<LoadError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, &mut files, &mut errors),
            Ok(_) => files.push(p.clone()),
            Err(e) => errors.push(LoadError {
                file: p.display().to_string(),
                line: 0,
                col: 0,
                kind: LoadErrorKind::Io(e.to_string()),
            }),
        }
    }
    (files, errors)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<LoadError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            errors.push(LoadError {
                file: dir.display().to_string(),
                line: 0,
                col: 0,
                kind: LoadErrorKind::Io(e.to_string()),
            });
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            walk(&p, files, errors);
        } else if is_manifest(&p) && (meta.is_file() || p.is_file()) {
            files.push(p);
        }
    }
}
