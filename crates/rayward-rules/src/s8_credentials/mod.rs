//! Guide §8: no plaintext cloud credentials.

mod plaintext_cloud_credentials;

use crate::Rule;

pub(crate) const RULES: &[&dyn Rule] = &[&plaintext_cloud_credentials::PlaintextCloudCredentials];
