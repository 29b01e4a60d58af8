//! template.yaml declares exactly the tables of shared/src/store/schema.rs, each with the
//! same key schema, TTL on `expires_at` and on-demand billing (what is retained and
//! protected: template_operations.rs).

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
