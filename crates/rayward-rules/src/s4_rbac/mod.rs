//! Guide §4: service accounts and RBAC.

mod default_service_account;
mod ray_rbac_too_broad;
mod ray_service_account_can;
mod service_account_token_mounted;

use crate::Rule;

pub(crate) const RULES: &[&dyn Rule] = &[
    &default_service_account::DefaultServiceAccount,
    &service_account_token_mounted::ServiceAccountTokenMounted,
    &ray_rbac_too_broad::RayRbacTooBroad,
    &ray_service_account_can::RayServiceAccountCan,
];
