//! Teams and enterprise accounts on both backends: `embedded::…` on SQLite in a temp dir,
//! `dynamodb::…` on DynamoDB Local (started by tests/run.sh).

identity_tests::on_both_backends!(
    org_suite:
    teams_and_their_members_round_trip,
    team_admins_and_members_reach_its_apps_collaborators_only_theirs,
    enterprise_accounts_keep_their_members_permissions,
);
