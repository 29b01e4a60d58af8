//! template.yaml declares exactly the tables of shared/src/store/schema.rs, each with the
//! same key schema, TTL on `expires_at` and on-demand billing.

use identity_shared::store::Table;

/// The lines of one resource: from `  ID:` to the next line indented by exactly two spaces.
fn table_block(template: &str, logical_id: &str) -> String {
    let header = format!("  {logical_id}:");
    let mut lines = template.lines().skip_while(|l| *l != header);
    assert!(
        lines.next().is_some(),
        "{logical_id} missing from template.yaml"
    );
    lines
        .take_while(|l| !l.starts_with("  ") || l.starts_with("   "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn template_tables_match_the_schema() {
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    assert_eq!(
        template.matches("Type: AWS::DynamoDB::Table").count(),
        Table::ALL.len(),
        "one template table per schema table"
    );
    for table in Table::ALL {
        let block = table_block(&template, table.logical_id());
        assert!(block.contains("Type: AWS::DynamoDB::Table"), "{block}");
        assert!(
            block.contains(&format!(
                "TableName: !Sub \"${{TablePrefix}}{}\"",
                table.name()
            )),
            "{block}"
        );
        assert!(block.contains("BillingMode: PAY_PER_REQUEST"), "{block}");
        assert!(
            block.contains(
                "{AttributeName: pk, KeyType: HASH}, {AttributeName: sk, KeyType: RANGE}"
            ),
            "{block}"
        );
        assert!(
            block.contains("TimeToLiveSpecification: {AttributeName: expires_at, Enabled: true}"),
            "{block}"
        );
    }
}

/// The tables that hold what people care about (accounts, apps, OAuth, JWT clients, the
/// login history and the "log in as" audit log, the embedded keys) stay when the stack is
/// deleted or a table replaced; all but the keys also have point-in-time recovery. Sessions
/// and single-use values may go.
#[test]
fn tables_people_care_about_are_retained_and_recoverable() {
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    for table in Table::ALL {
        let block = table_block(&template, table.logical_id());
        let kept = !matches!(table, Table::Sessions | Table::Once);
        let policy = if kept { "Retain" } else { "Delete" };
        assert!(
            block.contains(&format!("DeletionPolicy: {policy}"))
                && block.contains(&format!("UpdateReplacePolicy: {policy}")),
            "{}: {policy}\n{block}",
            table.logical_id()
        );
        if kept && table != Table::Keys {
            assert!(
                block.contains(
                    "PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: true}"
                ),
                "{}: point-in-time recovery\n{block}",
                table.logical_id()
            );
        }
    }
}
