//! The AWS SDK's budget (shared/src/aws.rs): a backend that accepts connections and never
//! answers makes a store call fail, after retrying, well inside the function's timeout; it
//! never hangs the invocation.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_dynamodb::config::{Credentials, Region};
use identity_shared::aws::{FUNCTION_TIMEOUT, MAX_ATTEMPTS};
use identity_shared::store::dynamodb::DynamoDb;
use identity_shared::store::{Store, StoreError, Table};

#[tokio::test]
async fn a_backend_that_never_answers_is_a_clean_error_before_the_function_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    // Accepts every connection, reads nothing, answers nothing, keeps it open.
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    let config = identity_shared::aws::loader()
        .endpoint_url(format!("http://{addr}"))
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .load()
        .await;
    let db = DynamoDb::new(aws_sdk_dynamodb::Client::new(&config), "budget-".into());
    let store = Store::new(Arc::new(db), identity_shared::clock::system());
    let read = tokio::time::timeout(
        FUNCTION_TIMEOUT,
        store.get_item(Table::Accounts, "email#a@example.com", "email"),
    )
    .await
    .expect("the call ends before the function's timeout");
    assert!(
        matches!(read, Err(StoreError::Unavailable(_))),
        "a clean 'unavailable': {read:?}"
    );
    let attempts = accepted.load(Ordering::SeqCst);
    assert!(
        (2..=MAX_ATTEMPTS as usize).contains(&attempts),
        "retried within the budget: {attempts} attempts"
    );
    silent.abort();
}
