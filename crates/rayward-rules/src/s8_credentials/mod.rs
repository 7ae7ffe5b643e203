//! Guide §8: no plaintext cloud credentials, and nothing that could hold them unchecked.

mod embedded_document_unreadable;
mod history_store_insecure;
mod plaintext_cloud_credentials;

use crate::Rule;

pub(crate) const RULES: &[&dyn Rule] = &[
    &plaintext_cloud_credentials::PlaintextCloudCredentials,
    &embedded_document_unreadable::EmbeddedDocumentUnreadable,
    &history_store_insecure::HistoryStoreInsecure,
];
