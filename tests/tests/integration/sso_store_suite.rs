//! SAML SSO's store parts on both backends: `embedded::…` on SQLite in a temp dir,
//! `dynamodb::…` on DynamoDB Local (started by tests/run.sh).

identity_tests::on_both_backends!(
    sso_suite:
    idp_registry_by_id_domain_and_entity,
    jit_account_is_pending_until_the_welcome_link,
    welcome_link_expires,
    replayed_assertion_is_refused_once_under_concurrency,
    sp_initiated_request_is_consumed_with_the_login,
    account_without_password_comes_under_sso_at_once,
    password_account_upgrade_confirmed_revokes_its_grants,
    password_account_upgrade_declined_stays_off_sso,
    account_under_another_idp_is_refused_and_nothing_written,
    removing_an_idp_releases_its_accounts_and_revokes_their_grants_and_keys,
    password_reset_link_works_once_and_only_off_sso,
    unregistered_account_is_linked_only_through_the_emailed_link,
    idp_never_takes_over_an_account_outside_its_domains,
    domain_ownership_is_exact_and_single,
    an_idp_without_a_team_gives_no_role_even_on_a_team_of_its_name,
    the_team_role_is_written_with_the_login_itself,
    a_re_registered_idp_id_inherits_no_accounts,
    idp_sso_urls_follow_registration_and_removal,
    password_reset_ends_every_session_and_revokes_grants,
    moving_to_sso_ends_the_password_sessions,
    password_reset_messages_are_limited_per_address,
    sso_link_messages_are_limited_per_address,
    every_move_to_sso_revokes_the_accounts_grants,
);
