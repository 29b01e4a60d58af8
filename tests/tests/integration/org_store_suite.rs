//! Teams and enterprise accounts on both backends: `embedded::…` on SQLite in a temp dir,
//! `dynamodb::…` on DynamoDB Local (started by tests/run.sh).

identity_tests::on_both_backends!(
    org_suite:
    teams_and_their_members_round_trip,
    team_admins_and_members_reach_its_apps_collaborators_only_theirs,
    enterprise_accounts_keep_their_members_permissions,
    an_organisation_blocks_its_own_sso_member_and_lifts_only_its_own_block,
    the_audit_log_is_newest_first_and_a_log_in_as_link_works_once_with_its_code,
);
