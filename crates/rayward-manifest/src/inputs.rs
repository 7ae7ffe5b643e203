//! What a run reads: the paths of the command line, standard input (`-`) under the same
//! size cap as a file, and the limits every input is held to. audit and harden (and any
//! later source of objects) resolve their inputs here, so they read the same things the
//! same way.

use crate::error::{LoadError, LoadErrorKind};
use crate::load::Limits;
use crate::source::{expand_paths, load_bytes, load_file, Loaded};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The inputs of a run, as given on the command line.
#[derive(Clone, Debug)]
pub struct Inputs {
    /// Files and folders; `-` is standard input. Empty means the current folder.
    pub paths: Vec<PathBuf>,
    /// The name standard input gets in findings and errors.
    pub stdin_name: String,
    pub limits: Limits,
}

impl Default for Inputs {
    fn default() -> Self {
        Inputs {
            paths: Vec::new(),
            stdin_name: "<stdin>".to_string(),
            limits: Limits::default(),
        }
    }
}

/// One input to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// The name findings and errors give it.
    pub name: String,
    /// Where it is read from.
    pub origin: Origin,
    /// Its path relative to the argument that named it (a folder's file keeps its path
    /// inside the folder, a file given by path its file name): where a command that
    /// mirrors its inputs (`harden -o DIR`) writes it.
    pub rel: PathBuf,
}

/// Where an input is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Stdin,
    File(PathBuf),
}

impl Inputs {
    /// The inputs of a command line: its paths, the name of standard input, and the
    /// largest input accepted (the other limits keep their defaults).
    pub fn new(paths: &[PathBuf], stdin_name: &str, max_file_bytes: u64) -> Inputs {
        Inputs {
            paths: paths.to_vec(),
            stdin_name: stdin_name.to_string(),
            limits: Limits {
                max_file_bytes,
                ..Limits::default()
            },
        }
    }

    /// Expands folders (sorted, recursive, `.yaml`/`.yml`/`.json`), in argument order.
    /// Standard input is read once, however often `-` is given. Paths that do not exist
    /// are errors, returned beside the inputs that do.
    pub fn resolve(&self) -> (Vec<Input>, Vec<LoadError>) {
        let dot = [PathBuf::from(".")];
        let paths = if self.paths.is_empty() {
            &dot[..]
        } else {
            &self.paths[..]
        };
        let mut out = Vec::new();
        let mut errors = Vec::new();
        let mut stdin = false;
        for p in paths {
            if p.as_os_str() == "-" {
                if !std::mem::replace(&mut stdin, true) {
                    out.push(Input {
                        name: self.stdin_name.clone(),
                        origin: Origin::Stdin,
                        rel: PathBuf::from(&self.stdin_name),
                    });
                }
                continue;
            }
            let (files, errs) = expand_paths(std::slice::from_ref(p));
            errors.extend(errs);
            for f in files {
                let rel = if p.is_dir() {
                    f.strip_prefix(p)
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|_| f.clone())
                } else {
                    PathBuf::from(f.file_name().unwrap_or(f.as_os_str()))
                };
                out.push(Input {
                    name: f.display().to_string(),
                    origin: Origin::File(f),
                    rel,
                });
            }
        }
        (out, errors)
    }

    /// Reads and parses one input. Standard input is read up to one byte past the size
    /// limit (which [`load_bytes`] then refuses), so an oversized stream is
    /// refused, not swallowed.
    pub fn load(&self, input: &Input) -> Loaded {
        match &input.origin {
            Origin::File(p) => load_file(p, &self.limits),
            Origin::Stdin => {
                let mut buf = Vec::new();
                let read = std::io::stdin()
                    .lock()
                    .take(self.limits.max_file_bytes + 1)
                    .read_to_end(&mut buf);
                match read {
                    Ok(_) => load_bytes(&input.name, &buf, &self.limits),
                    Err(e) => Loaded {
                        error: Some(LoadError {
                            file: input.name.clone(),
                            line: 0,
                            col: 0,
                            kind: LoadErrorKind::Io(e.to_string()),
                        }),
                        ..Loaded::default()
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_expand_in_argument_order_and_stdin_is_read_once() {
        let dir = std::env::temp_dir().join(format!("rayward-inputs-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/b.yaml"), "").unwrap();
        std::fs::write(dir.join("a.yml"), "").unwrap();
        std::fs::write(dir.join("notes.txt"), "").unwrap();
        let inputs = Inputs {
            paths: vec![
                PathBuf::from("-"),
                dir.clone(),
                dir.join("notes.txt"),
                PathBuf::from("-"),
                dir.join("missing.yaml"),
            ],
            ..Inputs::default()
        };
        let (got, errors) = inputs.resolve();
        let rels: Vec<_> = got.iter().map(|i| i.rel.display().to_string()).collect();
        assert_eq!(rels, ["<stdin>", "a.yml", "sub/b.yaml", "notes.txt"]);
        assert_eq!(got[0].origin, Origin::Stdin);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].file.ends_with("missing.yaml"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
