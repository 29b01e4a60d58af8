//! Logging: JSON lines in Lambda, readable text locally, filtered by `RUST_LOG`.
//!
//! `RUST_LOG` is a comma-separated list of `level` and `target=level` directives (a bare
//! `target` means TRACE for it); targets not named log at the bare level, INFO by default.
//! Directives that are not of that shape (env_logger's span and field filters) are ignored:
//! the filter is `tracing_subscriber`'s `Targets`, which needs no regular expressions.
//!
//! Whatever `RUST_LOG` asks for, the runtime and SDK crates are held at DEBUG: at TRACE
//! they print raw invocation events and HTTP bodies, and ours carry SAML responses,
//! client secrets, assertions and keys.

use tracing::Subscriber;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::{FilterExt, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};

/// Crates that would log raw requests, responses or events below DEBUG.
const NEVER_TRACE: &[&str] = &[
    "lambda_runtime",
    "lambda_runtime_api_client",
    "lambda_http",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http",
    "aws_smithy_http_client",
    "aws_sdk_dynamodb",
    "aws_sdk_secretsmanager",
    "aws_config",
    // Request signing: its canonical requests carry session tokens.
    "aws_sigv4",
    "aws_runtime",
    "aws_credential_types",
    "aws_smithy_types",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
}

impl Format {
    /// JSON inside Lambda (`AWS_LAMBDA_FUNCTION_NAME` is set there), text elsewhere.
    pub fn detect() -> Self {
        if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
            Format::Json
        } else {
            Format::Text
        }
    }
}

/// `directives` (RUST_LOG) as targets and levels, unreadable directives left out.
fn targets(directives: &str) -> Targets {
    directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !d.contains(['[', '{', '/']))
        .fold(
            Targets::new().with_default(LevelFilter::INFO),
            |t, d| match d.split_once('=') {
                Some((target, level)) => match level.parse::<LevelFilter>() {
                    Ok(level) if !target.is_empty() => t.with_target(target, level),
                    _ => t,
                },
                None => match d.parse::<LevelFilter>() {
                    Ok(level) => t.with_default(level),
                    Err(_) => t.with_target(d, LevelFilter::TRACE),
                },
            },
        )
}

/// The filter: `directives` (RUST_LOG syntax), with the noisy crates clamped to DEBUG.
fn filter<S: Subscriber + for<'a> LookupSpan<'a>>(
    directives: &str,
) -> impl tracing_subscriber::layer::Filter<S> + use<S> {
    let clamp = NEVER_TRACE.iter().fold(
        Targets::new().with_default(LevelFilter::TRACE),
        |t, target| t.with_target(*target, LevelFilter::DEBUG),
    );
    targets(directives).and(clamp)
}

/// The formatting layer, writing to `writer`.
pub fn layer<S, W>(format: Format, directives: &str, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        Format::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .with_filter(filter(directives))
            .boxed(),
        Format::Text => tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(writer)
            .with_filter(filter(directives))
            .boxed(),
    }
}

/// A subscriber as the processes use it, writing to `writer` (tests capture with this).
pub fn subscriber<W>(format: Format, directives: &str, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    Registry::default().with(layer(format, directives, writer))
}

/// Installs the process-wide subscriber: stdout (CloudWatch in Lambda), `RUST_LOG` or
/// `info`.
pub fn init() {
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let _ = tracing::subscriber::set_global_default(subscriber(
        Format::detect(),
        &directives,
        std::io::stdout,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn runtime_trace_is_held_back_even_when_asked_for() {
        let buf = Buf::default();
        let w = buf.clone();
        let sub = subscriber(Format::Json, "trace,lambda_runtime=trace", move || {
            w.clone()
        });
        tracing::subscriber::with_default(sub, || {
            tracing::trace!(target: "lambda_runtime", "raw event body");
            tracing::debug!(target: "lambda_runtime", "runtime debug");
            tracing::trace!(target: "identity_shared", "our trace");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(!out.contains("raw event body"), "{out}");
        assert!(out.contains("runtime debug"));
        assert!(out.contains("our trace"));
        for line in out.lines() {
            serde_json::from_str::<serde_json::Value>(line).expect("JSON lines");
        }
    }

    #[test]
    fn rust_log_directives_set_the_default_and_per_target_levels() {
        let buf = Buf::default();
        let w = buf.clone();
        let sub = subscriber(
            Format::Text,
            "warn, identity_shared=debug,,oauth_token=bogus,sso_acs[span]=trace,addon_sso",
            move || w.clone(),
        );
        tracing::subscriber::with_default(sub, || {
            tracing::info!(target: "jwt_grant", "other info");
            tracing::warn!(target: "jwt_grant", "other warn");
            tracing::debug!(target: "identity_shared", "shared debug");
            tracing::trace!(target: "identity_shared", "shared trace");
            tracing::info!(target: "oauth_token", "token info");
            tracing::trace!(target: "sso_acs", "acs trace");
            tracing::trace!(target: "addon_sso", "addon trace");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(!out.contains("other info"), "{out}");
        assert!(out.contains("other warn"), "{out}");
        assert!(out.contains("shared debug"), "{out}");
        assert!(!out.contains("shared trace"), "{out}");
        // A directive with an unreadable level or a span filter is left out: the default holds.
        assert!(!out.contains("token info"), "{out}");
        assert!(!out.contains("acs trace"), "{out}");
        // A bare target is TRACE for that target.
        assert!(out.contains("addon trace"), "{out}");
    }

    #[test]
    fn no_directives_means_info() {
        let buf = Buf::default();
        let w = buf.clone();
        let sub = subscriber(Format::Text, "", move || w.clone());
        tracing::subscriber::with_default(sub, || {
            tracing::debug!(target: "identity_shared", "a debug line");
            tracing::info!(target: "identity_shared", "an info line");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(!out.contains("a debug line"), "{out}");
        assert!(out.contains("an info line"), "{out}");
    }
}
