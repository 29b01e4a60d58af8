//! IAM's judgement of AWS calls, so tests can prove each function's policy in `template.yaml`
//! allows exactly what its code calls: statements read from IAM JSON
//! ([`Statement::from_json`]), AWS's evaluation logic within one account ([`evaluate`]), and
//! the IAM requests an API request is authorized as ([`dynamodb_calls`],
//! [`secretsmanager_calls`], [`sesv2_calls`]).
//!
//! Pure: no network, no files. It fails closed: a policy element, condition operator or API
//! operation it does not know is an error, never a guess. Not modelled: SCPs, permission
//! boundaries, session policies, cross-account access, policy variables (refused).

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// `Any`: Action, Resource, Principal; `Not`: NotAction, NotResource, NotPrincipal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matcher {
    Any(Vec<String>),
    Not(Vec<String>),
}

impl Matcher {
    fn matches(&self, mut one: impl FnMut(&str) -> bool) -> bool {
        match self {
            Matcher::Any(patterns) => patterns.iter().any(|p| one(p)),
            Matcher::Not(patterns) => !patterns.iter().any(|p| one(p)),
        }
    }
}

/// How a condition reads a multivalued context key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qualifier {
    Single,
    ForAnyValue,
    ForAllValues,
}

/// A condition operator's comparison, its negation aside. `ArnEquals` and `ArnLike` are one
/// test: AWS gives both wildcards, matched per ARN segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Test {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    ArnLike,
    Bool,
}

/// One key under one operator, `"StringEquals": {"ses:FromAddress": [..]}`; a statement's
/// conditions all hold for it to apply (several keys under one operator are ANDed too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    /// As written, for messages.
    pub operator: String,
    pub qualifier: Qualifier,
    pub test: Test,
    pub negated: bool,
    pub if_exists: bool,
    pub key: String,
    /// Any one of them may match (OR).
    pub values: Vec<String>,
}

impl Condition {
    fn parse_operator(op: &str) -> Result<(Qualifier, Test, bool, bool), String> {
        let (qualifier, rest) = if let Some(rest) = op.strip_prefix("ForAnyValue:") {
            (Qualifier::ForAnyValue, rest)
        } else if let Some(rest) = op.strip_prefix("ForAllValues:") {
            (Qualifier::ForAllValues, rest)
        } else {
            (Qualifier::Single, op)
        };
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (rest, false),
        };
        let (test, negated) = match base {
            "StringEquals" => (Test::StringEquals, false),
            "StringNotEquals" => (Test::StringEquals, true),
            "StringEqualsIgnoreCase" => (Test::StringEqualsIgnoreCase, false),
            "StringNotEqualsIgnoreCase" => (Test::StringEqualsIgnoreCase, true),
            "StringLike" => (Test::StringLike, false),
            "StringNotLike" => (Test::StringLike, true),
            "ArnEquals" | "ArnLike" => (Test::ArnLike, false),
            "ArnNotEquals" | "ArnNotLike" => (Test::ArnLike, true),
            "Bool" => (Test::Bool, false),
            _ => return Err(format!("unsupported condition operator {op}")),
        };
        Ok((qualifier, test, negated, if_exists))
    }

    /// Whether one context value matches one of the policy's values (negation aside).
    fn matches_one(&self, value: &str) -> bool {
        self.values.iter().any(|p| match self.test {
            Test::StringEquals => p == value,
            Test::StringEqualsIgnoreCase => p.to_lowercase() == value.to_lowercase(),
            Test::StringLike => glob(p, value),
            Test::ArnLike => arn_like(p, value),
            Test::Bool => p.eq_ignore_ascii_case(value),
        })
    }

    /// AWS's rules: a missing key fails the condition, except with `...IfExists`, a negated
    /// operator (`StringNotEquals`: nothing to be equal) or `ForAllValues:` (all of none).
    /// Key names are case-insensitive.
    fn holds(&self, context: &BTreeMap<String, Vec<String>>) -> bool {
        let values = context
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&self.key))
            .map(|(_, v)| v)
            .filter(|v| !v.is_empty());
        let Some(values) = values else {
            return self.if_exists
                || match self.qualifier {
                    Qualifier::Single => self.negated,
                    Qualifier::ForAnyValue => false,
                    Qualifier::ForAllValues => true,
                };
        };
        let each = |v: &String| self.matches_one(v) != self.negated;
        match self.qualifier {
            // A negated single-valued operator: none of the values matches.
            Qualifier::Single if self.negated => values.iter().all(each),
            Qualifier::Single | Qualifier::ForAnyValue => values.iter().any(each),
            Qualifier::ForAllValues => values.iter().all(each),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub actions: Matcher,
    pub resources: Matcher,
    /// Resource policies only: `"*"`, AWS principal ARNs, service names.
    pub principals: Option<Matcher>,
    pub conditions: Vec<Condition>,
    /// Where it came from, e.g. "SsoAcsFunction statement 2"; set by the caller.
    pub source: String,
}

impl Statement {
    /// Reads one IAM JSON statement. Refuses unknown keys, operators and principal types,
    /// empty lists and policy variables (`${...}`) rather than guess what they mean.
    pub fn from_json(v: &Value, source: &str) -> Result<Statement, String> {
        let at = |e: String| format!("{source}: {e}");
        let obj = v
            .as_object()
            .ok_or_else(|| at("a statement is a JSON object".into()))?;
        const KEYS: &str =
            "Sid Effect Action NotAction Resource NotResource Principal NotPrincipal Condition";
        if let Some(k) = obj
            .keys()
            .find(|k| !KEYS.split(' ').any(|known| known == *k))
        {
            return Err(at(format!("unknown statement key {k}")));
        }
        let effect = match obj.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            other => return Err(at(format!("Effect must be Allow or Deny, not {other:?}"))),
        };
        let sid = match obj.get("Sid") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(at("Sid is a string".into())),
        };
        let actions = either(obj, "Action", "NotAction", |v| strings(v, false))
            .and_then(|m| m.ok_or_else(|| "Action or NotAction is required".into()))
            .map_err(at)?;
        let resources = either(obj, "Resource", "NotResource", |v| strings(v, false))
            .and_then(|m| m.ok_or_else(|| "Resource or NotResource is required".into()))
            .map_err(at)?;
        let principals = either(obj, "Principal", "NotPrincipal", principal_list).map_err(at)?;
        let conditions = match obj.get("Condition") {
            None => Vec::new(),
            Some(c) => conditions(c).map_err(at)?,
        };
        Ok(Statement {
            sid,
            effect,
            actions,
            resources,
            principals,
            conditions,
            source: source.to_string(),
        })
    }
}

fn either(
    obj: &serde_json::Map<String, Value>,
    yes: &str,
    no: &str,
    read: impl Fn(&Value) -> Result<Vec<String>, String>,
) -> Result<Option<Matcher>, String> {
    let read = |v, key: &str| read(v).map_err(|e| format!("{key}: {e}"));
    match (obj.get(yes), obj.get(no)) {
        (Some(v), None) => Ok(Some(Matcher::Any(read(v, yes)?))),
        (None, Some(v)) => Ok(Some(Matcher::Not(read(v, no)?))),
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(format!("both {yes} and {no}")),
    }
}

/// A string or a non-empty list of strings; condition values may also be booleans or numbers.
fn strings(v: &Value, scalars: bool) -> Result<Vec<String>, String> {
    let list: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        one => vec![one],
    };
    if list.is_empty() {
        return Err("an empty list".into());
    }
    list.into_iter()
        .map(|v| match v {
            Value::String(s) if s.contains("${") => Err(format!("policy variable in {s}")),
            Value::String(s) => Ok(s.clone()),
            Value::Bool(_) | Value::Number(_) if scalars => Ok(v.to_string()),
            other => Err(format!("expected a string, found {other}")),
        })
        .collect()
}

/// `"*"`, or `{"AWS": ..., "Service": ...}`.
fn principal_list(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) if s == "*" => Ok(vec!["*".into()]),
        Value::Object(m) if !m.is_empty() => {
            let mut out = Vec::new();
            for (kind, v) in m {
                match kind.as_str() {
                    "AWS" | "Service" => out.extend(strings(v, false)?),
                    _ => return Err(format!("unsupported principal type {kind}")),
                }
            }
            Ok(out)
        }
        other => Err(format!("expected \"*\" or an object, found {other}")),
    }
}

fn conditions(v: &Value) -> Result<Vec<Condition>, String> {
    let ops = v.as_object().ok_or("Condition is a JSON object")?;
    let mut out = Vec::new();
    for (op, keys) in ops {
        let (qualifier, test, negated, if_exists) = Condition::parse_operator(op)?;
        let keys = keys
            .as_object()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| format!("{op} needs an object of condition keys"))?;
        for (key, values) in keys {
            out.push(Condition {
                operator: op.clone(),
                qualifier,
                test,
                negated,
                if_exists,
                key: key.clone(),
                values: strings(values, true).map_err(|e| format!("{op} {key}: {e}"))?,
            });
        }
    }
    Ok(out)
}

/// `*` matches any run of characters (`:` and `/` included), `?` one character.
fn glob(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Actions are case-insensitive.
fn action_matches(pattern: &str, action: &str) -> bool {
    glob(&pattern.to_lowercase(), &action.to_lowercase())
}

/// ARN conditions compare each of the six `:`-separated parts on its own (the last keeps
/// any further `:`), so a `*` does not span parts; a lone `*` matches any ARN.
fn arn_like(pattern: &str, arn: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    p.len() == 6 && a.len() == 6 && p.iter().zip(&a).all(|(p, a)| glob(p, a))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// As `aws:PrincipalArn` gives it: for a Lambda function, its role's ARN
    /// (`arn:aws:iam::123456789012:role/Name`), not the assumed-role session's.
    pub principal_arn: String,
    /// `service:Operation`, e.g. "dynamodb:Query".
    pub action: String,
    pub resource: String,
    /// Condition keys, e.g. "ses:FromAddress"; [`evaluate`] sets "aws:PrincipalArn".
    pub context: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed { by: String },
    ImplicitDeny,
    ExplicitDeny { by: String },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }
}

/// AWS's logic for a principal and a resource in one account: a matching Deny in either
/// policy denies; else an Allow in the identity policy, or one in the resource policy naming
/// the principal, allows; else the request is implicitly denied. `by` names the statement.
pub fn evaluate(identity: &[Statement], resource_policy: &[Statement], req: &Request) -> Decision {
    let mut context = req.context.clone();
    context.retain(|k, _| !k.eq_ignore_ascii_case("aws:PrincipalArn"));
    context.insert("aws:PrincipalArn".into(), vec![req.principal_arn.clone()]);
    let all =
        || (identity.iter().map(|s| (s, false))).chain(resource_policy.iter().map(|s| (s, true)));
    let applying = |effect| {
        all()
            .find(|(s, on_resource)| s.effect == effect && applies(s, *on_resource, req, &context))
            .map(|(s, _)| s.source.clone())
    };
    if let Some(by) = applying(Effect::Deny) {
        return Decision::ExplicitDeny { by };
    }
    match applying(Effect::Allow) {
        Some(by) => Decision::Allowed { by },
        None => Decision::ImplicitDeny,
    }
}

fn applies(
    s: &Statement,
    in_resource_policy: bool,
    req: &Request,
    context: &BTreeMap<String, Vec<String>>,
) -> bool {
    let principal = match &s.principals {
        // The Principal element takes no wildcards but a lone "*".
        Some(m) => m.matches(|p| p == "*" || p == req.principal_arn),
        // IAM refuses a resource policy without one; here such a statement denies, never allows.
        None => !in_resource_policy || s.effect == Effect::Deny,
    };
    principal
        && s.actions.matches(|p| action_matches(p, &req.action))
        && s.resources.matches(|p| glob(p, &req.resource))
        && s.conditions.iter().all(|c| c.holds(context))
}

/// The (action, resource) pattern pairs an Allow statement grants, for reports of grants no
/// call used; none for a Deny. A `Not` matcher is one pattern, `!` and its JSON list
/// (`!["iam:*"]`), which [`pair_matches`] reads back.
pub fn statement_grants(s: &Statement) -> Vec<(String, String)> {
    if s.effect != Effect::Allow {
        return Vec::new();
    }
    let patterns = |m: &Matcher| match m {
        Matcher::Any(p) => p.clone(),
        Matcher::Not(p) => vec![format!("!{}", Value::from(p.clone()))],
    };
    let resources = patterns(&s.resources);
    patterns(&s.actions)
        .into_iter()
        .flat_map(|a| resources.iter().map(move |r| (a.clone(), r.clone())))
        .collect()
}

/// Whether a request falls under one grant of [`statement_grants`] (conditions and
/// principals aside: those belong to the whole statement).
pub fn pair_matches(action_pat: &str, resource_pat: &str, req: &Request) -> bool {
    let under = |pat: &str, one: &dyn Fn(&str) -> bool| match pat
        .strip_prefix('!')
        .and_then(|j| serde_json::from_str(j).ok())
    {
        Some(not) => Matcher::Not(not).matches(one),
        None => one(pat),
    };
    under(action_pat, &|p| action_matches(p, &req.action))
        && under(resource_pat, &|p| glob(p, &req.resource))
}

/// Where the functions run, and the secrets there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub partition: String,
    pub region: String,
    pub account: String,
    /// Known secrets: (name, full ARN with AWS's 6-character suffix).
    pub secrets: Vec<(String, String)>,
}

impl Account {
    fn arn(&self, service: &str, resource: &str) -> String {
        let Account {
            partition,
            region,
            account,
            ..
        } = self;
        format!("arn:{partition}:{service}:{region}:{account}:{resource}")
    }
}

/// One IAM request an API request is authorized as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub action: String,
    pub resource: String,
    pub context: BTreeMap<String, Vec<String>>,
}

impl Call {
    fn new(action: impl Into<String>, resource: impl Into<String>) -> Call {
        Call {
            action: action.into(),
            resource: resource.into(),
            context: BTreeMap::new(),
        }
    }

    /// This call as made by `principal_arn`.
    pub fn request(&self, principal_arn: &str) -> Request {
        Request {
            principal_arn: principal_arn.to_string(),
            action: self.action.clone(),
            resource: self.resource.clone(),
            context: self.context.clone(),
        }
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("{key} missing or not a string"))
}

/// The IAM requests of a DynamoDB operation (`DynamoDB_20120810.Query` → "Query"): each on
/// its table (a `TableName` given as an ARN is kept), Query and Scan of an index on the
/// index. Transactions are authorized per item (PutItem, UpdateItem, DeleteItem,
/// ConditionCheckItem; GetItem), batches once per table. No condition keys are set
/// (`dynamodb:LeadingKeys` would need the key schema).
pub fn dynamodb_calls(
    account: &Account,
    operation: &str,
    body: &Value,
) -> Result<Vec<Call>, String> {
    let table_arn = |name: &str| match name.starts_with("arn:") {
        true => name.to_string(),
        false => account.arn("dynamodb", &format!("table/{name}")),
    };
    let table = |v: &Value| text(v, "TableName").map(table_arn);
    let call = |action: &str, resource: String| Call::new(format!("dynamodb:{action}"), resource);
    match operation {
        "GetItem" | "PutItem" | "DeleteItem" | "UpdateItem" | "DescribeTable" | "CreateTable"
        | "DeleteTable" | "UpdateTimeToLive" | "DescribeTimeToLive" => {
            Ok(vec![call(operation, table(body)?)])
        }
        "Query" | "Scan" => {
            let mut arn = table(body)?;
            if body.get("IndexName").is_some() {
                arn = format!("{arn}/index/{}", text(body, "IndexName")?);
            }
            Ok(vec![call(operation, arn)])
        }
        "TransactWriteItems" | "TransactGetItems" => body
            .get("TransactItems")
            .and_then(Value::as_array)
            .filter(|items| !items.is_empty())
            .ok_or_else(|| format!("{operation}: TransactItems missing or empty"))?
            .iter()
            .map(|item| {
                let (kind, inner) = item
                    .as_object()
                    .filter(|o| o.len() == 1)
                    .and_then(|o| o.iter().next())
                    .ok_or_else(|| format!("{operation}: an item holds one operation"))?;
                let action = match (operation, kind.as_str()) {
                    ("TransactWriteItems", "Put") => "PutItem",
                    ("TransactWriteItems", "Update") => "UpdateItem",
                    ("TransactWriteItems", "Delete") => "DeleteItem",
                    ("TransactWriteItems", "ConditionCheck") => "ConditionCheckItem",
                    ("TransactGetItems", "Get") => "GetItem",
                    _ => return Err(format!("{operation}: unknown item operation {kind}")),
                };
                Ok(call(action, table(inner)?))
            })
            .collect(),
        "BatchGetItem" | "BatchWriteItem" => Ok(body
            .get("RequestItems")
            .and_then(Value::as_object)
            .filter(|tables| !tables.is_empty())
            .ok_or_else(|| format!("{operation}: RequestItems missing or empty"))?
            .keys()
            .map(|name| call(operation, table_arn(name)))
            .collect()),
        "ListTables" => Ok(vec![call(operation, "*".into())]),
        other => Err(format!(
            "DynamoDB operation {other} is not mapped to IAM (add it to iam::dynamodb_calls)"
        )),
    }
}

/// A `SecretId` as IAM sees it: an ARN as given, a name as the full ARN of the deployment's
/// secret of that name. A name the deployment has no secret for is refused: its ARN (the
/// name and six characters AWS chooses) cannot be known, and a guess could match a policy
/// AWS would not.
fn secret_arn(account: &Account, id: &str) -> Result<String, String> {
    if id.starts_with("arn:") {
        return Ok(id.to_string());
    }
    account
        .secrets
        .iter()
        .find(|(name, _)| name == id)
        .map(|(_, arn)| arn.clone())
        .ok_or_else(|| format!("no secret named {id:?} in this deployment"))
}

/// The IAM request of a Secrets Manager operation (`secretsmanager.GetSecretValue` →
/// "GetSecretValue"): `secretsmanager:{operation}` on the secret named by `SecretId` (`Name`
/// for CreateSecret), or on `*` for ListSecrets and GetRandomPassword. No condition keys
/// are set.
pub fn secretsmanager_calls(
    account: &Account,
    operation: &str,
    body: &Value,
) -> Result<Vec<Call>, String> {
    let id = match operation {
        "ListSecrets" | "GetRandomPassword" => "*".to_string(),
        "CreateSecret" => secret_arn(account, text(body, "Name")?)?,
        "GetSecretValue"
        | "DescribeSecret"
        | "PutSecretValue"
        | "UpdateSecret"
        | "UpdateSecretVersionStage"
        | "ListSecretVersionIds"
        | "RotateSecret"
        | "CancelRotateSecret"
        | "DeleteSecret"
        | "RestoreSecret"
        | "TagResource"
        | "UntagResource"
        | "GetResourcePolicy"
        | "PutResourcePolicy"
        | "DeleteResourcePolicy" => secret_arn(account, text(body, "SecretId")?)?,
        other => {
            return Err(format!(
                "Secrets Manager operation {other} is not mapped to IAM (add it to iam::secretsmanager_calls)"
            ));
        }
    };
    Ok(vec![Call::new(format!("secretsmanager:{operation}"), id)])
}

/// The address of a `From` value: `a@b`, or `Name <a@b>`.
fn mail_address(from: &str) -> Result<String, String> {
    let from = from.trim();
    let address = match from.strip_suffix('>') {
        Some(rest) => rest.rsplit_once('<').map(|(_, a)| a),
        None => Some(from),
    };
    match address {
        Some(a) if a.contains('@') && !a.contains(['<', '>', ' ', ',']) => Ok(a.to_string()),
        _ => Err(format!("FromEmailAddress {from:?} holds no single address")),
    }
}

/// The IAM requests of an SES v2 request; only SendEmail (`POST /v2/email/outbound-emails`)
/// is mapped: `ses:SendEmail` on the sending identity (`FromEmailAddressIdentityArn`, else
/// the address identity `identity/{address}`) and, with `ConfigurationSetName`, on that
/// configuration set. Each carries `ses:FromAddress` (the address, display name stripped)
/// and `ses:ApiVersion` "2".
pub fn sesv2_calls(
    account: &Account,
    method: &str,
    path: &str,
    body: &Value,
) -> Result<Vec<Call>, String> {
    let route = path.split_once('?').map_or(path, |(p, _)| p);
    if method != "POST" || route.trim_end_matches('/') != "/v2/email/outbound-emails" {
        return Err(format!(
            "SES v2 {method} {path} is not mapped to IAM (add it to iam::sesv2_calls)"
        ));
    }
    let address = mail_address(text(body, "FromEmailAddress")?)?;
    let mut resources = vec![match body.get("FromEmailAddressIdentityArn") {
        Some(_) => text(body, "FromEmailAddressIdentityArn")?.to_string(),
        None => account.arn("ses", &format!("identity/{address}")),
    }];
    if body.get("ConfigurationSetName").is_some() {
        let set = text(body, "ConfigurationSetName")?;
        resources.push(account.arn("ses", &format!("configuration-set/{set}")));
    }
    Ok(resources
        .into_iter()
        .map(|resource| {
            let mut call = Call::new("ses:SendEmail", resource);
            call.context
                .insert("ses:FromAddress".into(), vec![address.clone()]);
            call.context
                .insert("ses:ApiVersion".into(), vec!["2".into()]);
            call
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROLE: &str = "arn:aws:iam::123456789012:role/SsoAcsRole";
    const OTHER: &str = "arn:aws:iam::123456789012:role/Other";
    const BOOKS: &str = "arn:aws:dynamodb:us-west-2:123456789012:table/Books";

    fn stmt(v: Value) -> Statement {
        Statement::from_json(&v, "test").expect("statement")
    }

    fn req(action: &str, resource: &str) -> Request {
        Request {
            principal_arn: ROLE.into(),
            action: action.into(),
            resource: resource.into(),
            context: BTreeMap::new(),
        }
    }

    fn allowed(identity: &[Value], r: &Request) -> bool {
        let identity: Vec<_> = identity.iter().cloned().map(stmt).collect();
        evaluate(&identity, &[], r).is_allowed()
    }

    fn account() -> Account {
        Account {
            partition: "aws".into(),
            region: "eu-west-1".into(),
            account: "123456789012".into(),
            secrets: vec![(
                "identity/cookie".into(),
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:identity/cookie-AbC123"
                    .into(),
            )],
        }
    }

    fn pairs(calls: &[Call]) -> Vec<(&str, &str)> {
        calls
            .iter()
            .map(|c| (c.action.as_str(), c.resource.as_str()))
            .collect()
    }

    #[test]
    fn explicit_deny_wins_over_an_allow() {
        let allow = stmt(json!({"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}));
        let mut deny =
            stmt(json!({"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": BOOKS}));
        deny.source = "the deny".into();
        let d = evaluate(&[allow, deny], &[], &req("dynamodb:DeleteItem", BOOKS));
        assert_eq!(
            d,
            Decision::ExplicitDeny {
                by: "the deny".into()
            }
        );
    }

    #[test]
    fn no_matching_statement_is_an_implicit_deny() {
        assert_eq!(
            evaluate(&[], &[], &req("dynamodb:GetItem", BOOKS)),
            Decision::ImplicitDeny
        );
        let other = json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"});
        assert!(!allowed(&[other], &req("dynamodb:GetItem", BOOKS)));
    }

    #[test]
    fn action_wildcard_get_star_matches_get_item_not_put_item() {
        let s = json!({"Effect": "Allow", "Action": "dynamodb:Get*", "Resource": BOOKS});
        assert!(allowed(
            std::slice::from_ref(&s),
            &req("dynamodb:GetItem", BOOKS)
        ));
        assert!(!allowed(&[s], &req("dynamodb:PutItem", BOOKS)));
    }

    #[test]
    fn action_matching_ignores_case_and_resource_matching_does_not() {
        let s = json!({"Effect": "Allow", "Action": "DynamoDB:getitem", "Resource": BOOKS});
        assert!(allowed(
            std::slice::from_ref(&s),
            &req("dynamodb:GetItem", BOOKS)
        ));
        assert!(!allowed(
            &[s],
            &req("dynamodb:GetItem", &BOOKS.replace("Books", "books"))
        ));
    }

    #[test]
    fn a_table_grant_does_not_reach_its_indexes_and_index_star_does() {
        let index = format!("{BOOKS}/index/ByAuthor");
        let table = json!({"Effect": "Allow", "Action": "dynamodb:Query", "Resource": BOOKS});
        assert!(!allowed(&[table], &req("dynamodb:Query", &index)));
        let indexes = json!({"Effect": "Allow", "Action": "dynamodb:Query",
            "Resource": format!("{BOOKS}/index/*")});
        assert!(allowed(
            std::slice::from_ref(&indexes),
            &req("dynamodb:Query", &index)
        ));
        assert!(!allowed(&[indexes], &req("dynamodb:Query", BOOKS)));
    }

    #[test]
    fn not_action_allows_everything_but_the_listed_service() {
        let s = json!({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"});
        assert!(allowed(
            std::slice::from_ref(&s),
            &req("s3:ListBucket", "arn:aws:s3:::b")
        ));
        assert!(!allowed(
            &[s],
            &req("iam:CreateUser", "arn:aws:iam::123456789012:user/u")
        ));
    }

    #[test]
    fn arn_not_equals_principal_deny_in_a_resource_policy_spares_only_the_listed_principal() {
        let secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:s-AbC123";
        let identity = [stmt(json!({"Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue", "Resource": secret}))];
        let resource = [stmt(
            json!({"Sid": "OnlyWhoUsesIt", "Effect": "Deny", "Principal": "*",
            "Action": "secretsmanager:GetSecretValue", "Resource": "*",
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": [ROLE]}}}),
        )];
        let mut r = req("secretsmanager:GetSecretValue", secret);
        assert!(evaluate(&identity, &resource, &r).is_allowed());
        r.principal_arn = OTHER.into();
        assert!(matches!(
            evaluate(&identity, &resource, &r),
            Decision::ExplicitDeny { .. }
        ));
    }

    #[test]
    fn a_resource_policy_allow_needs_a_matching_principal() {
        let allow = |p: Value| {
            stmt(
                json!({"Effect": "Allow", "Principal": p, "Action": "secretsmanager:*",
                "Resource": "*"}),
            )
        };
        let r = req("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:x");
        assert!(evaluate(&[], &[allow(json!({"AWS": ROLE}))], &r).is_allowed());
        assert!(!evaluate(&[], &[allow(json!({"AWS": [OTHER]}))], &r).is_allowed());
        // The account root delegates to the account's identity policies; it is not the role.
        assert!(!evaluate(&[], &[allow(json!({"AWS": "123456789012"}))], &r).is_allowed());
    }

    #[test]
    fn string_equals_from_address_allows_the_one_sender_only() {
        let s = json!({"Effect": "Allow", "Action": "ses:SendEmail",
            "Resource": "arn:aws:ses:eu-west-1:123456789012:identity/*",
            "Condition": {"StringEquals": {"ses:FromAddress": "login@example.com"}}});
        let send = |from: &str| {
            let body = json!({"FromEmailAddress": from});
            let calls = sesv2_calls(&account(), "POST", "/v2/email/outbound-emails", &body);
            calls.expect("calls")[0].request(ROLE)
        };
        assert!(allowed(
            std::slice::from_ref(&s),
            &send("Login <login@example.com>")
        ));
        assert!(!allowed(&[s], &send("admin@example.com")));
    }

    #[test]
    fn a_missing_context_key_fails_string_equals_and_passes_its_negation_and_if_exists() {
        let with = |op: &str| {
            json!({"Effect": "Allow", "Action": "ses:SendEmail", "Resource": "*",
                "Condition": {op: {"ses:FromAddress": "a@example.com"}}})
        };
        let r = req(
            "ses:SendEmail",
            "arn:aws:ses:eu-west-1:123456789012:identity/a",
        );
        assert!(!allowed(&[with("StringEquals")], &r));
        assert!(!allowed(&[with("ForAnyValue:StringEquals")], &r));
        assert!(allowed(&[with("StringNotEquals")], &r));
        assert!(allowed(&[with("StringEqualsIfExists")], &r));
        assert!(allowed(&[with("ForAllValues:StringEquals")], &r));
    }

    #[test]
    fn keys_under_one_operator_are_anded_and_values_of_a_key_ored() {
        let s = json!({"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"StringLike": {"k1": ["a*", "b*"], "k2": "x"}, "Bool": {"k3": true}}});
        let mut r = req("s3:GetObject", "arn:aws:s3:::b/o");
        r.context.insert("k1".into(), vec!["bee".into()]);
        r.context.insert("K2".into(), vec!["x".into()]);
        r.context.insert("k3".into(), vec!["true".into()]);
        assert!(allowed(std::slice::from_ref(&s), &r));
        r.context.insert("k1".into(), vec!["cee".into()]);
        assert!(!allowed(&[s], &r));
    }

    #[test]
    fn arn_like_wildcards_stay_within_one_arn_part() {
        let c = |pattern: &str| {
            stmt(json!({"Effect": "Allow", "Action": "*", "Resource": "*",
                "Condition": {"ArnLike": {"aws:PrincipalArn": pattern}}}))
        };
        let r = req("s3:GetObject", "arn:aws:s3:::b/o");
        assert!(evaluate(&[c("arn:aws:iam::*:role/Sso*")], &[], &r).is_allowed());
        assert!(!evaluate(&[c("arn:aws:iam:*:role/Sso*")], &[], &r).is_allowed());
    }

    #[test]
    fn unknown_condition_operators_and_keys_are_refused_at_parse_time() {
        let base = json!({"Effect": "Allow", "Action": "*", "Resource": "*"});
        let with = |k: &str, v: Value| {
            let mut s = base.clone();
            s[k] = v;
            Statement::from_json(&s, "t")
        };
        let bad_op = with(
            "Condition",
            json!({"DateGreaterThan": {"aws:CurrentTime": "2020"}}),
        );
        assert!(bad_op.expect_err("refused").contains("DateGreaterThan"));
        assert!(with("Actions", json!("s3:*")).is_err());
        assert!(with("Principal", json!({"Federated": "x"})).is_err());
        assert!(with("NotAction", json!("iam:*")).is_err());
        assert!(with("Resource", json!("arn:aws:s3:::${aws:username}")).is_err());
        assert!(with("Action", json!([])).is_err());
        assert!(with("Effect", json!("allow")).is_err());
    }

    #[test]
    fn statement_grants_pair_each_action_with_each_resource() {
        let s = stmt(
            json!({"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Query"],
            "NotResource": [BOOKS]}),
        );
        let grants = statement_grants(&s);
        assert_eq!(grants.len(), 2);
        let (action, resource) = &grants[1];
        let other = BOOKS.replace("Books", "Films");
        assert!(pair_matches(
            action,
            resource,
            &req("dynamodb:query", &other)
        ));
        assert!(!pair_matches(
            action,
            resource,
            &req("dynamodb:Query", BOOKS)
        ));
        let deny = stmt(json!({"Effect": "Deny", "Action": "*", "Resource": "*"}));
        assert!(statement_grants(&deny).is_empty());
    }

    #[test]
    fn transact_write_items_are_authorized_per_item() {
        let body = json!({"TransactItems": [
            {"Put": {"TableName": "once", "Item": {}}},
            {"Put": {"TableName": "once", "Item": {}}},
            {"Delete": {"TableName": "sessions", "Key": {}}},
            {"Update": {"TableName": "once", "Key": {}}},
            {"ConditionCheck": {"TableName": "accounts", "Key": {}}},
        ]});
        let calls = dynamodb_calls(&account(), "TransactWriteItems", &body).expect("calls");
        let t = "arn:aws:dynamodb:eu-west-1:123456789012:table/";
        let (once, sessions, accounts) = (
            format!("{t}once"),
            format!("{t}sessions"),
            format!("{t}accounts"),
        );
        let (once, sessions, accounts) = (once.as_str(), sessions.as_str(), accounts.as_str());
        assert_eq!(
            pairs(&calls),
            [
                ("dynamodb:PutItem", once),
                ("dynamodb:PutItem", once),
                ("dynamodb:DeleteItem", sessions),
                ("dynamodb:UpdateItem", once),
                ("dynamodb:ConditionCheckItem", accounts),
            ]
        );
        let get = json!({"TransactItems": [{"Get": {"TableName": "once"}}]});
        let calls = dynamodb_calls(&account(), "TransactGetItems", &get).expect("calls");
        assert_eq!(pairs(&calls), [("dynamodb:GetItem", once)]);
        let bad = json!({"TransactItems": [{"Get": {"TableName": "once"}}]});
        assert!(dynamodb_calls(&account(), "TransactWriteItems", &bad).is_err());
    }

    #[test]
    fn query_on_an_index_is_authorized_on_the_index_arn() {
        let t = "arn:aws:dynamodb:eu-west-1:123456789012:table/accounts";
        let q = |body: Value| dynamodb_calls(&account(), "Query", &body).expect("calls");
        let calls = q(json!({"TableName": "accounts", "IndexName": "by-email"}));
        assert_eq!(
            pairs(&calls),
            [("dynamodb:Query", format!("{t}/index/by-email").as_str())]
        );
        assert_eq!(
            pairs(&q(json!({"TableName": "accounts"}))),
            [("dynamodb:Query", t)]
        );
        assert_eq!(pairs(&q(json!({"TableName": t}))), [("dynamodb:Query", t)]);
    }

    #[test]
    fn batches_are_one_call_per_table_and_list_tables_is_on_star() {
        let body = json!({"RequestItems": {"a": {"Keys": []}, "b": {"Keys": []}}});
        let calls = dynamodb_calls(&account(), "BatchGetItem", &body).expect("calls");
        let t = "arn:aws:dynamodb:eu-west-1:123456789012:table/";
        let (a, b) = (format!("{t}a"), format!("{t}b"));
        assert_eq!(
            pairs(&calls),
            [
                ("dynamodb:BatchGetItem", a.as_str()),
                ("dynamodb:BatchGetItem", b.as_str())
            ]
        );
        let list = dynamodb_calls(&account(), "ListTables", &json!({})).expect("calls");
        assert_eq!(pairs(&list), [("dynamodb:ListTables", "*")]);
    }

    #[test]
    fn an_unmapped_operation_is_refused() {
        let e = dynamodb_calls(&account(), "ExecuteStatement", &json!({})).expect_err("refused");
        assert!(e.contains("ExecuteStatement"));
        assert!(dynamodb_calls(&account(), "GetItem", &json!({})).is_err());
        assert!(secretsmanager_calls(&account(), "BatchGetSecretValue", &json!({})).is_err());
        let body = json!({"FromEmailAddress": "a@example.com"});
        assert!(sesv2_calls(&account(), "POST", "/v2/email/identities", &body).is_err());
        assert!(sesv2_calls(&account(), "POST", "/v2/email/outbound-emails", &json!({})).is_err());
    }

    #[test]
    fn a_secret_name_is_authorized_as_its_full_arn() {
        let get = |id: &str| {
            let body = json!({"SecretId": id});
            secretsmanager_calls(&account(), "GetSecretValue", &body).expect("calls")[0].clone()
        };
        let known = &account().secrets[0].1;
        assert_eq!(get("identity/cookie").resource, *known);
        assert_eq!(get(known).resource, *known);
        assert_eq!(
            get("identity/cookie").action,
            "secretsmanager:GetSecretValue"
        );
        let unknown = secretsmanager_calls(
            &account(),
            "GetSecretValue",
            &json!({"SecretId": "identity/new"}),
        );
        assert!(
            unknown.is_err(),
            "a name with no secret is refused, not guessed: {unknown:?}"
        );
        let list = secretsmanager_calls(&account(), "ListSecrets", &json!({})).expect("calls");
        assert_eq!(pairs(&list), [("secretsmanager:ListSecrets", "*")]);
    }

    #[test]
    fn ses_send_email_is_on_the_address_identity_and_the_configuration_set() {
        let body = json!({"FromEmailAddress": "\"Acme Login\" <login@example.com>",
            "ConfigurationSetName": "identity"});
        let calls =
            sesv2_calls(&account(), "POST", "/v2/email/outbound-emails", &body).expect("calls");
        let arn = "arn:aws:ses:eu-west-1:123456789012:";
        let (identity, set) = (
            format!("{arn}identity/login@example.com"),
            format!("{arn}configuration-set/identity"),
        );
        assert_eq!(
            pairs(&calls),
            [
                ("ses:SendEmail", identity.as_str()),
                ("ses:SendEmail", set.as_str())
            ]
        );
        for call in &calls {
            assert_eq!(call.context["ses:FromAddress"], ["login@example.com"]);
        }
    }
}
