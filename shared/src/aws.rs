//! The AWS SDK settings the store and the secrets use: timeouts and a retry budget that fit
//! one Lambda invocation (template.yaml: `Timeout: 10`).
//!
//! One operation (every attempt and the pauses between them) ends within
//! [`OPERATION_TIMEOUT`]; an attempt within [`ATTEMPT_TIMEOUT`]; a connection is made within
//! [`CONNECT_TIMEOUT`]. The SDK's standard retry mode retries throttling, timeouts and 5xx
//! with jittered exponential back-off, at most [`MAX_ATTEMPTS`] attempts, and draws each
//! retry from a client-wide quota, so a failing backend is not hammered. A request that makes
//! a few store calls after a failure still answers (a 503) well inside the function's time.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};

pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1_000);
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1_000);
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(2_500);
pub const MAX_ATTEMPTS: u32 = 3;
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(25);
pub const MAX_BACKOFF: Duration = Duration::from_millis(250);

/// The function timeout these settings are made for (template.yaml's Globals).
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(10);

pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

pub fn retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

/// The SDK's loader with the timeouts and retries above (tests add an endpoint to it).
pub fn loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts())
        .retry_config(retries())
}

/// The SDK's configuration from its usual environment (region, credentials, endpoints such
/// as `AWS_ENDPOINT_URL_DYNAMODB`), with the timeouts and retries above.
pub async fn sdk_config() -> SdkConfig {
    loader().load().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_fits_the_function_several_times_over() {
        // Attempts and back-off fit the operation's own bound...
        let worst = ATTEMPT_TIMEOUT * MAX_ATTEMPTS + MAX_BACKOFF * (MAX_ATTEMPTS - 1);
        assert!(
            OPERATION_TIMEOUT <= worst,
            "the operation bound is the binding one"
        );
        assert!(CONNECT_TIMEOUT <= ATTEMPT_TIMEOUT);
        // ...and a request that makes three store calls after a failure still has time to
        // answer.
        assert!(OPERATION_TIMEOUT * 3 < FUNCTION_TIMEOUT);
        let t = timeouts();
        assert_eq!(t.operation_timeout(), Some(OPERATION_TIMEOUT));
        assert_eq!(t.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(t.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert_eq!(retries().max_attempts(), MAX_ATTEMPTS);
    }
}
