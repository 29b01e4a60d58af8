//! The DynamoDB backend. Conditions are DynamoDB condition expressions that treat an
//! expired item as absent (TTL deletion is lazy); reads are strongly consistent and drop
//! expired items; a multi-operation write is one `TransactWriteItems`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, KeySchemaElement,
    KeyType, Put, ReturnValue, ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem,
};

use super::schema::{BODY, EXPIRES_AT, PK, SK, VERSION};
use super::{Backend, Cond, Item, Key, Op, StoreError, Table};

#[derive(Clone)]
pub struct DynamoDb {
    client: Client,
    prefix: String,
}

fn unavailable<E: ProvideErrorMetadata>(what: &str, e: &E) -> StoreError {
    // Code and message only: never the request, which may carry record bodies.
    StoreError::Unavailable(format!(
        "dynamodb {what}: {} {}",
        e.code().unwrap_or("error"),
        e.message().unwrap_or("")
    ))
}

fn sdk_unavailable<E: ProvideErrorMetadata, R>(what: &str, e: &SdkError<E, R>) -> StoreError {
    match e {
        SdkError::ServiceError(se) => unavailable(what, se.err()),
        other => StoreError::Unavailable(format!("dynamodb {what}: {}", sdk_kind(other))),
    }
}

fn sdk_kind<E, R>(e: &SdkError<E, R>) -> &'static str {
    match e {
        SdkError::ConstructionFailure(_) => "request construction failed",
        SdkError::TimeoutError(_) => "timeout",
        SdkError::DispatchFailure(_) => "could not reach the endpoint",
        SdkError::ResponseError(_) => "unreadable response",
        SdkError::ServiceError(_) => "service error",
        _ => "error",
    }
}

/// A condition expression for `cond`, with the names and values it uses.
struct Expr {
    text: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

fn condition(cond: Cond, now: i64) -> Option<Expr> {
    let names: HashMap<String, String> = [("#pk", PK), ("#exp", EXPIRES_AT), ("#ver", VERSION)]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let mut values = HashMap::from([(":now".to_string(), AttributeValue::N(now.to_string()))]);
    let live = "attribute_exists(#pk) AND (attribute_not_exists(#exp) OR #exp > :now)";
    let text = match cond {
        Cond::Always => return None,
        Cond::Absent => "attribute_not_exists(#pk) OR #exp <= :now".to_string(),
        Cond::Live => live.to_string(),
        Cond::Version(v) => {
            values.insert(":ver".into(), AttributeValue::N(v.to_string()));
            format!("{live} AND #ver = :ver")
        }
    };
    // DynamoDB refuses names an expression does not use.
    let names = names
        .into_iter()
        .filter(|(k, _)| text.contains(k.as_str()))
        .collect();
    Some(Expr {
        text,
        names,
        values,
    })
}

fn key(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_string(), AttributeValue::S(pk.into())),
        (SK.to_string(), AttributeValue::S(sk.into())),
    ])
}

fn to_attrs(item: &Item) -> HashMap<String, AttributeValue> {
    let mut m = key(&item.pk, &item.sk);
    m.insert(BODY.into(), AttributeValue::S(item.body.clone()));
    m.insert(VERSION.into(), AttributeValue::N(item.version.to_string()));
    if let Some(e) = item.expires_at {
        m.insert(EXPIRES_AT.into(), AttributeValue::N(e.to_string()));
    }
    m
}

fn from_attrs(m: &HashMap<String, AttributeValue>) -> Result<Item, StoreError> {
    let s = |k: &str| m.get(k).and_then(|v| v.as_s().ok()).cloned();
    let n = |k: &str| {
        m.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    Ok(Item {
        pk: s(PK).ok_or_else(|| StoreError::Corrupt("item without pk".into()))?,
        sk: s(SK).ok_or_else(|| StoreError::Corrupt("item without sk".into()))?,
        body: s(BODY).ok_or_else(|| StoreError::Corrupt("item without body".into()))?,
        expires_at: n(EXPIRES_AT),
        version: n(VERSION).unwrap_or(1),
    })
}

impl DynamoDb {
    pub fn new(client: Client, prefix: String) -> Self {
        Self { client, prefix }
    }

    /// A client from the AWS SDK's usual environment (`AWS_ENDPOINT_URL`, region, …), with
    /// the service's timeouts and retries (`crate::aws`).
    pub async fn from_env(prefix: String) -> Self {
        Self::new(Client::new(&crate::aws::sdk_config().await), prefix)
    }

    pub fn table_name(&self, table: Table) -> String {
        format!("{}{}", self.prefix, table.name())
    }

    /// Creates every table of the schema (on-demand billing, TTL on `expires_at`).
    /// Tables that exist already are left as they are; TTL is switched on where it is off.
    pub async fn create_tables(&self) -> Result<Vec<String>, StoreError> {
        let mut created = Vec::new();
        for table in Table::ALL {
            let name = self.table_name(table);
            let result = self
                .client
                .create_table()
                .table_name(&name)
                .billing_mode(BillingMode::PayPerRequest)
                .attribute_definitions(attr_def(PK))
                .attribute_definitions(attr_def(SK))
                .key_schema(key_elem(PK, KeyType::Hash))
                .key_schema(key_elem(SK, KeyType::Range))
                .send()
                .await;
            match result {
                Ok(_) => created.push(name.clone()),
                Err(e)
                    if e.as_service_error()
                        .map(|s| s.is_resource_in_use_exception())
                        == Some(true) => {}
                Err(e) => return Err(sdk_unavailable("CreateTable", &e)),
            }
            self.wait_active(&name).await?;
            self.enable_ttl(&name).await?;
        }
        Ok(created)
    }

    async fn wait_active(&self, name: &str) -> Result<(), StoreError> {
        for _ in 0..120 {
            let d = self
                .client
                .describe_table()
                .table_name(name)
                .send()
                .await
                .map_err(|e| sdk_unavailable("DescribeTable", &e))?;
            if d.table()
                .and_then(|t| t.table_status())
                .map(|s| s.as_str() == "ACTIVE")
                == Some(true)
            {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        Err(StoreError::Unavailable(format!(
            "table {name} did not become ACTIVE"
        )))
    }

    async fn enable_ttl(&self, name: &str) -> Result<(), StoreError> {
        let d = self
            .client
            .describe_time_to_live()
            .table_name(name)
            .send()
            .await
            .map_err(|e| sdk_unavailable("DescribeTimeToLive", &e))?;
        let status = d
            .time_to_live_description()
            .and_then(|t| t.time_to_live_status())
            .map(|s| s.as_str().to_string());
        if matches!(status.as_deref(), Some("ENABLED" | "ENABLING")) {
            return Ok(());
        }
        let spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(EXPIRES_AT)
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        self.client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(|e| sdk_unavailable("UpdateTimeToLive", &e))?;
        Ok(())
    }

    /// The TTL attribute of a table, as DynamoDB reports it (for tests and `tables create`).
    pub async fn ttl_attribute(&self, table: Table) -> Result<Option<String>, StoreError> {
        let d = self
            .client
            .describe_time_to_live()
            .table_name(self.table_name(table))
            .send()
            .await
            .map_err(|e| sdk_unavailable("DescribeTimeToLive", &e))?;
        Ok(d.time_to_live_description()
            .filter(|t| t.time_to_live_status().map(|s| s.as_str() == "ENABLED") == Some(true))
            .and_then(|t| t.attribute_name().map(str::to_string)))
    }

    fn transact_item(&self, op: &Op, now: i64) -> Result<TransactWriteItem, StoreError> {
        let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Unavailable(e.to_string());
        Ok(match op {
            Op::Put { table, item, cond } => {
                let mut b = Put::builder()
                    .table_name(self.table_name(*table))
                    .set_item(Some(to_attrs(item)));
                if let Some(x) = condition(*cond, now) {
                    b = b
                        .condition_expression(x.text)
                        .set_expression_attribute_names(Some(x.names))
                        .set_expression_attribute_values(Some(x.values));
                }
                TransactWriteItem::builder()
                    .put(b.build().map_err(build)?)
                    .build()
            }
            Op::Delete {
                table,
                pk,
                sk,
                cond,
            } => {
                let mut b = Delete::builder()
                    .table_name(self.table_name(*table))
                    .set_key(Some(key(pk, sk)));
                if let Some(x) = condition(*cond, now) {
                    b = b
                        .condition_expression(x.text)
                        .set_expression_attribute_names(Some(x.names))
                        .set_expression_attribute_values(Some(x.values));
                }
                TransactWriteItem::builder()
                    .delete(b.build().map_err(build)?)
                    .build()
            }
            Op::Check {
                table,
                pk,
                sk,
                cond,
            } => {
                let x = condition(*cond, now)
                    .ok_or_else(|| StoreError::Unavailable("a check needs a condition".into()))?;
                let b = ConditionCheck::builder()
                    .table_name(self.table_name(*table))
                    .set_key(Some(key(pk, sk)))
                    .condition_expression(x.text)
                    .set_expression_attribute_names(Some(x.names))
                    .set_expression_attribute_values(Some(x.values));
                TransactWriteItem::builder()
                    .condition_check(b.build().map_err(build)?)
                    .build()
            }
        })
    }

    /// Live records of one partition in sort-key order (newest first when `limit` is
    /// given, stopping once `limit` live records are read).
    async fn query_pages(
        &self,
        table: Table,
        pk: &str,
        sk_prefix: &str,
        limit: Option<usize>,
        now: i64,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = limit.map(|l| l.saturating_sub(out.len()).clamp(1, 1000) as i32);
            let request = self
                .client
                .query()
                .table_name(self.table_name(table))
                .consistent_read(true)
                .scan_index_forward(limit.is_none())
                .set_limit(page)
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
                .set_exclusive_start_key(start.take());
            // DynamoDB refuses an empty string in a key condition: no prefix, no sort-key term.
            let request = if sk_prefix.is_empty() {
                request.key_condition_expression("#pk = :pk")
            } else {
                request
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":prefix", AttributeValue::S(sk_prefix.into()))
            };
            let r = request
                .send()
                .await
                .map_err(|e| sdk_unavailable("Query", &e))?;
            for m in r.items() {
                let item = from_attrs(m)?;
                if item.is_live(now) {
                    out.push(item);
                }
            }
            if limit.is_some_and(|l| out.len() >= l) {
                out.truncate(limit.unwrap_or(usize::MAX));
                return Ok(out);
            }
            match r.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(out),
            }
        }
    }

    async fn write_one(&self, op: &Op, now: i64) -> Result<(), StoreError> {
        match op {
            Op::Put { table, item, cond } => {
                let x = condition(*cond, now);
                let r = self
                    .client
                    .put_item()
                    .table_name(self.table_name(*table))
                    .set_item(Some(to_attrs(item)))
                    .set_condition_expression(x.as_ref().map(|x| x.text.clone()))
                    .set_expression_attribute_names(x.as_ref().map(|x| x.names.clone()))
                    .set_expression_attribute_values(x.map(|x| x.values))
                    .send()
                    .await;
                conditional("PutItem", r)
            }
            Op::Delete {
                table,
                pk,
                sk,
                cond,
            } => {
                let x = condition(*cond, now);
                let r = self
                    .client
                    .delete_item()
                    .table_name(self.table_name(*table))
                    .set_key(Some(key(pk, sk)))
                    .set_condition_expression(x.as_ref().map(|x| x.text.clone()))
                    .set_expression_attribute_names(x.as_ref().map(|x| x.names.clone()))
                    .set_expression_attribute_values(x.map(|x| x.values))
                    .send()
                    .await;
                conditional("DeleteItem", r)
            }
            Op::Check { .. } => self.transact(std::slice::from_ref(op), now).await,
        }
    }

    async fn transact(&self, ops: &[Op], now: i64) -> Result<(), StoreError> {
        let items = ops
            .iter()
            .map(|op| self.transact_item(op, now))
            .collect::<Result<Vec<_>, _>>()?;
        // A concurrent transaction on the same items cancels ours with TransactionConflict;
        // try again a few times, then report the conflict (nothing was written).
        for attempt in 0..4 {
            // Idempotent under the SDK's own retries: a retry after a lost answer to a write
            // that did happen succeeds, instead of failing its own conditions ("already
            // used"). A new token per attempt of ours, which follow cancellations.
            let r = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(uuid::Uuid::new_v4().to_string())
                .send()
                .await;
            let Err(e) = r else { return Ok(()) };
            let Some(se) = e.as_service_error() else {
                return Err(sdk_unavailable("TransactWriteItems", &e));
            };
            if !se.is_transaction_canceled_exception() {
                return Err(sdk_unavailable("TransactWriteItems", &e));
            }
            let reasons: Vec<String> = match se {
                aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(t) => {
                    t.cancellation_reasons().iter().filter_map(|r| r.code().map(str::to_string)).collect()
                }
                _ => vec![],
            };
            match cancellation(&reasons) {
                Cancelled::ConditionFailed => return Err(StoreError::Conflict),
                Cancelled::Other => {
                    return Err(StoreError::Unavailable(format!(
                        "TransactWriteItems cancelled: {reasons:?}"
                    )));
                }
                Cancelled::Concurrent if attempt == 3 => return Err(StoreError::Conflict),
                Cancelled::Concurrent => {}
            }
            tokio::time::sleep(std::time::Duration::from_millis(20 * (attempt + 1))).await;
        }
        Err(StoreError::Conflict)
    }
}

/// Why DynamoDB cancelled a transaction, from its per-item cancellation reasons.
#[derive(Debug, PartialEq, Eq)]
enum Cancelled {
    /// One of our conditions did not hold: the only [`StoreError::Conflict`] proper.
    ConditionFailed,
    /// Another transaction was writing the same items: worth another try.
    Concurrent,
    /// Throttling, validation, item size, capacity…: the store is unavailable (503), not a
    /// failed condition ("already used" would be a lie).
    Other,
}

fn cancellation(reasons: &[String]) -> Cancelled {
    if reasons.iter().any(|c| c == "ConditionalCheckFailed") {
        Cancelled::ConditionFailed
    } else if !reasons.is_empty()
        && reasons
            .iter()
            .all(|c| c == "None" || c == "TransactionConflict")
        && reasons.iter().any(|c| c == "TransactionConflict")
    {
        Cancelled::Concurrent
    } else {
        Cancelled::Other
    }
}

/// Service errors that can say "your condition did not hold".
trait ConditionFailed {
    fn condition_failed(&self) -> bool;
}

impl ConditionFailed for aws_sdk_dynamodb::operation::put_item::PutItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionFailed for aws_sdk_dynamodb::operation::delete_item::DeleteItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

/// A conditional single-item write's outcome: a failed condition is [`StoreError::Conflict`].
fn conditional<T, E: ConditionFailed + ProvideErrorMetadata, R>(
    what: &str,
    result: Result<T, SdkError<E, R>>,
) -> Result<(), StoreError> {
    match result {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(ConditionFailed::condition_failed) =>
        {
            Err(StoreError::Conflict)
        }
        Err(e) => Err(sdk_unavailable(what, &e)),
    }
}

fn attr_def(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("name and type are set")
}

fn key_elem(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("name and type are set")
}

#[async_trait]
impl Backend for DynamoDb {
    fn name(&self) -> &'static str {
        "dynamodb"
    }

    async fn get(&self, record: Key<'_>, now: i64) -> Result<Option<Item>, StoreError> {
        let Key { table, pk, sk } = record;
        let r = self
            .client
            .get_item()
            .table_name(self.table_name(table))
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_unavailable("GetItem", &e))?;
        match r.item() {
            Some(m) => Ok(Some(from_attrs(m)?).filter(|i| i.is_live(now))),
            None => Ok(None),
        }
    }

    async fn query(
        &self,
        table: Table,
        pk: &str,
        sk_prefix: &str,
        now: i64,
    ) -> Result<Vec<Item>, StoreError> {
        self.query_pages(table, pk, sk_prefix, None, now).await
    }

    async fn query_newest(
        &self,
        table: Table,
        pk: &str,
        sk_prefix: &str,
        limit: usize,
        now: i64,
    ) -> Result<Vec<Item>, StoreError> {
        self.query_pages(table, pk, sk_prefix, Some(limit), now)
            .await
    }

    async fn add(
        &self,
        counter: Key<'_>,
        by: i64,
        expires_at: i64,
        now: i64,
    ) -> Result<i64, StoreError> {
        let Key { table, pk, sk } = counter;
        let name = self.table_name(table);
        // A live counter, or none: one UpdateItem. An expired one (TTL deletes late) is
        // replaced by a fresh counter, conditionally, and the update is tried again.
        for _ in 0..3 {
            let r = self
                .client
                .update_item()
                .table_name(&name)
                .set_key(Some(key(pk, sk)))
                .update_expression(
                    "SET #body = if_not_exists(#body, :empty), #exp = if_not_exists(#exp, :exp) ADD #ver :by",
                )
                .condition_expression("attribute_not_exists(#pk) OR #exp > :now")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#body", BODY)
                .expression_attribute_names("#exp", EXPIRES_AT)
                .expression_attribute_names("#ver", VERSION)
                .expression_attribute_values(":empty", AttributeValue::S("{}".into()))
                .expression_attribute_values(":exp", AttributeValue::N(expires_at.to_string()))
                .expression_attribute_values(":by", AttributeValue::N(by.to_string()))
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .return_values(ReturnValue::UpdatedNew)
                .send()
                .await;
            match r {
                Ok(out) => {
                    return out
                        .attributes()
                        .and_then(|a| a.get(VERSION))
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse::<i64>().ok())
                        .ok_or_else(|| StoreError::Corrupt("counter without a count".into()));
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                {
                    let fresh = Item {
                        pk: pk.to_string(),
                        sk: sk.to_string(),
                        body: "{}".into(),
                        expires_at: Some(expires_at),
                        version: by,
                    };
                    match self
                        .write_one(
                            &Op::Put {
                                table,
                                item: fresh,
                                cond: Cond::Absent,
                            },
                            now,
                        )
                        .await
                    {
                        Ok(()) => return Ok(by),
                        Err(StoreError::Conflict) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(sdk_unavailable("UpdateItem", &e)),
            }
        }
        Err(StoreError::Unavailable(
            "dynamodb UpdateItem: the counter kept changing".into(),
        ))
    }

    async fn scan(&self, table: Table, now: i64) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let r = self
                .client
                .scan()
                .table_name(self.table_name(table))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_unavailable("Scan", &e))?;
            for m in r.items() {
                let item = from_attrs(m)?;
                if item.is_live(now) {
                    out.push(item);
                }
            }
            match r.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        out.sort_by(|a, b| (&a.pk, &a.sk).cmp(&(&b.pk, &b.sk)));
        Ok(out)
    }

    async fn write(&self, ops: Vec<Op>, now: i64) -> Result<(), StoreError> {
        match ops.as_slice() {
            [] => Ok(()),
            // An unconditional put or delete does the same when the SDK retries it.
            [op] if op_cond(op) == Cond::Always => self.write_one(op, now).await,
            // A conditional one would not: after an answer lost on the way back, the retry
            // fails its own condition and a first use reads as a second. A transaction with
            // a client request token is idempotent under those retries (`transact`).
            ops => self.transact(ops, now).await,
        }
    }

    async fn take(&self, record: Key<'_>, now: i64) -> Result<Option<Item>, StoreError> {
        let Key { table, pk, sk } = record;
        // Read, then delete that version in an idempotent transaction: a DeleteItem retried
        // after its answer was lost would find nothing and give the value to nobody. Of
        // concurrent takers exactly one deletes the version they all read.
        let Some(item) = self.get(record, now).await? else {
            return Ok(None);
        };
        let delete = Op::Delete {
            table,
            pk: pk.to_string(),
            sk: sk.to_string(),
            cond: Cond::Version(item.version),
        };
        match self.transact(std::slice::from_ref(&delete), now).await {
            Ok(()) => Ok(Some(item)),
            Err(StoreError::Conflict) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn op_cond(op: &Op) -> Cond {
    match op {
        Op::Put { cond, .. } | Op::Delete { cond, .. } | Op::Check { cond, .. } => *cond,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(codes: &[&str]) -> Vec<String> {
        codes.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn only_a_failed_condition_is_a_conflict() {
        assert_eq!(
            cancellation(&reasons(&["None", "ConditionalCheckFailed"])),
            Cancelled::ConditionFailed
        );
        assert_eq!(
            cancellation(&reasons(&["TransactionConflict", "None"])),
            Cancelled::Concurrent
        );
        for other in [
            &["ThrottlingError", "None"][..],
            &["ValidationError"],
            &["ItemCollectionSizeLimitExceeded"],
            &["ProvisionedThroughputExceeded", "TransactionConflict"],
            &["None"],
            &[],
        ] {
            assert_eq!(cancellation(&reasons(other)), Cancelled::Other, "{other:?}");
        }
    }
}
