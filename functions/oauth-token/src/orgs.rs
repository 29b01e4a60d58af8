//! An organisation administrator's API, so an organisation does not need the operator:
//!
//! - `GET /teams/{team}/members`, `GET /enterprises/{enterprise}/members`: every member with
//!   role (or permissions) and SSO status (`under_sso`, `not_under_sso`, `pending`,
//!   `blocked`), as `identity admin team members` shows it.
//! - `POST /teams/{team}/members/{email}/block` and `…/unblock` (and the same under
//!   `/enterprises/{enterprise}`): blocks one of the organisation's SSO people (their
//!   sessions, grants, tokens and API keys end; sign-in shows that the organisation blocked
//!   it), or lifts a block the organisation made (`identity_core::org::may_block`).
//! - `PUT /teams/{team}/sso` `{"default_role"}`: the role SSO gives newcomers and
//!   collaborators (`admin`, `member`, `collaborator`; the seeds' "team's SSO settings").
//!
//! Bearer (an access token for this issuer or an API key) whose account administers the
//! organisation, read from the store now: a team's admins, an enterprise account's members
//! holding `manage`. Reading needs `read`, `read-protected` or `global`, changing `write`,
//! `write-protected` or `global`. Someone who is not a member gets 404 (an organisation's
//! existence is not revealed), a member who is not an administrator 403.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post, put};
use http::{HeaderMap, StatusCode};
use identity_shared::AppState;
use identity_shared::accounts::{Accounts, Email};
use identity_shared::http::Internal;
use identity_shared::http::bearer::{self, Audience};
use identity_shared::orgs::{BlockError, Org, OrgError, Orgs, Standing, TeamRole};
use serde::Deserialize;

use crate::refused::{Refused, answer};

const READ_SCOPES: [&str; 3] = ["read", "read-protected", "global"];
const WRITE_SCOPES: [&str; 3] = ["write", "write-protected", "global"];

/// The routes, for `oauth-token`'s router.
pub fn routes() -> Router<AppState> {
    async fn list(kind: Kind, s: AppState, name: String, h: HeaderMap) -> Response {
        members(&s, &h, kind, &name).await
    }
    async fn change(
        kind: Kind,
        s: AppState,
        (name, email): (String, String),
        h: HeaderMap,
        on: bool,
    ) -> Response {
        block(&s, &h, kind, &name, &email, on).await
    }
    let mut router = Router::new().route(
        "/teams/{org}/sso",
        put(
            |State(s): State<AppState>, Path(name): Path<String>, h: HeaderMap, body: Bytes| async move {
                set_sso(&s, &h, &name, &body).await
            },
        ),
    );
    for (prefix, kind) in [("/teams", Kind::Team), ("/enterprises", Kind::Enterprise)] {
        router = router
            .route(
                &format!("{prefix}/{{org}}/members"),
                get(
                    move |State(s): State<AppState>, Path(name): Path<String>, h: HeaderMap| {
                        list(kind, s, name, h)
                    },
                ),
            )
            .route(
                &format!("{prefix}/{{org}}/members/{{email}}/block"),
                post(
                    move |State(s): State<AppState>,
                          Path(p): Path<(String, String)>,
                          h: HeaderMap| { change(kind, s, p, h, true) },
                ),
            )
            .route(
                &format!("{prefix}/{{org}}/members/{{email}}/unblock"),
                post(
                    move |State(s): State<AppState>,
                          Path(p): Path<(String, String)>,
                          h: HeaderMap| { change(kind, s, p, h, false) },
                ),
            );
    }
    router
}

/// Which kind of organisation a route names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Team,
    Enterprise,
}

fn store_failure(e: OrgError) -> Refused {
    Internal::new("organisation read", e).into()
}

async fn find(state: &AppState, kind: Kind, name_or_id: &str) -> Result<Option<Org>, Refused> {
    let store = &state.store;
    Ok(match kind {
        Kind::Team => match store
            .team_by_name(name_or_id)
            .await
            .map_err(store_failure)?
        {
            Some(t) => Some(Org::Team(t)),
            None => store
                .team(name_or_id)
                .await
                .map_err(store_failure)?
                .map(Org::Team),
        },
        Kind::Enterprise => match store
            .enterprise_by_name(name_or_id)
            .await
            .map_err(store_failure)?
        {
            Some(e) => Some(Org::Enterprise(e)),
            None => store
                .enterprise(name_or_id)
                .await
                .map_err(store_failure)?
                .map(Org::Enterprise),
        },
    })
}

/// The organisation when the caller administers it.
async fn org_of_admin(
    state: &AppState,
    headers: &HeaderMap,
    kind: Kind,
    name_or_id: &str,
    scopes: &[&'static str],
) -> Result<Org, Refused> {
    let (caller, _) = bearer::authenticate(state, headers, Audience::Issuer, scopes).await?;
    let not_found = || {
        Refused::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such organisation, or you are not a member of it",
        )
    };
    let org = find(state, kind, name_or_id).await?.ok_or_else(not_found)?;
    match org
        .standing(&state.store, &caller.sub)
        .await
        .map_err(store_failure)?
    {
        Standing::Administrator => Ok(org),
        Standing::Member => Err(Refused::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only the organisation's administrators can do this",
        )),
        Standing::Outsider => Err(not_found()),
    }
}

/// `GET /teams/{team}/members`, `GET /enterprises/{enterprise}/members`.
pub async fn members(state: &AppState, headers: &HeaderMap, kind: Kind, name: &str) -> Response {
    answer(
        async {
            let org = org_of_admin(state, headers, kind, name, &READ_SCOPES).await?;
            let view = org.view(&state.store).await.map_err(store_failure)?;
            let (key, name) = match &org {
                Org::Team(t) => ("team", t.name.clone()),
                Org::Enterprise(e) => ("enterprise", e.name.clone()),
            };
            Ok((
                StatusCode::OK,
                serde_json::json!({ key: name, "members": view }),
            ))
        }
        .await,
    )
}

/// `POST …/members/{email}/block` (`block`) and `…/unblock`.
pub async fn block(
    state: &AppState,
    headers: &HeaderMap,
    kind: Kind,
    name: &str,
    email: &str,
    block: bool,
) -> Response {
    answer(
        async {
            let org = org_of_admin(state, headers, kind, name, &WRITE_SCOPES).await?;
            let no_member = || {
                Refused::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "the organisation has no member with this email",
                )
            };
            let email = Email::parse(email).map_err(|_| no_member())?;
            let account = state
                .store
                .account_by_email(&email)
                .await
                .map_err(Internal::from_display("account read"))?
                .ok_or_else(no_member)?;
            let done = if block {
                org.block(&state.store, &account).await
            } else {
                org.unblock(&state.store, &account).await
            };
            let account = done.map_err(|e| match e {
                BlockError::NotTheirs => Refused::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "an organisation blocks only its own single sign-on people: members under \
                     its IdP, or of a domain its IdP owns",
                ),
                BlockError::NotTheirBlock => Refused::new(
                    StatusCode::CONFLICT,
                    "not_blocked_by_you",
                    "the account is not blocked, or was blocked by someone else (an operator, \
                     another organisation)",
                ),
                BlockError::Org(e) => store_failure(e),
            })?;
            tracing::info!(
                account_id = %account.id,
                org = %org.label(),
                block,
                "account block changed by an organisation administrator"
            );
            Ok((
                StatusCode::OK,
                serde_json::json!({
                    "email": account.email,
                    "blocked": account.is_blocked(),
                    "blocked_by": account.blocked_by,
                }),
            ))
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
pub async fn set_sso(state: &AppState, headers: &HeaderMap, name: &str, body: &Bytes) -> Response {
    answer(
        async {
            let team = match org_of_admin(state, headers, Kind::Team, name, &WRITE_SCOPES).await? {
                Org::Team(t) => t,
                Org::Enterprise(_) => {
                    return Err(Internal::new("team route", "found an enterprise account").into());
                }
            };
            let role = serde_json::from_slice::<SsoSettings>(body)
                .ok()
                .and_then(|s| TeamRole::parse(&s.default_role))
                .ok_or_else(|| {
                    Refused::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "the body must be {\"default_role\": \"admin\" | \"member\" | \"collaborator\"}",
                    )
                })?;
            let team = state
                .store
                .set_team_default_role(&team, role)
                .await
                .map_err(store_failure)?;
            tracing::info!(team = %team.id, role = role.as_str(), "team SSO default role set by a team admin");
            Ok((StatusCode::OK, serde_json::json!({ "team": team.name, "default_role": team.default_role })))
        }
        .await,
    )
}
