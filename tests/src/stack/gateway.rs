//! API Gateway's HTTP API in front of the bootstraps: a loopback listener that routes exactly
//! the routes of `template.yaml`, turns each request into the payload-2.0 event API Gateway
//! sends (cookies apart, header names lower-cased and repeats comma-joined, `rawQueryString`
//! beside comma-joined `queryStringParameters`, the body base64-encoded unless it is text,
//! `requestContext.http.sourceIp` from the connection), and the function's answer back into
//! HTTP (each of `cookies` its own `Set-Cookie`). What API Gateway answers itself, it answers
//! here the same way: 404 for a route the API does not have, 413 for a body over 10 MB, 500
//! when the function fails or runs past its timeout (the instance is then replaced, as Lambda
//! replaces a timed-out execution environment).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use super::Judge;
use super::iam_gate::Principal;
use crate::runtime_api::Bootstrap;
use crate::template::Route;

/// API Gateway's payload limit for HTTP APIs.
pub const MAX_BODY: usize = 10 * 1024 * 1024;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// How many execution environments a function may have at once (Lambda scales out; two
/// cores here do not).
const MAX_INSTANCES: usize = 3;

/// One function: its bootstrap, its timeout, its running execution environments.
pub struct Function {
    pub logical_id: String,
    pub bootstrap: PathBuf,
    pub timeout: Duration,
    instances: tokio::sync::Mutex<Vec<Shared>>,
}

type Shared = Arc<tokio::sync::Mutex<Instance>>;

pub struct Instance {
    pub bootstrap: Bootstrap,
    pub principal: Arc<Principal>,
}

impl Function {
    pub fn new(logical_id: &str, bootstrap: PathBuf, timeout: Duration) -> Function {
        Function {
            logical_id: logical_id.to_string(),
            bootstrap,
            timeout,
            instances: tokio::sync::Mutex::new(Vec::new()),
        }
    }

    /// A new execution environment: the template's environment, its own access key.
    pub async fn start_instance(&self, judge: &Judge) -> Shared {
        let (env, principal) = judge.instance_environment(&self.logical_id);
        let bootstrap = Bootstrap::start(&self.logical_id, &self.bootstrap, &[], &env).await;
        let instance = Arc::new(tokio::sync::Mutex::new(Instance {
            bootstrap,
            principal,
        }));
        self.instances.lock().await.push(instance.clone());
        instance
    }

    /// The process ids of its execution environments.
    pub async fn pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for i in self.instances.lock().await.iter() {
            if let Ok(i) = i.try_lock() {
                pids.push(i.bootstrap.pid());
            }
        }
        pids
    }

    /// A free instance: an idle one, a new one while there are fewer than the most
    /// allowed, or else the first to be free.
    async fn instance(&self, judge: &Judge) -> (Shared, tokio::sync::OwnedMutexGuard<Instance>) {
        let first = {
            let instances = self.instances.lock().await;
            for i in instances.iter() {
                if let Ok(guard) = i.clone().try_lock_owned() {
                    return (i.clone(), guard);
                }
            }
            (instances.len() >= MAX_INSTANCES).then(|| instances[0].clone())
        };
        let i = match first {
            Some(i) => i,
            None => self.start_instance(judge).await,
        };
        let guard = i.clone().lock_owned().await;
        (i, guard)
    }

    /// Invokes the function with one event: its answer, or `None` when the invocation
    /// failed (an error, a crash, or its timeout).
    pub async fn invoke(&self, judge: &Judge, route: &str, event: &Value) -> Option<Vec<u8>> {
        let (shared, instance) = self.instance(judge).await;
        *instance.principal.route.lock().unwrap() = route.to_string();
        let result = instance.bootstrap.api.invoke(event, self.timeout).await;
        *instance.principal.route.lock().unwrap() = "idle".into();
        match result {
            Ok(body) => Some(body),
            Err(e) => {
                eprintln!(
                    "local-stack: {} failed on {route}: {e}; its output:\n{}",
                    self.logical_id,
                    instance.bootstrap.output()
                );
                // A crashed or timed-out environment is not used again (dropping the last
                // reference kills its process).
                self.instances
                    .lock()
                    .await
                    .retain(|i| !Arc::ptr_eq(i, &shared));
                None
            }
        }
    }

    /// Everything its instances printed.
    pub async fn output(&self) -> String {
        let mut out = String::new();
        for i in self.instances.lock().await.iter() {
            if let Ok(i) = i.try_lock() {
                out.push_str(&i.bootstrap.output());
            }
        }
        out
    }
}

pub struct Gateway {
    pub routes: Vec<Route>,
    pub functions: BTreeMap<String, Arc<Function>>,
    pub judge: Arc<Judge>,
}

fn gateway_answer(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "message": message }).to_string(),
    )
        .into_response()
}

/// Whether API Gateway passes a body of this type as text (else base64).
fn is_text(content_type: &str) -> bool {
    let t = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    t.starts_with("text/")
        || t == "application/json"
        || t.ends_with("+json")
        || t == "application/xml"
        || t.ends_with("+xml")
        || t == "application/javascript"
}

fn percent_decode(s: &str) -> String {
    identity_shared::http::fields::decode_component(s).unwrap_or_else(|| s.to_string())
}

/// `queryStringParameters` as API Gateway makes it: decoded, repeats comma-joined.
pub fn query_parameters(raw: &str) -> serde_json::Map<String, Value> {
    let mut out: serde_json::Map<String, Value> = serde_json::Map::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k), percent_decode(v));
        match out.get_mut(&k) {
            Some(Value::String(joined)) => {
                joined.push(',');
                joined.push_str(&v);
            }
            _ => {
                out.insert(k, Value::String(v));
            }
        }
    }
    out
}

/// One request as it reached the API.
pub struct Incoming<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: &'a str,
}

/// The payload-2.0 event for one request on `route` (with its path parameters).
pub fn event(route: &Route, params: &[(String, String)], r: &Incoming) -> Value {
    let Incoming {
        method,
        raw_path,
        raw_query,
        headers,
        body,
        source_ip,
    } = *r;
    let mut joined: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == header::COOKIE {
            cookies.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_string),
            );
            continue;
        }
        joined
            .entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let host = joined.get("host").cloned().unwrap_or_default();
    let user_agent = joined.get("user-agent").cloned().unwrap_or_default();
    joined.insert("x-forwarded-for".into(), source_ip.to_string());
    joined.insert("x-forwarded-proto".into(), "http".into());
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let mut e = json!({
        "version": "2.0",
        "routeKey": route.key(),
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": joined,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split('.').next().unwrap_or(&host),
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": user_agent,
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route.key(),
            "stage": "$default",
            "time": "07/Dec/2026:00:00:00 +0000",
            "timeEpoch": now.as_millis() as u64,
        },
        "isBase64Encoded": false,
    });
    if !cookies.is_empty() {
        e["cookies"] = json!(cookies);
    }
    let query = query_parameters(raw_query);
    if !query.is_empty() {
        e["queryStringParameters"] = Value::Object(query);
    }
    if !params.is_empty() {
        e["pathParameters"] = params
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(percent_decode(v))))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    if !body.is_empty() {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        match std::str::from_utf8(body) {
            Ok(text) if is_text(content_type) => e["body"] = text.into(),
            _ => {
                e["body"] = B64.encode(body).into();
                e["isBase64Encoded"] = true.into();
            }
        }
    }
    e
}

/// The function's answer as API Gateway sends it on: `None` when it is no valid answer.
pub fn http_answer(raw: &[u8]) -> Option<Response> {
    let v: Value = serde_json::from_slice(raw).ok()?;
    let status = StatusCode::from_u16(u16::try_from(v["statusCode"].as_u64()?).ok()?).ok()?;
    let body = match v["body"].as_str() {
        None => Vec::new(),
        Some(b) if v["isBase64Encoded"].as_bool() == Some(true) => B64.decode(b).ok()?,
        Some(b) => b.as_bytes().to_vec(),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let h = response.headers_mut();
    if let Some(headers) = v["headers"].as_object() {
        for (k, val) in headers {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).ok()?,
                HeaderValue::from_str(val.as_str()?).ok()?,
            );
        }
    }
    if let Some(multi) = v["multiValueHeaders"].as_object() {
        for (k, vals) in multi {
            let name = http::HeaderName::from_bytes(k.as_bytes()).ok()?;
            h.remove(&name);
            for val in vals.as_array()? {
                h.append(name.clone(), HeaderValue::from_str(val.as_str()?).ok()?);
            }
        }
    }
    for c in v["cookies"].as_array().into_iter().flatten() {
        h.append(header::SET_COOKIE, HeaderValue::from_str(c.as_str()?).ok()?);
    }
    Some(response)
}

async fn serve(
    State(g): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let method = parts.method.as_str().to_string();
    let raw_path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let Some((route, params)) = g
        .routes
        .iter()
        .find_map(|r| r.matches(&method, &raw_path).map(|p| (r, p)))
    else {
        return gateway_answer(StatusCode::NOT_FOUND, "Not Found");
    };
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return gateway_answer(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    };
    let source_ip = peer.ip().to_string();
    let e = event(
        route,
        &params,
        &Incoming {
            method: &method,
            raw_path: &raw_path,
            raw_query: &raw_query,
            headers: &parts.headers,
            body: &body,
            source_ip: &source_ip,
        },
    );
    let Some(function) = g.functions.get(&route.function) else {
        return gateway_answer(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    match function.invoke(&g.judge, &route.key(), &e).await {
        Some(raw) => http_answer(&raw).unwrap_or_else(|| {
            gateway_answer(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }),
        None => gateway_answer(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    }
}

/// Serves the gateway on `listener` until the task is aborted.
pub fn spawn(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
) -> tokio::task::JoinHandle<()> {
    let app = Router::new().fallback(serve).with_state(gateway);
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_query_parameters_are_comma_joined_and_decoded() {
        let q = query_parameters("scope=a%20b&scope=c&x=1+2&empty");
        assert_eq!(q["scope"], "a b,c");
        assert_eq!(q["empty"], "");
        assert_eq!(q.len(), 3);
    }

    #[test]
    fn a_form_body_is_base64_and_json_is_text() {
        assert!(!is_text("application/x-www-form-urlencoded"));
        assert!(is_text("application/json; charset=utf-8"));
        assert!(is_text("text/html"));
    }

    #[test]
    fn each_cookie_of_an_answer_becomes_its_own_set_cookie() {
        let raw = json!({
            "statusCode": 302,
            "headers": {"location": "/x", "content-type": "text/html"},
            "cookies": ["a=1; Path=/", "b=2; Path=/"],
            "body": "aGk=",
            "isBase64Encoded": true,
        });
        let r = http_answer(raw.to_string().as_bytes()).unwrap();
        assert_eq!(r.status(), 302);
        let cookies: Vec<_> = r.headers().get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1; Path=/", "b=2; Path=/"]);
        assert!(http_answer(b"not json").is_none());
    }
}
