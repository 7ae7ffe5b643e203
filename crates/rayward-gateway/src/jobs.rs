//! Job ownership, which Ray does not record (ray#35367): the gateway writes the
//! authenticated principal into every submitted job's `metadata`
//! (`rayward.io/submitted-by`, overwriting whatever the client sent), so `ray job list`
//! and the dashboard show who submitted each job; under the `own-jobs` policy a
//! submitter may stop or delete only the jobs whose metadata names them (the gateway asks
//! Ray for the job first), admins any job, and unstamped jobs are admin-only.

use http::Method;
use serde::Deserialize;

/// The metadata key naming the submitter (a principal: `htpasswd:alice`, `k8s:…`).
pub const SUBMITTED_BY: &str = "rayward.io/submitted-by";
/// The submitter's groups (Kubernetes), comma-separated, when `jobs.stamp_groups` is on.
pub const SUBMITTED_BY_GROUPS: &str = "rayward.io/submitted-by-groups";
/// Largest job description read back from Ray to find the owner.
pub const MAX_JOB_INFO: usize = 256 * 1024;

/// Who may stop or delete a job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Anyone whose role allows write routes (the behaviour before ownership).
    #[default]
    Any,
    /// Submitters their own jobs only; admins any job.
    OwnJobs,
}

/// `[jobs]` in the gateway's config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    #[serde(default)]
    pub policy: Policy,
    /// Also stamp the submitter's groups.
    #[serde(default)]
    pub stamp_groups: bool,
}

/// Why a submission body could not be stamped (Ray would refuse it too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StampError {
    #[error("job submission is not a JSON object")]
    NotAnObject,
    #[error("job submission metadata is not a JSON object")]
    MetadataNotAnObject,
}

/// The submission body with `metadata` naming `principal` (and `groups`), replacing any
/// value the client sent for these keys; other metadata is kept.
pub fn stamp(
    body: &[u8],
    principal: &str,
    groups: Option<&[String]>,
) -> Result<Vec<u8>, StampError> {
    let mut v: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| StampError::NotAnObject)?;
    let obj = v.as_object_mut().ok_or(StampError::NotAnObject)?;
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| serde_json::Value::Object(Default::default()));
    if meta.is_null() {
        *meta = serde_json::Value::Object(Default::default());
    }
    let meta = meta
        .as_object_mut()
        .ok_or(StampError::MetadataNotAnObject)?;
    meta.insert(SUBMITTED_BY.into(), principal.into());
    meta.remove(SUBMITTED_BY_GROUPS);
    if let Some(g) = groups {
        meta.insert(SUBMITTED_BY_GROUPS.into(), g.join(",").into());
    }
    Ok(serde_json::to_vec(&v).expect("a JSON value serialises"))
}

/// The job a stop or delete request names (`POST /api/jobs/{id}/stop`,
/// `DELETE /api/jobs/{id}`) in a normalised path.
pub fn target(method: &Method, path: &str) -> Option<String> {
    let rest = path.strip_prefix("/api/jobs/")?;
    let id = if *method == Method::POST {
        rest.strip_suffix("/stop")?
    } else if *method == Method::DELETE {
        rest
    } else {
        return None;
    };
    (!id.is_empty() && !id.contains('/')).then(|| id.to_string())
}

/// The submitter named in a job description from Ray (`GET /api/jobs/{id}`).
pub fn owner_of(job: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(job).ok()?;
    v.get("metadata")?
        .get(SUBMITTED_BY)?
        .as_str()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(body: &[u8]) -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(body).unwrap()["metadata"].clone()
    }

    #[test]
    fn stamps_and_overwrites_what_the_client_sent() {
        let b = stamp(br#"{"entrypoint":"x"}"#, "htpasswd:alice", None).unwrap();
        assert_eq!(
            meta(&b),
            serde_json::json!({SUBMITTED_BY: "htpasswd:alice"})
        );
        let b = stamp(
            br#"{"entrypoint":"x","metadata":{"rayward.io/submitted-by":"htpasswd:bob","rayward.io/submitted-by-groups":"admins","team":"a"}}"#,
            "htpasswd:alice",
            None,
        )
        .unwrap();
        assert_eq!(
            meta(&b),
            serde_json::json!({SUBMITTED_BY: "htpasswd:alice", "team": "a"})
        );
        let groups = vec!["g1".to_string(), "system:authenticated".to_string()];
        let b = stamp(br#"{"metadata":null}"#, "k8s:u", Some(&groups)).unwrap();
        assert_eq!(
            meta(&b),
            serde_json::json!({SUBMITTED_BY: "k8s:u", SUBMITTED_BY_GROUPS: "g1,system:authenticated"})
        );
        // The entrypoint and everything else stay.
        let v: serde_json::Value = serde_json::from_slice(
            &stamp(
                br#"{"entrypoint":"python t.py","runtime_env":{"pip":["a"]}}"#,
                "p",
                None,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(v["entrypoint"], "python t.py");
        assert_eq!(v["runtime_env"]["pip"][0], "a");
    }

    #[test]
    fn bodies_that_are_no_submission_are_refused() {
        assert_eq!(stamp(b"[]", "p", None), Err(StampError::NotAnObject));
        assert_eq!(stamp(b"not json", "p", None), Err(StampError::NotAnObject));
        assert_eq!(
            stamp(br#"{"metadata":"x"}"#, "p", None),
            Err(StampError::MetadataNotAnObject)
        );
        assert_eq!(
            stamp(br#"{"metadata":["x"]}"#, "p", None),
            Err(StampError::MetadataNotAnObject)
        );
    }

    #[test]
    fn targets_and_owners() {
        assert_eq!(
            target(&Method::POST, "/api/jobs/raysubmit_1/stop"),
            Some("raysubmit_1".into())
        );
        assert_eq!(target(&Method::DELETE, "/api/jobs/j-2"), Some("j-2".into()));
        assert_eq!(target(&Method::POST, "/api/jobs/"), None);
        assert_eq!(target(&Method::GET, "/api/jobs/j"), None);
        assert_eq!(target(&Method::DELETE, "/api/jobs/"), None);
        assert_eq!(
            owner_of(br#"{"metadata":{"rayward.io/submitted-by":"htpasswd:a"}}"#),
            Some("htpasswd:a".into())
        );
        assert_eq!(owner_of(br#"{"metadata":{}}"#), None);
        assert_eq!(owner_of(br#"{"metadata":null}"#), None);
        assert_eq!(
            owner_of(br#"{"metadata":{"rayward.io/submitted-by":7}}"#),
            None
        );
        assert_eq!(owner_of(b"garbage"), None);
    }
}
