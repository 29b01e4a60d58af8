//! Add-on SSO's store parts on both backends: `embedded::…` on SQLite in a temp dir,
//! `dynamodb::…` on DynamoDB Local (started by tests/run.sh). The SSO page and the partner
//! API run through addon-sso's router on each backend.

identity_tests::on_both_backends!(
    addon_suite:
    addon_provisioning_round_trip,
    every_role_gets_the_form_and_a_stranger_gets_403,
    removed_provisioner_loses_access_and_role_changes_apply_at_once,
    sso_form_passes_the_partner_verifier_once,
    verifier_refuses_bad_old_future_and_replayed_requests,
    a_request_is_accepted_once_by_20_racers,
    partner_api_refuses_wrong_credentials_and_foreign_apps,
    partner_api_answers_every_role_with_federation,
);
