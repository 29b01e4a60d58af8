//! Every integration test of `identity-tests` in one binary (one link of the AWS SDK and
//! the static XML libraries instead of one per file). Each module is a former test file;
//! `lambda_state.rs` stays on its own because it sets process environment.

mod addon_sso_routes;
mod addon_store_suite;
mod bootstrap_link;
mod crate_graph;
mod faults_dynamodb;
mod faults_oauth;
mod faults_routes;
mod faults_store;
mod jwt_grant_routes;
mod jwt_log_redaction;
mod jwt_store_suite;
mod lambda_runtime_e2e;
mod log_redaction;
mod mail_ses;
mod oauth_authorize;
mod oauth_common;
mod oauth_device;
mod oauth_flow;
mod oauth_log_redaction;
mod oauth_store_suite;
mod oauth_token;
mod org_routes;
mod org_store_suite;
mod saml_validate;
mod sdk_budget;
mod secrets_manager;
mod secrets_outage;
mod secrets_rotation;
mod session_routes;
mod sso_routes;
mod sso_store_suite;
mod store_suite;
mod template_operations;
mod template_routes;
mod template_schema;
