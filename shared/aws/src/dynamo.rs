//! [`DynamoTable`]: the storage port ([`Table`]) on one DynamoDB table.
//!
//! The semantics are those of [`nambari_core::ports::memory::MemoryTable`], pinned
//! down for both by the conformance suite: strongly consistent reads,
//! conditional writes rendered from [`Cond`] (names and values always go
//! through `#aN` / `:vN` placeholders, never spliced into an expression),
//! upserting updates that return the new item, all-or-nothing transactions
//! with per-write condition flags, and queries on the table or on `gsi1`.
//!
//! Items never appear in logs or error messages: they hold hashes and
//! personal data. Errors carry the operation and DynamoDB's error code.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    self as ddb, AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement,
    KeyType, KeysAndAttributes, Projection, ProjectionType, ReturnValue, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus, TransactWriteItem,
};
use nambari_core::model::table::{
    Cond, EXPIRES_AT, GSI1, GSI1PK, GSI1SK, Item, Key, PK, Page, Query, SK, TableError, TableResult, Update, Write,
};
use nambari_core::ports::table::Table;
use serde_json::Value;

/// A DynamoDB item or key, as the SDK wants it.
type AvMap = HashMap<String, AttributeValue>;

/// Retries of `BatchGetItem` while DynamoDB leaves keys unprocessed.
const BATCH_GET_RETRIES: u32 = 8;
/// How long [`create_table`] waits for the table to become `ACTIVE`.
const CREATE_TABLE_WAIT: Duration = Duration::from_secs(300);

/// Error codes that mean "throttled or briefly unavailable: try later".
const TRANSIENT_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "ThrottlingException",
    "Throttling",
    "InternalServerError",
    "ServiceUnavailable",
];

/// The storage port on one DynamoDB table (the single table of Nambari).
#[derive(Clone, Debug)]
pub struct DynamoTable {
    client: Client,
    table: String,
}

impl DynamoTable {
    /// A table handle; the table must already exist (see [`create_table`]).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// A DynamoDB client from the default configuration chain; with `endpoint`
/// (moto, DynamoDB Local) requests go there, with the fallbacks of
/// [`crate::sdk::sdk_config`] for a machine without AWS settings.
pub async fn client(endpoint: Option<&str>) -> Client {
    Client::new(&crate::sdk::sdk_config(endpoint).await)
}

/// Creates Nambari's single table when it does not exist yet: string `pk`
/// (HASH) and `sk` (RANGE), the GSI `gsi1` on `gsi1pk`/`gsi1sk` projecting
/// all attributes, on-demand billing. Waits until the table and its index are
/// `ACTIVE`, then enables TTL on `expires_at`. Safe to call again on an
/// existing table.
pub async fn create_table(client: &Client, name: &str) -> TableResult<()> {
    let attr = |a: &str| {
        AttributeDefinition::builder()
            .attribute_name(a)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(build_err)
    };
    let key = |a: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(a)
            .key_type(t)
            .build()
            .map_err(build_err)
    };
    let gsi = GlobalSecondaryIndex::builder()
        .index_name(GSI1)
        .key_schema(key(GSI1PK, KeyType::Hash)?)
        .key_schema(key(GSI1SK, KeyType::Range)?)
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .map_err(build_err)?;
    let created = client
        .create_table()
        .table_name(name)
        .attribute_definitions(attr(PK)?)
        .attribute_definitions(attr(SK)?)
        .attribute_definitions(attr(GSI1PK)?)
        .attribute_definitions(attr(GSI1SK)?)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .global_secondary_indexes(gsi)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e) if e.code() == Some("ResourceInUseException") => {}
        Err(e) => return Err(sdk_err("CreateTable", e)),
    }

    let deadline = Instant::now() + CREATE_TABLE_WAIT;
    let mut pause = Duration::from_millis(100);
    loop {
        let out = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| sdk_err("DescribeTable", e))?;
        let active = out.table().is_some_and(|t| {
            t.table_status() == Some(&TableStatus::Active)
                && t.global_secondary_indexes()
                    .iter()
                    .all(|i| i.index_status() == Some(&IndexStatus::Active))
        });
        if active {
            break;
        }
        if Instant::now() >= deadline {
            return Err(TableError::Unavailable(
                format!("table {name} not ACTIVE after {CREATE_TABLE_WAIT:?}").into(),
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }

    let ttl = TimeToLiveSpecification::builder()
        .attribute_name(EXPIRES_AT)
        .enabled(true)
        .build()
        .map_err(build_err)?;
    let enabled = client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(ttl)
        .send()
        .await;
    if let Err(e) = enabled {
        // DynamoDB refuses to enable TTL twice; that is fine when it is on
        // (or turning on) for our attribute.
        let desc = client
            .describe_time_to_live()
            .table_name(name)
            .send()
            .await
            .map_err(|e| sdk_err("DescribeTimeToLive", e))?;
        let on = desc.time_to_live_description().is_some_and(|d| {
            d.attribute_name() == Some(EXPIRES_AT)
                && matches!(
                    d.time_to_live_status(),
                    Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
                )
        });
        if !on {
            return Err(sdk_err("UpdateTimeToLive", e));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Errors

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> TableError {
    TableError::Internal(format!("building a DynamoDB request: {e}"))
}

/// Maps an SDK error to a [`TableError`] without item contents.
///
/// Throttling and any 5xx answer (whatever its body: a proxy's HTML page, an
/// error code this SDK does not know) are [`TableError::Unavailable`], a 503
/// the client may retry; the SDK has already retried them.
fn sdk_err<E>(op: &'static str, err: SdkError<E, HttpResponse>) -> TableError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code().unwrap_or("Unknown").to_owned();
            if code == "ConditionalCheckFailedException" {
                return TableError::ConditionFailed;
            }
            let status = ctx.raw().status();
            if TRANSIENT_CODES.contains(&code.as_str()) || status.is_server_error() {
                tracing::warn!(op, code, status = status.as_u16(), "DynamoDB throttled or unavailable");
                return unavailable(err);
            }
            let message = ctx.err().message().unwrap_or("").to_owned();
            tracing::error!(op, code, message, "DynamoDB request failed");
            TableError::Internal(format!("{op}: {code}: {message}"))
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            tracing::warn!(op, error = %err, "DynamoDB unreachable");
            unavailable(err)
        }
        _ => {
            tracing::error!(op, error = %err, "DynamoDB request not sent");
            TableError::Internal(format!("{op}: {err}"))
        }
    }
}

fn unavailable<E, R>(err: SdkError<E, R>) -> TableError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match err.into_source() {
        Ok(source) => TableError::Unavailable(source),
        Err(e) => TableError::Unavailable(e.to_string().into()),
    }
}

/// Maps the cancellation reasons of a transaction to per-write flags.
fn canceled(op: &'static str, reasons: &[ddb::CancellationReason], n: usize) -> TableError {
    let codes: Vec<&str> = reasons.iter().map(|r| r.code().unwrap_or("None")).collect();
    let failed: Vec<bool> = (0..n)
        .map(|i| codes.get(i) == Some(&"ConditionalCheckFailed"))
        .collect();
    if failed.iter().any(|f| *f) {
        return TableError::TransactionCanceled(failed);
    }
    if codes.contains(&"TransactionConflict") {
        return TableError::TransactionCanceled(vec![false; n]);
    }
    let summary = codes.join(", ");
    if codes
        .iter()
        .any(|c| matches!(*c, "ProvisionedThroughputExceeded" | "ThrottlingError"))
    {
        tracing::warn!(op, reasons = summary, "transaction throttled");
        return TableError::Unavailable(format!("{op} cancelled: [{summary}]").into());
    }
    tracing::error!(op, reasons = summary, "transaction cancelled");
    TableError::Internal(format!("{op} cancelled: [{summary}]"))
}

// ---------------------------------------------------------------------------
// Items

/// Converts a JSON item to a DynamoDB item (numbers become `N`, so integers
/// stay integers).
pub(crate) fn to_av(item: &Item) -> TableResult<AvMap> {
    serde_dynamo::aws_sdk_dynamodb_1::to_item(item)
        .map_err(|_| TableError::Internal("cannot encode an item for DynamoDB".into()))
}

/// Converts a DynamoDB item back to JSON; `N` values that are integers come
/// back as JSON integers (`i64`, or `u64` above `i64::MAX`).
pub(crate) fn from_av(item: AvMap) -> TableResult<Item> {
    // serde_dynamo panics on attribute types this SDK does not know.
    if item.values().any(has_unknown) {
        return Err(TableError::Internal(
            "DynamoDB item with an unknown attribute type".into(),
        ));
    }
    serde_dynamo::aws_sdk_dynamodb_1::from_item(item)
        .map_err(|_| TableError::Internal("cannot decode a DynamoDB item".into()))
}

fn has_unknown(v: &AttributeValue) -> bool {
    match v {
        AttributeValue::M(m) => m.values().any(has_unknown),
        AttributeValue::L(l) => l.iter().any(has_unknown),
        AttributeValue::B(_)
        | AttributeValue::Bool(_)
        | AttributeValue::Bs(_)
        | AttributeValue::N(_)
        | AttributeValue::Ns(_)
        | AttributeValue::Null(_)
        | AttributeValue::S(_)
        | AttributeValue::Ss(_) => false,
        _ => true,
    }
}

fn key_av(key: &Key) -> AvMap {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

fn item_key(item: &Item) -> TableResult<Key> {
    Key::of(item).ok_or_else(|| TableError::Internal("item without string pk/sk".into()))
}

// ---------------------------------------------------------------------------
// Expressions

/// Placeholders for one request: `#aN` for names, `:vN` for values.
#[derive(Default)]
pub(crate) struct Expr {
    names: HashMap<String, String>,
    placeholders: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    /// The placeholder of an attribute name (one per distinct name).
    pub(crate) fn name(&mut self, attr: &str) -> String {
        if let Some(p) = self.placeholders.get(attr) {
            return p.clone();
        }
        let p = format!("#a{}", self.names.len());
        self.names.insert(p.clone(), attr.to_owned());
        self.placeholders.insert(attr.to_owned(), p.clone());
        p
    }

    /// A fresh placeholder bound to `v`.
    pub(crate) fn value(&mut self, v: &Value) -> TableResult<String> {
        let av = serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value(v)
            .map_err(|_| TableError::Internal("cannot encode a value for DynamoDB".into()))?;
        let p = format!(":v{}", self.values.len());
        self.values.insert(p.clone(), av);
        Ok(p)
    }

    /// A `ConditionExpression` with the semantics of `MemoryTable`.
    pub(crate) fn cond(&mut self, cond: &Cond) -> TableResult<String> {
        let cmp = |e: &mut Self, a: &str, op: &str, v: &Value| -> TableResult<String> {
            let n = e.name(a);
            let v = e.value(v)?;
            Ok(format!("{n} {op} {v}"))
        };
        Ok(match cond {
            Cond::Exists => format!("attribute_exists({})", self.name(PK)),
            Cond::NotExists => format!("attribute_not_exists({})", self.name(PK)),
            Cond::AttrExists(a) => format!("attribute_exists({})", self.name(a)),
            Cond::AttrNotExists(a) => format!("attribute_not_exists({})", self.name(a)),
            Cond::Eq(a, v) => cmp(self, a, "=", v)?,
            // True when the attribute is missing, spelled out rather than
            // left to how `<>` treats a missing attribute.
            Cond::Ne(a, v) => {
                let n = self.name(a);
                let v = self.value(v)?;
                format!("(attribute_not_exists({n}) OR {n} <> {v})")
            }
            Cond::Lt(a, v) => cmp(self, a, "<", v)?,
            Cond::Le(a, v) => cmp(self, a, "<=", v)?,
            Cond::Gt(a, v) => cmp(self, a, ">", v)?,
            Cond::Ge(a, v) => cmp(self, a, ">=", v)?,
            Cond::And(cs) | Cond::Or(cs) if cs.is_empty() => {
                // DynamoDB has no literals: an always-true / always-false test.
                let pk = self.name(PK);
                if matches!(cond, Cond::And(_)) {
                    format!("(attribute_exists({pk}) OR attribute_not_exists({pk}))")
                } else {
                    format!("(attribute_exists({pk}) AND attribute_not_exists({pk}))")
                }
            }
            Cond::And(cs) | Cond::Or(cs) => {
                let sep = if matches!(cond, Cond::And(_)) { " AND " } else { " OR " };
                let parts = cs.iter().map(|c| self.cond(c)).collect::<TableResult<Vec<_>>>()?;
                format!("({})", parts.join(sep))
            }
            Cond::Not(c) => format!("(NOT {})", self.cond(c)?),
        })
    }

    /// An `UpdateExpression` (`SET … ADD … REMOVE …`).
    pub(crate) fn update(&mut self, ops: &[Update]) -> TableResult<String> {
        let (mut set, mut add, mut remove) = (Vec::new(), Vec::new(), Vec::new());
        for op in ops {
            match op {
                Update::Set(a, _) | Update::Add(a, _) | Update::Remove(a) if a == PK || a == SK => {
                    return Err(TableError::Internal("cannot update a key attribute".into()));
                }
                Update::Set(a, v) => {
                    let n = self.name(a);
                    set.push(format!("{n} = {}", self.value(v)?));
                }
                Update::Add(a, by) => {
                    let n = self.name(a);
                    add.push(format!("{n} {}", self.value(&Value::from(*by))?));
                }
                Update::Remove(a) => remove.push(self.name(a)),
            }
        }
        if set.is_empty() && add.is_empty() && remove.is_empty() {
            // No actions: UpdateItem still has to create the bare item, and a
            // transaction's Update needs an expression. Removing an
            // attribute nobody writes does exactly that.
            remove.push(self.name("nambari_noop"));
        }
        let mut clauses = Vec::new();
        for (kw, parts) in [("SET", set), ("ADD", add), ("REMOVE", remove)] {
            if !parts.is_empty() {
                clauses.push(format!("{kw} {}", parts.join(", ")));
            }
        }
        Ok(clauses.join(" "))
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<AvMap> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

/// The rendered condition of a write, if any.
fn render_cond(cond: Option<&Cond>) -> TableResult<(Expr, Option<String>)> {
    let mut e = Expr::default();
    let c = cond.map(|c| e.cond(c)).transpose()?;
    Ok((e, c))
}

// ---------------------------------------------------------------------------
// The port

#[async_trait]
impl Table for DynamoTable {
    async fn get(&self, key: &Key) -> TableResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_av(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_err("GetItem", e))?;
        out.item.map(from_av).transpose()
    }

    async fn batch_get(&self, keys: &[Key]) -> TableResult<Vec<Option<Item>>> {
        if keys.len() > 100 {
            return Err(TableError::Internal("batch_get of more than 100 keys".into()));
        }
        // DynamoDB rejects duplicate keys in one request.
        let unique: BTreeSet<&Key> = keys.iter().collect();
        let mut pending: Vec<AvMap> = unique.into_iter().map(key_av).collect();
        let mut found: HashMap<Key, Item> = HashMap::with_capacity(keys.len());
        let mut retries = 0;
        let mut pause = Duration::from_millis(25);
        while !pending.is_empty() {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(true)
                .build()
                .map_err(build_err)?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| sdk_err("BatchGetItem", e))?;
            let items = out
                .responses
                .and_then(|mut r| r.remove(&self.table))
                .unwrap_or_default();
            for av in items {
                let item = from_av(av)?;
                found.insert(item_key(&item)?, item);
            }
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if !pending.is_empty() {
                retries += 1;
                if retries > BATCH_GET_RETRIES {
                    tracing::warn!(left = pending.len(), "BatchGetItem keys still unprocessed");
                    return Err(TableError::Unavailable("BatchGetItem left keys unprocessed".into()));
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    async fn put(&self, item: Item, cond: Option<Cond>) -> TableResult<()> {
        item_key(&item)?;
        let (e, c) = render_cond(cond.as_ref())?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_av(&item)?))
            .set_condition_expression(c)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .send()
            .await
            .map_err(|e| sdk_err("PutItem", e))?;
        Ok(())
    }

    async fn update(&self, key: &Key, ops: Vec<Update>, cond: Option<Cond>) -> TableResult<Item> {
        let mut e = Expr::default();
        let u = e.update(&ops)?;
        let c = cond.as_ref().map(|c| e.cond(c)).transpose()?;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_av(key)))
            .update_expression(u)
            .set_condition_expression(c)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| sdk_err("UpdateItem", e))?;
        match out.attributes {
            Some(av) => from_av(av),
            None => Err(TableError::Internal("UpdateItem returned no attributes".into())),
        }
    }

    async fn delete(&self, key: &Key, cond: Option<Cond>) -> TableResult<()> {
        let (e, c) = render_cond(cond.as_ref())?;
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_av(key)))
            .set_condition_expression(c)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .send()
            .await
            .map_err(|e| sdk_err("DeleteItem", e))?;
        Ok(())
    }

    async fn transact(&self, writes: Vec<Write>) -> TableResult<()> {
        if writes.is_empty() || writes.len() > 100 {
            return Err(TableError::Internal("transaction of 0 or more than 100 writes".into()));
        }
        let mut keys = BTreeSet::new();
        for w in &writes {
            let k = w
                .key()
                .ok_or_else(|| TableError::Internal("item without string pk/sk".into()))?;
            if !keys.insert(k) {
                return Err(TableError::Internal("two writes on one item in a transaction".into()));
            }
        }
        let n = writes.len();
        let items = writes
            .iter()
            .map(|w| self.transact_item(w))
            .collect::<TableResult<Vec<_>>>()?;
        let sent = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
                    Err(canceled("TransactWriteItems", e.cancellation_reasons(), n))
                }
                _ => Err(sdk_err("TransactWriteItems", err)),
            },
        }
    }

    async fn query(&self, q: Query) -> TableResult<Page> {
        let (pk_attr, sk_attr) = match q.index {
            None => (PK, SK),
            Some(GSI1) => (GSI1PK, GSI1SK),
            Some(other) => return Err(TableError::Internal(format!("unknown index {other}"))),
        };
        let mut e = Expr::default();
        let mut kce = format!("{} = {}", e.name(pk_attr), e.value(&Value::from(q.pk))?);
        if let Some(prefix) = q.sk_prefix.filter(|p| !p.is_empty()) {
            let n = e.name(sk_attr);
            let v = e.value(&Value::from(prefix))?;
            kce.push_str(&format!(" AND begins_with({n}, {v})"));
        }
        // The start key must hold exactly the table's and the index's keys.
        let start = q
            .start
            .map(|s| {
                let mut k = Item::new();
                for a in [PK, SK, pk_attr, sk_attr] {
                    if let Some(v) = s.get(a) {
                        k.insert(a.to_owned(), v.clone());
                    }
                }
                to_av(&k)
            })
            .transpose()?;
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(q.index.map(str::to_owned))
            .key_condition_expression(kce)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .scan_index_forward(q.forward)
            .limit(i32::try_from(q.limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            // GSIs only offer eventually consistent reads.
            .set_consistent_read(q.index.is_none().then_some(true))
            .send()
            .await
            .map_err(|e| sdk_err("Query", e))?;
        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_av)
            .collect::<TableResult<Vec<_>>>()?;
        let next = out
            .last_evaluated_key
            .filter(|k| !k.is_empty())
            .map(from_av)
            .transpose()?;
        Ok(Page { items, next })
    }
}

impl DynamoTable {
    fn transact_item(&self, w: &Write) -> TableResult<TransactWriteItem> {
        let t = &self.table;
        let item = match w {
            Write::Put { item, cond } => {
                let (e, c) = render_cond(cond.as_ref())?;
                let put = ddb::Put::builder()
                    .table_name(t)
                    .set_item(Some(to_av(item)?))
                    .set_condition_expression(c)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(build_err)?;
                TransactWriteItem::builder().put(put).build()
            }
            Write::Update { key, ops, cond } => {
                let mut e = Expr::default();
                let u = e.update(ops)?;
                let c = cond.as_ref().map(|c| e.cond(c)).transpose()?;
                let update = ddb::Update::builder()
                    .table_name(t)
                    .set_key(Some(key_av(key)))
                    .update_expression(u)
                    .set_condition_expression(c)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(build_err)?;
                TransactWriteItem::builder().update(update).build()
            }
            Write::Delete { key, cond } => {
                let (e, c) = render_cond(cond.as_ref())?;
                let delete = ddb::Delete::builder()
                    .table_name(t)
                    .set_key(Some(key_av(key)))
                    .set_condition_expression(c)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(build_err)?;
                TransactWriteItem::builder().delete(delete).build()
            }
            Write::Check { key, cond } => {
                let mut e = Expr::default();
                let c = e.cond(cond)?;
                let check = ddb::ConditionCheck::builder()
                    .table_name(t)
                    .set_key(Some(key_av(key)))
                    .condition_expression(c)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(build_err)?;
                TransactWriteItem::builder().condition_check(check).build()
            }
        };
        Ok(item)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Item {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn integers_round_trip_as_json_integers() {
        let item = obj(json!({
            "pk": "p", "sk": "s",
            "zero": 0, "one": 1, "neg": -42, "max": i64::MAX, "min": i64::MIN,
            "big": u64::MAX, "ts": 1_750_000_000,
            "half": 1.5,
            "list": [1, 2.5, -3], "map": {"n": 7},
        }));
        let av = to_av(&item).unwrap();
        assert_eq!(av["one"], AttributeValue::N("1".into()));
        assert_eq!(av["max"], AttributeValue::N(i64::MAX.to_string()));
        let back = from_av(av).unwrap();
        assert_eq!(back, item);
        for k in ["zero", "one", "neg", "max", "min", "ts"] {
            assert!(back[k].is_i64(), "{k} should come back as an i64: {:?}", back[k]);
        }
        assert!(back["big"].is_u64());
        assert!(back["half"].is_f64());
        assert!(back["list"][0].is_i64());
        assert!(back["map"]["n"].is_i64());
        assert_eq!(back["max"].as_i64(), Some(i64::MAX));
    }

    #[test]
    fn numbers_written_by_dynamodb_decode_as_integers() {
        // How DynamoDB and moto return an ADD result and a stored timestamp.
        let av = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("p".into())),
            ("sk".to_owned(), AttributeValue::S("s".into())),
            ("count".to_owned(), AttributeValue::N("5".into())),
            ("expires_at".to_owned(), AttributeValue::N("1750000000".into())),
        ]);
        let item = from_av(av).unwrap();
        assert_eq!(item["count"], json!(5));
        assert!(item["count"].is_i64());
        assert!(item["expires_at"].is_i64());
    }

    #[test]
    fn other_types_round_trip() {
        let item = obj(json!({
            "pk": "p", "sk": "s", "empty": "", "t": true, "f": false, "null": null,
            "nested": {"a": ["x", {"b": null}], "c": ""}, "arr": [],
        }));
        assert_eq!(from_av(to_av(&item).unwrap()).unwrap(), item);
    }

    #[test]
    fn conditions_use_placeholders_only() {
        let mut e = Expr::default();
        let c = Cond::NotExists
            .or(Cond::le("expires_at", 100))
            .and(Cond::ne("owner", "alice) OR (1 = 1"))
            .and(Cond::Not(Box::new(Cond::AttrExists("x y".into()))));
        let s = e.cond(&c).unwrap();
        assert_eq!(
            s,
            "((attribute_not_exists(#a0) OR #a1 <= :v0) AND (attribute_not_exists(#a2) OR #a2 <> :v1) AND (NOT attribute_exists(#a3)))"
        );
        let names = e.names().unwrap();
        assert_eq!(names["#a0"], "pk");
        assert_eq!(names["#a1"], "expires_at");
        assert_eq!(names["#a3"], "x y");
        let values = e.values().unwrap();
        assert_eq!(values[":v0"], AttributeValue::N("100".into()));
        assert_eq!(values[":v1"], AttributeValue::S("alice) OR (1 = 1".into()));
    }

    #[test]
    fn empty_and_or_render_as_true_and_false() {
        let mut e = Expr::default();
        assert_eq!(
            e.cond(&Cond::And(vec![])).unwrap(),
            "(attribute_exists(#a0) OR attribute_not_exists(#a0))"
        );
        assert_eq!(
            e.cond(&Cond::Or(vec![])).unwrap(),
            "(attribute_exists(#a0) AND attribute_not_exists(#a0))"
        );
    }

    #[test]
    fn updates_group_set_add_and_remove() {
        let mut e = Expr::default();
        let s = e
            .update(&[
                Update::set("a", "x"),
                Update::add("n", 2),
                Update::remove("old"),
                Update::set("b", 1),
            ])
            .unwrap();
        assert_eq!(s, "SET #a0 = :v0, #a3 = :v2 ADD #a1 :v1 REMOVE #a2");
        assert_eq!(e.values().unwrap()[":v1"], AttributeValue::N("2".into()));
    }

    #[test]
    fn updates_of_key_attributes_are_refused() {
        let mut e = Expr::default();
        assert!(matches!(
            e.update(&[Update::set("pk", "x")]),
            Err(TableError::Internal(_))
        ));
    }

    #[test]
    fn transaction_reasons_map_to_flags() {
        let r = |c: &str| ddb::CancellationReason::builder().code(c).build();
        let e = canceled("T", &[r("None"), r("ConditionalCheckFailed"), r("None")], 3);
        assert!(matches!(e, TableError::TransactionCanceled(ref v) if v == &[false, true, false]));
        let e = canceled("T", &[r("None"), r("TransactionConflict")], 2);
        assert!(matches!(e, TableError::TransactionCanceled(ref v) if v == &[false, false]));
        let e = canceled("T", &[r("ThrottlingError"), r("None")], 2);
        assert!(matches!(e, TableError::Unavailable(_)));
        let e = canceled("T", &[r("ValidationError")], 1);
        assert!(matches!(e, TableError::Internal(_)));
    }
}
