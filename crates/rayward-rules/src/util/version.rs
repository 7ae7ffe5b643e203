//! Ray versions: parsed from `rayVersion` and from image tags.

use rayward_manifest::Workload;
use std::fmt;

/// A `major.minor.patch` version; missing parts are 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// Parses `2.52.0`, `2.52`, `v2.9.3`; ignores a suffix after the numbers
    /// (`2.9.0rc1`, `2.46.0-py311-gpu`).
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim().trim_start_matches('v');
        let mut nums = [0u32; 3];
        let mut seen = 0;
        for (i, part) in s.split('.').take(3).enumerate() {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() {
                break;
            }
            nums[i] = digits.parse().ok()?;
            seen = i + 1;
            if digits.len() != part.len() {
                break;
            }
        }
        (seen >= 2).then_some(Version(nums[0], nums[1], nums[2]))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// The Ray version in an image reference, when it is a Ray image with a version tag
/// (`rayproject/ray:2.46.0-py310`, `rayproject/ray-ml:2.9.0-gpu`, `…/ray:2.41.0`).
pub fn from_image(image: &str) -> Option<Version> {
    let r = super::image::ImageRef::parse(image);
    let last = r.repository.rsplit('/').next().unwrap_or("");
    if !(last == "ray" || last.starts_with("ray-") || last.starts_with("ray_")) {
        return None;
    }
    Version::parse(r.tag?)
}

/// Where a cluster's Ray version came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionSource {
    RayVersion,
    Image(String),
}

/// The Ray version a cluster runs: the Ray container image's tag when it names one (that is
/// what really runs), else `rayVersion`.
pub fn cluster_version(w: &Workload<'_>, cluster: usize) -> Option<(Version, VersionSource)> {
    if let Some(head) = w.head_of(cluster) {
        if let Some(img) = head
            .containers()
            .iter()
            .find(|c| c.is_ray())
            .and_then(|c| c.image())
        {
            if let Some(v) = from_image(img) {
                return Some((v, VersionSource::Image(img.to_string())));
            }
        }
    }
    let v = Version::parse(w.clusters.get(cluster)?.ray_version()?)?;
    Some((v, VersionSource::RayVersion))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions_and_images() {
        assert_eq!(Version::parse("2.52.0"), Some(Version(2, 52, 0)));
        assert_eq!(Version::parse("2.9"), Some(Version(2, 9, 0)));
        assert_eq!(Version::parse("2.9.0rc1"), Some(Version(2, 9, 0)));
        assert_eq!(Version::parse("nightly"), None);
        assert_eq!(
            from_image("rayproject/ray:2.46.0-py310-gpu"),
            Some(Version(2, 46, 0))
        );
        assert_eq!(
            from_image("docker.io/rayproject/ray-ml:2.9.0"),
            Some(Version(2, 9, 0))
        );
        assert_eq!(from_image("rayproject/ray:nightly"), None);
        assert_eq!(from_image("busybox:1.28"), None);
        assert!(Version(2, 9, 3) < Version(2, 10, 0));
    }
}
