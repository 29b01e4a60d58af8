//! A team administrator's API, so an organisation does not need the operator:
//!
//! - `GET /teams/{team}/members`: every member with role and SSO status (`under_sso`,
//!   `not_under_sso`, `pending`, `blocked`), as `identity admin team members` shows it.
//! - `PUT /teams/{team}/sso` `{"default_role"}`: the role SSO gives newcomers and
//!   collaborators (`admin`, `member`, `collaborator`; the seeds' "team's SSO settings").
//!
//! Bearer (an access token for this issuer or an API key) whose account is an admin of the
//! team, read from the store now: reading needs `read`, `read-protected` or `global`,
//! changing `write`, `write-protected` or `global`. Someone who is not a member gets 404
//! (a team's existence is not revealed), a member who is not an admin 403.

use axum::Json;
use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use identity_shared::AppState;
use identity_shared::http::bearer::{self, Audience, Denied};
use identity_shared::http::oauth::no_store;
use identity_shared::http::{Internal, JsonError};
use identity_shared::orgs::{self, OrgError, Orgs, Team, TeamRole};
use serde::Deserialize;

const READ_SCOPES: [&str; 3] = ["read", "read-protected", "global"];
const WRITE_SCOPES: [&str; 3] = ["write", "write-protected", "global"];

enum Refused {
    Denied(Denied),
    Error(JsonError),
}

impl From<Denied> for Refused {
    fn from(d: Denied) -> Self {
        Refused::Denied(d)
    }
}

impl From<Internal> for Refused {
    fn from(e: Internal) -> Self {
        Refused::Error(e.json())
    }
}

fn store_failure(e: OrgError) -> Refused {
    Internal::new("team read", e).into()
}

fn answer(result: Result<serde_json::Value, Refused>) -> Response {
    match result {
        Ok(body) => (StatusCode::OK, no_store(), Json(body)).into_response(),
        Err(Refused::Denied(d)) => d.into_response(),
        Err(Refused::Error(e)) => e.into_response(),
    }
}

/// The team (by name or id) when the caller is one of its admins.
async fn team_of_admin(
    state: &AppState,
    headers: &HeaderMap,
    team_ref: &str,
    scopes: &[&'static str],
) -> Result<Team, Refused> {
    let (caller, _) = bearer::authenticate(state, headers, Audience::Issuer, scopes).await?;
    let not_found = || {
        Refused::Error(JsonError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such team, or you are not a member of it",
        ))
    };
    let team = match state
        .store
        .team_by_name(team_ref)
        .await
        .map_err(store_failure)?
    {
        Some(t) => t,
        None => state
            .store
            .team(team_ref)
            .await
            .map_err(store_failure)?
            .ok_or_else(not_found)?,
    };
    match state
        .store
        .team_role_of(&team.id, &caller.sub)
        .await
        .map_err(store_failure)?
    {
        Some(TeamRole::Admin) => Ok(team),
        Some(_) => Err(Refused::Error(JsonError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only the team's admins can do this",
        ))),
        None => Err(not_found()),
    }
}

/// `GET /teams/{team}/members`.
pub async fn members(state: &AppState, headers: &HeaderMap, team_ref: &str) -> Response {
    answer(
        async {
            let team = team_of_admin(state, headers, team_ref, &READ_SCOPES).await?;
            let view = orgs::team_view(&state.store, &team)
                .await
                .map_err(store_failure)?;
            Ok(serde_json::json!({ "team": team.name, "members": view }))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SsoSettings {
    default_role: String,
}

/// `PUT /teams/{team}/sso`.
pub async fn set_sso(
    state: &AppState,
    headers: &HeaderMap,
    team_ref: &str,
    body: &Bytes,
) -> Response {
    answer(
        async {
            let team = team_of_admin(state, headers, team_ref, &WRITE_SCOPES).await?;
            let role = serde_json::from_slice::<SsoSettings>(body)
                .ok()
                .and_then(|s| TeamRole::parse(&s.default_role))
                .ok_or_else(|| {
                    Refused::Error(JsonError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "the body must be {\"default_role\": \"admin\" | \"member\" | \"collaborator\"}",
                    ))
                })?;
            let team = state
                .store
                .set_team_default_role(&team, role)
                .await
                .map_err(store_failure)?;
            tracing::info!(team = %team.id, role = role.as_str(), "team SSO default role set by a team admin");
            Ok(serde_json::json!({ "team": team.name, "default_role": team.default_role }))
        }
        .await,
    )
}
