//! IAM in front of the local stand-ins: a loopback HTTP proxy between the bootstraps and
//! DynamoDB Local or moto that judges every AWS call as IAM would, before passing it on.
//!
//! Each function instance signs its requests with its own access key ([`Principal`]); the
//! gate reads the key from the SigV4 `Authorization` header, turns the request into the IAM
//! requests AWS authorizes it as (`crate::iam`: a transaction is one request per item, a
//! query on an index is a request on `table/T/index/I`), and evaluates them against that
//! function's policy as `template.yaml` renders it and the resource's own policy (the
//! secrets'). A call any of whose requests is refused is answered as AWS answers it
//! (`AccessDeniedException`, in the service's protocol) and never reaches the stand-in.
//!
//! Every judged call is recorded with the function, the route it was serving and the test
//! that drove it: [`Recording`].

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::iam::{self, Account, Decision, Statement};

/// The access key the gate signs with towards the stand-in. DynamoDB Local keeps one
/// database per access key (it runs without `-sharedDb`), so every caller's requests are
/// passed on under the one key the operator (`identity admin`) and the tests use.
pub const UPSTREAM_KEY: &str = "test";

/// One running function instance as IAM sees it: its role, and what it is doing now.
pub struct Principal {
    pub function: String,
    pub instance: usize,
    pub role_arn: String,
    pub statements: Arc<Vec<Statement>>,
    /// The route key of the invocation it is serving (`init` between invocations).
    pub route: Mutex<String>,
}

/// One AWS call as the gate judged it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Judged {
    pub function: String,
    pub instance: usize,
    pub route: String,
    pub test: String,
    pub action: String,
    pub resource: String,
    pub allowed: bool,
    /// The statement that allowed or denied it ("implicit deny" when none matched).
    pub by: String,
}

/// Everything judged so far, shared by the gates of one stack.
#[derive(Default)]
pub struct Recording {
    pub calls: Mutex<Vec<Judged>>,
    /// The test driving the stack now (set through the stack's control endpoint).
    pub test: Mutex<String>,
}

/// Who may call what: the principals by access key and the resources' own policies.
pub struct Authority {
    pub account: Account,
    pub principals: Mutex<HashMap<String, Arc<Principal>>>,
    pub resource_policies: BTreeMap<String, Vec<Statement>>,
    pub recording: Arc<Recording>,
    /// Whether a refused call is refused (AWS's behaviour), or only recorded and passed on
    /// (`IDENTITY_STACK_IAM=record`: to list every grant a policy misses in one run).
    pub enforce: bool,
}

impl Authority {
    /// Judges the IAM requests of one call made by `who`; records each. The first
    /// refused request, if any.
    fn judge(&self, who: &Principal, calls: &[iam::Call]) -> Option<Judged> {
        let test = self.recording.test.lock().unwrap().clone();
        let route = who.route.lock().unwrap().clone();
        let mut refused = None;
        for call in calls {
            let request = iam::Request {
                principal_arn: who.role_arn.clone(),
                action: call.action.clone(),
                resource: call.resource.clone(),
                context: call.context.clone(),
            };
            let resource_policy = self
                .resource_policies
                .get(&call.resource)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let decision = iam::evaluate(&who.statements, resource_policy, &request);
            let (allowed, by) = match &decision {
                Decision::Allowed { by } => (true, by.clone()),
                Decision::ExplicitDeny { by } => (false, format!("explicit deny: {by}")),
                Decision::ImplicitDeny => (false, "implicit deny".to_string()),
            };
            let judged = Judged {
                function: who.function.clone(),
                instance: who.instance,
                route: route.clone(),
                test: test.clone(),
                action: call.action.clone(),
                resource: call.resource.clone(),
                allowed,
                by,
            };
            self.recording.calls.lock().unwrap().push(judged.clone());
            if !allowed && refused.is_none() {
                refused = Some(judged);
            }
        }
        refused
    }
}

/// The AWS service a request is for, by how it is addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    DynamoDb,
    SecretsManager,
    SesV2,
}

/// A gate on 127.0.0.1 in front of `upstream` (`http://127.0.0.1:PORT`).
pub struct Gate {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct GateState {
    upstream: String,
    authority: Arc<Authority>,
    client: Client<HttpConnector, http_body_util::Full<Bytes>>,
}

impl Gate {
    pub async fn start(upstream: &str, authority: Arc<Authority>) -> std::io::Result<Gate> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(GateState {
            upstream: upstream.trim_end_matches('/').to_string(),
            authority,
            client: Client::builder(TokioExecutor::new()).build_http(),
        });
        let app = Router::new().fallback(pass).with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Gate { addr, task })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The access key id of a SigV4 `Authorization` header.
fn access_key(authorization: &str) -> Option<&str> {
    let rest = &authorization[authorization.find("Credential=")? + "Credential=".len()..];
    rest.split('/').next().filter(|k| !k.is_empty())
}

/// The same header naming `key` instead.
fn with_access_key(authorization: &str, key: &str) -> Option<String> {
    let at = authorization.find("Credential=")? + "Credential=".len();
    let end = at + authorization[at..].find('/')?;
    Some(format!(
        "{}{key}{}",
        &authorization[..at],
        &authorization[end..]
    ))
}

fn denied(service: Service, who: &Principal, refused: &Judged) -> Response {
    let message = format!(
        "User: arn:aws:sts::{account}:assumed-role/{role}/{function} is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action",
        account = "123456789012",
        role = who.role_arn.rsplit('/').next().unwrap_or_default(),
        function = who.function,
        action = refused.action,
        resource = refused.resource,
    );
    let (status, content_type, body, error_header) = match service {
        Service::DynamoDb => (
            StatusCode::BAD_REQUEST,
            "application/x-amz-json-1.0",
            json!({"__type": "com.amazon.coral.service#AccessDeniedException", "Message": message}),
            None,
        ),
        Service::SecretsManager => (
            StatusCode::BAD_REQUEST,
            "application/x-amz-json-1.1",
            json!({"__type": "AccessDeniedException", "Message": message}),
            None,
        ),
        Service::SesV2 => (
            StatusCode::FORBIDDEN,
            "application/json",
            json!({"message": message}),
            Some("AccessDeniedException"),
        ),
    };
    let mut response = (
        status,
        [(header::CONTENT_TYPE, content_type)],
        body.to_string(),
    )
        .into_response();
    if let Some(e) = error_header {
        response
            .headers_mut()
            .insert("x-amzn-errortype", HeaderValue::from_static(e));
    }
    response
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, why.to_string()).into_response()
}

async fn pass(State(s): State<Arc<GateState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return refuse(StatusCode::BAD_REQUEST, "unreadable body");
    };
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    // Fail closed: a caller the gate does not know is nobody IAM would let through.
    let Some(who) = access_key(&authorization)
        .and_then(|k| s.authority.principals.lock().unwrap().get(k).cloned())
    else {
        return refuse(
            StatusCode::FORBIDDEN,
            "iam gate: unsigned request, or an access key of no function of this stack",
        );
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let json_body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return refuse(StatusCode::BAD_REQUEST, "iam gate: a body that is not JSON"),
        }
    };
    let account = &s.authority.account;
    let (service, calls) = if let Some(op) = target.strip_prefix("DynamoDB_20120810.") {
        (
            Service::DynamoDb,
            iam::dynamodb_calls(account, op, &json_body),
        )
    } else if let Some(op) = target.strip_prefix("secretsmanager.") {
        (
            Service::SecretsManager,
            iam::secretsmanager_calls(account, op, &json_body),
        )
    } else if parts.uri.path().starts_with("/v2/email/") {
        (
            Service::SesV2,
            iam::sesv2_calls(account, parts.method.as_str(), parts.uri.path(), &json_body),
        )
    } else {
        return refuse(
            StatusCode::FORBIDDEN,
            &format!(
                "iam gate: {} {} ({target}) is no call the gate knows how to judge",
                parts.method,
                parts.uri.path()
            ),
        );
    };
    let calls = match calls {
        Ok(c) => c,
        Err(e) => return refuse(StatusCode::FORBIDDEN, &format!("iam gate: {e}")),
    };
    if let Some(refused) = s.authority.judge(&who, &calls)
        && s.authority.enforce
    {
        return denied(service, &who, &refused);
    }
    forward(&s, parts, body, &authorization).await
}

async fn forward(
    s: &GateState,
    parts: http::request::Parts,
    body: Bytes,
    authorization: &str,
) -> Response {
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let Ok(uri) = format!("{}{path}", s.upstream).parse::<http::Uri>() else {
        return refuse(StatusCode::BAD_GATEWAY, "iam gate: bad upstream");
    };
    let mut out = http::Request::builder().method(parts.method).uri(uri);
    for (name, value) in &parts.headers {
        if name == header::HOST || name == header::AUTHORIZATION {
            continue;
        }
        out = out.header(name, value);
    }
    if let Some(a) = with_access_key(authorization, UPSTREAM_KEY) {
        out = out.header(header::AUTHORIZATION, a);
    }
    let Ok(out) = out.body(http_body_util::Full::new(body)) else {
        return refuse(StatusCode::BAD_GATEWAY, "iam gate: bad request");
    };
    match s.client.request(out).await {
        Ok(answer) => {
            let (parts, body) = answer.into_parts();
            match body.collect().await {
                Ok(b) => Response::from_parts(parts, Body::from(b.to_bytes())),
                Err(_) => refuse(StatusCode::BAD_GATEWAY, "iam gate: upstream answer lost"),
            }
        }
        Err(_) => refuse(StatusCode::BAD_GATEWAY, "iam gate: upstream unreachable"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_access_key_is_read_from_and_replaced_in_a_sigv4_header() {
        let h = "AWS4-HMAC-SHA256 Credential=AKIDSSO1/20261207/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=abc";
        assert_eq!(access_key(h), Some("AKIDSSO1"));
        assert_eq!(
            with_access_key(h, "test").as_deref(),
            Some(
                "AWS4-HMAC-SHA256 Credential=test/20261207/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=abc"
            )
        );
        assert_eq!(access_key("Bearer x"), None);
    }
}
