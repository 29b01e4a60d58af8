//! The OAuth store suite on both backends: `embedded::…` on SQLite in a temp dir,
//! `dynamodb::…` on DynamoDB Local (started by tests/run.sh).

identity_tests::on_both_backends!(
    oauth_suite:
    client_secret_is_stored_only_as_a_hash,
    grant_is_one_per_account_and_client_and_widens,
    concurrent_first_authorizations_make_one_grant,
    revoked_grant_is_dead_and_the_next_authorization_makes_a_new_one,
    code_is_taken_once_by_200_racers,
    code_reuse_revokes_its_grant,
    code_reuse_by_another_client_revokes_nothing,
    expired_unredeemed_code_is_invalid_and_revokes_nothing,
    refresh_rotation_has_one_winner_among_200_racers_and_reuse_revokes,
    refresh_retry_within_grace_is_refused_and_keeps_the_grant,
    refresh_reuse_within_grace_after_the_successor_was_used_revokes,
    refresh_reuse_after_grace_revokes_the_grant,
    refresh_token_is_bound_to_its_client_scope_and_lifetime,
    revoked_jti_is_remembered_until_the_token_expires,
    code_exchange_through_the_router_has_one_success_among_200,
    refresh_through_the_router_has_one_success_among_200,
    device_code_yields_tokens_to_one_of_20_pollers,
    api_keys_are_hashed_and_end_with_revocation_expiry_their_login_or_the_epoch,
    the_cli_client_is_registered_once,
);
