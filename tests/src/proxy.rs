//! A loopback TCP proxy in front of DynamoDB Local that breaks what the test plans, the way a
//! network breaks: the store's real client (the AWS SDK with the service's own timeouts and
//! retries, `identity_shared::aws`) talks to it instead of DynamoDB Local.
//!
//! A plan names a DynamoDB operation (`PutItem`, `TransactWriteItems`, …, matched on the
//! request's `X-Amz-Target`) and what happens to its next request ([`Cut`]); or the proxy is
//! [`Proxy::down`], refusing every request until [`Proxy::up`]. It listens on 127.0.0.1 and
//! stops with the value.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What happens to a planned request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The connection is closed before the request reaches DynamoDB.
    Reset,
    /// DynamoDB gets the request and answers; the answer is dropped and the connection closed.
    AnswerLost,
    /// DynamoDB's answer is held this long before it is passed on.
    AnswerLate(Duration),
}

/// A plan's operation that matches any write (`PutItem`, `DeleteItem`, `UpdateItem`,
/// `TransactWriteItems`), whichever the store uses.
pub const WRITE: &str = "write";

/// One planned cut: the request of `operation` after `skip` more of them meets `cut`.
struct Plan {
    operation: String,
    skip: usize,
    cut: Cut,
}

#[derive(Default)]
struct Plans {
    next: Mutex<Vec<Plan>>,
    fired: AtomicUsize,
    /// Write requests seen (any of [`WRITE`]'s operations), cut or not.
    writes: AtomicUsize,
    down: AtomicBool,
}

/// Whether `chunk` (the start of an HTTP request) is a request of the DynamoDB operation
/// `op` ([`WRITE`]: any write).
fn is_operation(chunk: &[u8], op: &str) -> bool {
    let names: &[&str] = match op {
        WRITE => &["PutItem", "DeleteItem", "UpdateItem", "TransactWriteItems"],
        one => &[one],
    };
    names.iter().any(|name| {
        let target = format!("DynamoDB_20120810.{name}\r\n");
        chunk
            .windows(target.len())
            .any(|w| w.eq_ignore_ascii_case(target.as_bytes()))
    })
}

impl Plans {
    /// The cut planned for the request in `chunk`, if any (each plan fires once).
    fn for_request(&self, chunk: &[u8]) -> Option<Cut> {
        if is_operation(chunk, WRITE) {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        if self.down.load(Ordering::SeqCst) {
            return Some(Cut::Reset);
        }
        let mut next = self.next.lock().unwrap();
        let at = next
            .iter()
            .position(|p| is_operation(chunk, &p.operation))?;
        if next[at].skip > 0 {
            next[at].skip -= 1;
            return None;
        }
        self.fired.fetch_add(1, Ordering::SeqCst);
        Some(next.remove(at).cut)
    }
}

pub struct Proxy {
    /// `http://127.0.0.1:PORT`, for the SDK's endpoint.
    pub endpoint: String,
    plans: Arc<Plans>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Starts a proxy to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Proxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let plans = Arc::new(Plans::default());
        let task = tokio::spawn({
            let plans = plans.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let (plans, upstream) = (plans.clone(), upstream.clone());
                    tokio::spawn(async move {
                        if let Ok(server) = TcpStream::connect(&upstream).await {
                            relay(client, server, plans).await;
                        }
                    });
                }
            }
        });
        Proxy {
            endpoint,
            plans,
            task,
        }
    }

    /// The next request of `operation` meets `cut`.
    pub fn plan(&self, operation: &str, cut: Cut) {
        self.plan_after(operation, 0, cut);
    }

    /// The request of `operation` after the next `skip` ones meets `cut`.
    pub fn plan_after(&self, operation: &str, skip: usize, cut: Cut) {
        self.plans.next.lock().unwrap().push(Plan {
            operation: operation.to_string(),
            skip,
            cut,
        });
    }

    /// Write requests seen so far (retries included).
    pub fn writes(&self) -> usize {
        self.plans.writes.load(Ordering::SeqCst)
    }

    /// How many plans have fired.
    pub fn fired(&self) -> usize {
        self.plans.fired.load(Ordering::SeqCst)
    }

    /// Every request is refused (connection closed) until [`Proxy::up`].
    pub fn down(&self) {
        self.plans.down.store(true, Ordering::SeqCst);
    }

    pub fn up(&self) {
        self.plans.down.store(false, Ordering::SeqCst);
    }
}

/// Passes bytes both ways on one connection (HTTP/1.1 keep-alive: many requests, one at a
/// time), applying the cut planned for each request to it or to its answer.
async fn relay(client: TcpStream, server: TcpStream, plans: Arc<Plans>) {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    // The cut waiting for the answer to the request just forwarded.
    let armed: Arc<Mutex<Option<Cut>>> = Arc::default();
    let upstream = {
        let armed = armed.clone();
        async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match from_client.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                match plans.for_request(&buf[..n]) {
                    Some(Cut::Reset) => return,
                    Some(cut) => *armed.lock().unwrap() = Some(cut),
                    None => {}
                }
                if to_server.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    };
    let downstream = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from_server.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let cut = armed.lock().unwrap().take();
            match cut {
                Some(Cut::AnswerLost) => return,
                Some(Cut::AnswerLate(d)) => tokio::time::sleep(d).await,
                _ => {}
            }
            if to_client.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    // Either side ending ends both: dropping the halves closes the connections.
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

/// A store on fresh DynamoDB Local tables reached through a new proxy, with the service's
/// own SDK settings (timeouts, retries); `None` when the services are skipped.
pub async fn proxied_store() -> Option<(
    identity_shared::store::Store,
    Proxy,
    identity_shared::clock::FixedClock,
)> {
    let endpoint = crate::dynamodb_endpoint_or_skip()?;
    let proxy = Proxy::start(&endpoint).await;
    let sdk = crate::service_sdk_config(&proxy.endpoint).await;
    let prefix = format!("f{}-", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let db = identity_shared::store::dynamodb::DynamoDb::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        prefix,
    );
    db.create_tables().await.expect("tables");
    let clock = identity_shared::clock::FixedClock::at(crate::real_now());
    Some((
        identity_shared::store::Store::new(Arc::new(db), Arc::new(clock.clone())),
        proxy,
        clock,
    ))
}
