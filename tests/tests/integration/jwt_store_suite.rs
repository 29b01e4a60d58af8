//! The JWT bearer grant's store parts on both backends: `embedded::…` on SQLite in a temp
//! dir, `dynamodb::…` on DynamoDB Local (started by tests/run.sh).

identity_tests::on_both_backends!(
    jwt_suite:
    jwt_client_round_trip,
    certificate_rotation_keeps_both_keys_until_one_is_removed,
    concurrent_changes_to_a_client_all_land,
    jwt_grant_issues_a_token_and_records_it,
    jti_is_accepted_once_by_20_racers,
    deauthorized_user_is_refused_at_once,
    login_history_is_newest_first_filtered_and_kept_90_days,
    named_authorizations_by_name_and_alias,
    deauthorizing_the_user_or_removing_a_certificate_makes_jwt_grant_tokens_inactive,
    a_blocked_user_gets_no_jwt_grant_token_and_its_tokens_go_inactive,
    unverified_attempts_are_week_long_samples_outside_the_client_and_user_views,
    jwt_grant_failures_lock_their_address_prefix_and_other_prefixes_go_on,
);
