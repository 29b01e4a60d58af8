//! The store suite on both backends: `embedded::…` on SQLite in a temp dir, `dynamodb::…`
//! on DynamoDB Local (started by tests/run.sh).

identity_tests::on_both_backends!(
    suite:
    put_get_round_trip,
    expired_record_is_absent_everywhere,
    record_expires_with_the_clock,
    conditional_put_refuses_live_duplicate,
    version_condition_allows_one_update,
    multi_op_write_is_all_or_nothing,
    query_returns_live_records_under_prefix_in_order,
    single_use_value_is_taken_once_by_200_racers,
    mark_used_succeeds_once_for_200_racers,
    single_use_holds_across_two_handles,
    expired_single_use_value_cannot_be_taken,
    account_email_is_unique_whatever_its_case,
    concurrent_account_creation_makes_one_account,
    account_password_and_stale_update,
    session_lives_until_its_absolute_expiry,
    an_idps_logout_ends_the_sessions_it_names_and_no_other,
    app_roles_are_read_at_once,
    app_ownership_transfer_keeps_previous_owner_as_admin,
    embedded_keys_are_shared_and_rotate,
    counter_counts_every_racer_exactly_once,
    an_expired_counter_starts_again_and_a_live_one_keeps_its_expiry,
    newest_page_is_bounded_and_newest_first_skipping_expired,
    a_subject_is_locked_at_its_limit_and_the_next_lock_lasts_twice_as_long,
    an_address_lock_covers_every_subject_and_the_total_locks_everyone,
    a_lifted_subject_lock_comes_back_after_another_limit_of_failures,
    a_count_at_its_limit_refuses_before_its_lock_is_written,
    blocking_ends_sessions_revokes_grants_and_unblocking_lets_in_again,
);
