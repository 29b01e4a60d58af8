//! Times as the JSON APIs print them. The clock itself (injectable) is the caller's: every
//! decision here takes `now`.

/// RFC 3339 (UTC) for an epoch-seconds value, as the JSON APIs print times.
pub fn rfc3339(epoch_seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch_seconds)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
