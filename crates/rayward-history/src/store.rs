//! The object store, opened from a URL.
//!
//! - a path or `file:///dir`: a local directory (created if missing), the embedded default;
//! - `s3://bucket/prefix`: AWS S3 and S3-compatible stores (MinIO, SeaweedFS, Alibaba OSS:
//!   set `AWS_ENDPOINT`/`AWS_ENDPOINT_URL`, and `AWS_ALLOW_HTTP=true` for a plain-HTTP test
//!   store); `gs://bucket/prefix`: GCS; `az://container/prefix`: Azure Blob.
//!
//! Credentials come only from the environment the cloud's workload identity sets (IRSA's
//! `AWS_WEB_IDENTITY_TOKEN_FILE`, GKE's metadata server, RRSA's OIDC variables, …) or from a
//! mounted file of `KEY=value` lines (a Secret volume, `--credentials-file`). A URL that
//! holds a user name, a password or a query is refused: that is where literal keys end up.

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, ObjectStoreScheme, PutPayload};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a store cannot be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store URL {url:?}: {why}")]
    BadUrl { url: String, why: String },
    #[error("credentials file {path}:{line}: {why}")]
    BadCredentials {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error("credentials file {path}: {source}")]
    CredentialsIo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the store holds layout version {found}; this rayward reads version {}",
        crate::layout::LAYOUT_VERSION
    )]
    UnknownLayout { found: String },
    #[error("{key}: not found")]
    NotFound { key: String },
    #[error("{key}: {size} bytes is over the limit of {limit}")]
    TooLarge { key: String, size: u64, limit: u64 },
    /// An object shorter than its index says: a truncated upload or a damaged store.
    #[error("{key}: truncated ({got} bytes, the index names {want})")]
    Truncated { key: String, want: u64, got: u64 },
    #[error("{0}")]
    Store(#[from] object_store::Error),
}

/// An open store: the backend and the root prefix inside it.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    root: String,
    url: String,
    /// Bytes held in memory per part when a file is streamed to the store.
    part: usize,
}

/// Part size for remote stores: S3 refuses parts under 5 MiB (but the last), so a streamed
/// upload holds one such part at a time there.
const REMOTE_PART: usize = 8 << 20;
/// Part size for a local directory: any size works, so a small one keeps the collector's
/// memory flat (issue 12's 30 MB bound) at no measurable cost.
const LOCAL_PART: usize = 256 << 10;

/// The `KEY=value` lines of a mounted credentials file (`#` comments, blank lines allowed).
pub fn read_credentials(path: &Path) -> Result<Vec<(String, String)>, StoreError> {
    let text = std::fs::read_to_string(path).map_err(|source| StoreError::CredentialsIo {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(StoreError::BadCredentials {
                path: path.to_path_buf(),
                line: i + 1,
                why: "expected KEY=value".into(),
            });
        };
        let k = k.trim();
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(StoreError::BadCredentials {
                path: path.to_path_buf(),
                line: i + 1,
                why: format!("{k:?} is not a variable name"),
            });
        }
        out.push((k.to_string(), v.trim().to_string()));
    }
    Ok(out)
}

/// `url` with any user name, password and query replaced by `***`, for error messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() || u.query().is_some() => {
            if !u.username().is_empty() || u.password().is_some() {
                let _ = u.set_username("***");
                let _ = u.set_password(None);
            }
            if u.query().is_some() {
                u.set_query(Some("***"));
            }
            u.to_string()
        }
        Ok(_) => url.to_string(),
        // Unparsable: cut at the last '@' so nothing before it is echoed.
        Err(_) => match url.rsplit_once('@') {
            Some((_, rest)) => format!("***@{rest}"),
            None => url.to_string(),
        },
    }
}

/// A local read error while streaming a file to the store.
fn spool_io(e: std::io::Error) -> StoreError {
    StoreError::Store(object_store::Error::Generic {
        store: "local file",
        source: Box::new(e),
    })
}

impl Store {
    /// Opens the store at `url` with options from the environment and `credentials`.
    pub fn open(url: &str, credentials: &[(String, String)]) -> Result<Store, StoreError> {
        let bad = |why: &str| StoreError::BadUrl {
            url: redact(url),
            why: why.to_string(),
        };
        if url.is_empty() {
            return Err(bad("empty"));
        }
        if !url.contains("://") {
            return Store::local(Path::new(url), url);
        }
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad(
                "holds credentials; give them in the environment or --credentials-file",
            ));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(bad("a query or fragment is not allowed"));
        }
        if parsed.scheme() == "file" {
            let p = parsed.to_file_path().map_err(|_| bad("not a local path"))?;
            return Store::local(&p, url);
        }
        let (scheme, path) = ObjectStoreScheme::parse(&parsed).map_err(|e| bad(&e.to_string()))?;
        let path = path.to_string();
        // Options: the process environment first, then the mounted file, which wins.
        let mut opts: Vec<(String, String)> = std::env::vars().collect();
        opts.extend(credentials.iter().cloned());
        // Every option the builder knows, by its lower-case name; the rest are not its.
        macro_rules! build {
            ($builder:expr) => {{
                let mut b = $builder.with_url(url);
                for (k, v) in &opts {
                    if let Ok(key) = k.to_ascii_lowercase().parse() {
                        b = b.with_config(key, v);
                    }
                }
                Arc::new(b.build()?)
            }};
        }
        let inner: Arc<dyn ObjectStore> = match scheme {
            ObjectStoreScheme::AmazonS3 => build!(object_store::aws::AmazonS3Builder::from_env()),
            ObjectStoreScheme::GoogleCloudStorage => {
                build!(object_store::gcp::GoogleCloudStorageBuilder::from_env())
            }
            ObjectStoreScheme::MicrosoftAzure => {
                build!(object_store::azure::MicrosoftAzureBuilder::from_env())
            }
            _ => return Err(bad("expected a directory, file://, s3://, gs:// or az://")),
        };
        Ok(Store {
            inner,
            root: path.trim_matches('/').to_string(),
            url: url.to_string(),
            part: REMOTE_PART,
        })
    }

    fn local(dir: &Path, url: &str) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::BadUrl {
            url: url.to_string(),
            why: format!("cannot create the directory: {e}"),
        })?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)?
            .with_automatic_cleanup(true);
        Ok(Store {
            inner: Arc::new(fs),
            root: String::new(),
            url: url.to_string(),
            part: LOCAL_PART,
        })
    }

    /// The URL it was opened from (holds no secret: those are refused in URLs).
    pub fn url(&self) -> &str {
        &self.url
    }

    fn path(&self, key: &str) -> Result<ObjPath, StoreError> {
        let full = if self.root.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.root)
        };
        Ok(ObjPath::parse(full).map_err(object_store::Error::from)?)
    }

    fn key_of(&self, p: &ObjPath) -> String {
        let s = p.as_ref();
        if self.root.is_empty() {
            s.to_string()
        } else {
            s.strip_prefix(&self.root)
                .map(|k| k.trim_start_matches('/').to_string())
                .unwrap_or_else(|| s.to_string())
        }
    }

    /// Writes one object whole (a PUT, or a rename of a finished temporary file locally:
    /// a reader never sees half of it).
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        self.inner
            .put(&self.path(key)?, PutPayload::from_bytes(bytes))
            .await?;
        Ok(())
    }

    /// Writes the file at `path` as one object: whole when it fits in a part, else as a
    /// multipart upload (8 MiB parts remotely, 256 KiB locally), so memory stays at one
    /// part whatever the size.
    pub async fn put_file(&self, key: &str, path: &Path) -> Result<(), StoreError> {
        let f = std::fs::File::open(path).map_err(spool_io)?;
        let size = f.metadata().map_err(spool_io)?.len();
        self.put_stream(key, f, size).await.map(|_| ())
    }

    /// Stores up to `len` bytes read from `src` (from where it stands) as one object,
    /// holding at most one part in memory: one PUT when they fit in a part, else a
    /// multipart upload (aborted on error, so no half object is left). Returns the bytes
    /// stored; 0 (and nothing stored) when `src` had none.
    pub async fn put_stream(
        &self,
        key: &str,
        src: impl std::io::Read,
        len: u64,
    ) -> Result<u64, StoreError> {
        use std::io::Read;
        let mut src = src.take(len);
        let mut next = || -> Result<Vec<u8>, StoreError> {
            let mut buf = Vec::with_capacity(self.part.min(len as usize));
            (&mut src)
                .take(self.part as u64)
                .read_to_end(&mut buf)
                .map_err(spool_io)?;
            Ok(buf)
        };
        let first = next()?;
        let n = first.len() as u64;
        if n == 0 {
            return Ok(0);
        }
        if first.len() < self.part || n == len {
            self.put(key, Bytes::from(first)).await?;
            return Ok(n);
        }
        let mut up = self.inner.put_multipart(&self.path(key)?).await?;
        let mut total = 0u64;
        let mut buf = first;
        loop {
            total += buf.len() as u64;
            if let Err(e) = up.put_part(PutPayload::from(buf)).await {
                let _ = up.abort().await;
                return Err(e.into());
            }
            buf = match next() {
                Ok(b) if b.is_empty() => break,
                Ok(b) => b,
                Err(e) => {
                    let _ = up.abort().await;
                    return Err(e);
                }
            };
        }
        if let Err(e) = up.complete().await {
            let _ = up.abort().await;
            return Err(e.into());
        }
        Ok(total)
    }

    /// Reads one object of at most `limit` bytes.
    pub async fn get(&self, key: &str, limit: u64) -> Result<Bytes, StoreError> {
        let path = self.path(key)?;
        let r = match self.inner.get(&path).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StoreError::NotFound {
                    key: key.to_string(),
                })
            }
            Err(e) => return Err(e.into()),
        };
        if r.meta.size > limit {
            return Err(StoreError::TooLarge {
                key: key.to_string(),
                size: r.meta.size,
                limit,
            });
        }
        Ok(r.bytes().await?)
    }

    /// Deletes one object; a missing one is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self.inner.delete(&self.path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Keys (relative to the root) and sizes of every object under `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let p = self.path(prefix)?;
        let metas: Vec<_> = self.inner.list(Some(&p)).try_collect().await?;
        Ok(metas
            .into_iter()
            .map(|m| (self.key_of(&m.location), m.size))
            .collect())
    }

    /// Calls `f(key, size, last modified in Unix ms)` for every object under `prefix`, as
    /// the listing streams in: memory stays at one page of the listing whatever the count.
    pub async fn for_each_object(
        &self,
        prefix: &str,
        mut f: impl FnMut(String, u64, u64),
    ) -> Result<(), StoreError> {
        let p = self.path(prefix)?;
        let mut stream = self.inner.list(Some(&p));
        while let Some(m) = stream.try_next().await? {
            let ms = u64::try_from(m.last_modified.timestamp_millis()).unwrap_or(0);
            f(self.key_of(&m.location), m.size, ms);
        }
        Ok(())
    }

    /// The names of the "directories" right under `prefix` (one delimiter-listing
    /// request; objects under them are not enumerated).
    pub async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let p = self.path(prefix)?;
        let r = self.inner.list_with_delimiter(Some(&p)).await?;
        let mut out: Vec<String> = r
            .common_prefixes
            .iter()
            .filter_map(|c| c.filename().map(str::to_string))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Checks the store's layout version for a reader: absent (an empty store) or this
    /// build's is fine; another is refused by number.
    pub async fn ensure_readable(&self) -> Result<(), StoreError> {
        use crate::layout::{parse_layout_object, LAYOUT_OBJECT, LAYOUT_VERSION};
        match self.get(LAYOUT_OBJECT, 4096).await {
            Ok(b) => match parse_layout_object(&b) {
                Some(LAYOUT_VERSION) => Ok(()),
                Some(v) => Err(StoreError::UnknownLayout {
                    found: v.to_string(),
                }),
                None => Err(StoreError::UnknownLayout {
                    found: format!("unreadable ({} bytes)", b.len()),
                }),
            },
            Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Writes the layout object if the store has none; refuses a store of another layout.
    pub async fn ensure_layout(&self) -> Result<(), StoreError> {
        use crate::layout::{layout_object, parse_layout_object, LAYOUT_OBJECT, LAYOUT_VERSION};
        match self.get(LAYOUT_OBJECT, 4096).await {
            Ok(b) => match parse_layout_object(&b) {
                Some(LAYOUT_VERSION) => Ok(()),
                Some(v) => Err(StoreError::UnknownLayout {
                    found: v.to_string(),
                }),
                None => Err(StoreError::UnknownLayout {
                    found: format!("unreadable ({} bytes)", b.len()),
                }),
            },
            Err(StoreError::NotFound { .. }) => {
                self.put(LAYOUT_OBJECT, Bytes::from(layout_object())).await
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_secrets_refused() {
        for u in [
            "s3://AKIA:secret@bucket/x",
            "s3://bucket/x?access_key_id=AKIA",
            "gs://user@bucket/x",
            "ftp://host/x",
            "",
        ] {
            let e = Store::open(u, &[]).unwrap_err().to_string();
            assert!(e.starts_with("store URL"), "{u}: {e}");
            assert!(!e.contains("secret") && !e.contains("AKIA"), "{e}");
        }
    }

    #[test]
    fn credentials_file_lines() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c");
        std::fs::write(
            &p,
            "# mounted\nAWS_ACCESS_KEY_ID=a\n\nAWS_SECRET_ACCESS_KEY = b=c\n",
        )
        .unwrap();
        assert_eq!(
            read_credentials(&p).unwrap(),
            vec![
                ("AWS_ACCESS_KEY_ID".into(), "a".into()),
                ("AWS_SECRET_ACCESS_KEY".into(), "b=c".into())
            ]
        );
        std::fs::write(&p, "AWS_ACCESS_KEY_ID=a\nnot a line\n").unwrap();
        assert_eq!(
            read_credentials(&p).unwrap_err().to_string(),
            format!("credentials file {}:2: expected KEY=value", p.display())
        );
    }

    #[tokio::test]
    async fn local_round_trip_and_layout() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path().to_str().unwrap(), &[]).unwrap();
        s.ensure_layout().await.unwrap();
        s.put("v1/a/b", Bytes::from_static(b"hi")).await.unwrap();
        assert_eq!(&s.get("v1/a/b", 10).await.unwrap()[..], b"hi");
        assert!(matches!(
            s.get("v1/a/b", 1).await,
            Err(StoreError::TooLarge { .. })
        ));
        assert!(matches!(
            s.get("v1/zz", 1).await,
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(s.list("v1").await.unwrap(), vec![("v1/a/b".to_string(), 2)]);
        // A file over one part goes up in parts and comes back whole.
        let big: Vec<u8> = (0..(20 << 20)).map(|i| (i % 251) as u8).collect();
        std::fs::write(d.path().join("big.src"), &big).unwrap();
        s.put_file("v1/big", &d.path().join("big.src"))
            .await
            .unwrap();
        assert!(s.get("v1/big", 64 << 20).await.unwrap() == big);
        std::fs::remove_file(d.path().join("big.src")).unwrap();
        s.delete("v1/big").await.unwrap();
        // A range of a reader: exactly `len` bytes from where it stands, in parts when over
        // one (256 KiB locally), fewer when the source ends first, nothing for none.
        let src = &big[..(1 << 20) + 3];
        let n = s
            .put_stream("v1/range", std::io::Cursor::new(&src[5..]), 700_000)
            .await
            .unwrap();
        assert_eq!(n, 700_000);
        assert!(s.get("v1/range", 1 << 20).await.unwrap() == src[5..700_005]);
        let n = s
            .put_stream("v1/short", std::io::Cursor::new(&src[..600_000]), 1 << 30)
            .await
            .unwrap();
        assert_eq!(n, 600_000);
        assert!(s.get("v1/short", 1 << 20).await.unwrap() == src[..600_000]);
        let n = s.put_stream("v1/small", &src[..10], 10).await.unwrap();
        assert_eq!(
            (n, &s.get("v1/small", 10).await.unwrap()[..]),
            (10, &src[..10])
        );
        assert_eq!(s.put_stream("v1/none", &b""[..], 10).await.unwrap(), 0);
        assert!(matches!(
            s.get("v1/none", 1).await,
            Err(StoreError::NotFound { .. })
        ));
        for k in ["v1/range", "v1/short", "v1/small"] {
            s.delete(k).await.unwrap();
        }
        std::fs::write(d.path().join("rayward-history.json"), "{\"layout\":2}").unwrap();
        assert_eq!(
            s.ensure_layout().await.unwrap_err().to_string(),
            "the store holds layout version 2; this rayward reads version 1"
        );
    }
}
