//! Container image references: registry, repository, tag, digest.

/// A parsed image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// The registry host; `docker.io` when none is given.
    pub registry: &'a str,
    /// The repository path without registry (`rayproject/ray`).
    pub repository: &'a str,
    pub tag: Option<&'a str>,
    /// `sha256:…` when pinned by digest.
    pub digest: Option<&'a str>,
}

impl<'a> ImageRef<'a> {
    /// Parses like Docker's reference grammar: the first component is a registry when it
    /// has a `.` or `:` or is `localhost`.
    pub fn parse(image: &'a str) -> ImageRef<'a> {
        let (rest, digest) = match image.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (image, None),
        };
        let (registry, path) = match rest.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first, path)
            }
            _ => ("docker.io", rest),
        };
        let last_slash = path.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match path[last_slash..].rfind(':') {
            Some(i) => (&path[..last_slash + i], Some(&path[last_slash + i + 1..])),
            None => (path, None),
        };
        ImageRef {
            registry,
            repository,
            tag,
            digest,
        }
    }

    /// `registry/repository`, the name an allowlist is matched against.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let r = ImageRef::parse("rayproject/ray:2.9.0");
        assert_eq!(
            (r.registry, r.repository, r.tag, r.digest),
            ("docker.io", "rayproject/ray", Some("2.9.0"), None)
        );
        let r = ImageRef::parse("localhost:5000/ray/ray@sha256:abc");
        assert_eq!(
            (r.registry, r.repository, r.tag, r.digest),
            ("localhost:5000", "ray/ray", None, Some("sha256:abc"))
        );
        let r = ImageRef::parse("registry.cn-hangzhou.aliyuncs.com/ray/ray:2.9.0-py39@sha256:0f");
        assert_eq!(
            (r.registry, r.repository, r.tag),
            (
                "registry.cn-hangzhou.aliyuncs.com",
                "ray/ray",
                Some("2.9.0-py39")
            )
        );
        let r = ImageRef::parse("busybox");
        assert_eq!(
            (r.registry, r.repository, r.tag),
            ("docker.io", "busybox", None)
        );
    }
}
