//! The AdmissionReview v1 wire format, only the fields rayward reads or writes.
//!
//! Own serde structs rather than `k8s-openapi`/`kube-core`: the handler needs a dozen
//! fields, and keeping `object` as raw JSON ([`RawValue`]) lets it go straight to the
//! audit loader without a typed round trip (and without compiling every Kubernetes type).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub const API_VERSION: &str = "admission.k8s.io/v1";

/// What the API server sends.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReview {
    pub api_version: String,
    pub kind: String,
    pub request: Option<Request>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub uid: String,
    pub kind: GroupVersionKind,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    pub operation: String,
    #[serde(default)]
    pub object: Option<Box<RawValue>>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    pub kind: String,
}

/// What rayward answers.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewOut {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub response: Response,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
    /// Base64 of the JSONPatch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub code: u16,
    pub message: String,
}

impl ReviewOut {
    pub fn new(response: Response) -> ReviewOut {
        ReviewOut {
            api_version: API_VERSION,
            kind: "AdmissionReview",
            response,
        }
    }
}

/// Why a request body is not an AdmissionReview the handler can answer (HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("not an AdmissionReview: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "unsupported AdmissionReview `{api_version}` `{kind}` (rayward speaks admission.k8s.io/v1)"
    )]
    Version { api_version: String, kind: String },
    #[error("AdmissionReview without `request`")]
    NoRequest,
    #[error("AdmissionReview request without `uid`")]
    NoUid,
}

/// Parses a request body.
pub fn parse(body: &[u8]) -> Result<Request, ReviewError> {
    let review: AdmissionReview = serde_json::from_slice(body)?;
    if review.api_version != API_VERSION || review.kind != "AdmissionReview" {
        return Err(ReviewError::Version {
            api_version: review.api_version,
            kind: review.kind,
        });
    }
    let req = review.request.ok_or(ReviewError::NoRequest)?;
    if req.uid.is_empty() {
        return Err(ReviewError::NoUid);
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_review_and_keeps_the_object_raw() {
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
          "request":{"uid":"u1","kind":{"group":"ray.io","version":"v1","kind":"RayCluster"},
          "namespace":"ns","operation":"CREATE","object":{"kind":"RayCluster","spec":{}},
          "userInfo":{"username":"x"}}}"#;
        let r = parse(body).unwrap();
        assert_eq!(r.uid, "u1");
        assert_eq!(r.kind.kind, "RayCluster");
        assert_eq!(r.namespace.as_deref(), Some("ns"));
        assert_eq!(
            r.object.unwrap().get(),
            r#"{"kind":"RayCluster","spec":{}}"#
        );
    }

    #[test]
    fn refuses_other_versions_and_missing_parts() {
        let v1beta1 = br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"operation":"CREATE"}}"#;
        assert!(matches!(parse(v1beta1), Err(ReviewError::Version { .. })));
        let none = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#;
        assert!(matches!(parse(none), Err(ReviewError::NoRequest)));
        let no_uid = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"","kind":{"kind":"Pod"},"operation":"CREATE"}}"#;
        assert!(matches!(parse(no_uid), Err(ReviewError::NoUid)));
        assert!(matches!(parse(b"\xff{"), Err(ReviewError::Json(_))));
    }
}
