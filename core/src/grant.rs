//! Grants: an account's authorization of one client. Every token issued to the client for
//! the account carries the grant's id; revoking the grant kills them all.

use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, ClientId, GrantId};
use crate::scope::Scopes;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub gid: GrantId,
    pub client_id: ClientId,
    pub account_id: AccountId,
    /// The scopes consented to (or given to a trusted client), space-separated.
    pub scope: String,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
    /// Store version, for conditional updates; not part of the record body.
    #[serde(skip)]
    pub version: i64,
}

impl Grant {
    pub fn is_live(&self) -> bool {
        self.revoked_at.is_none()
    }

    /// The rule before issuing on a grant (code exchange, device code, refresh): it is live
    /// and it is this client's.
    pub fn serves(&self, client_id: &str) -> bool {
        self.is_live() && self.client_id == client_id
    }

    pub fn scopes(&self) -> Scopes {
        Scopes::parse(&self.scope).unwrap_or_default()
    }

    pub fn public_json(&self) -> serde_json::Value {
        serde_json::json!({
            "grant_id": self.gid,
            "client_id": self.client_id,
            "account_id": self.account_id,
            "scopes": self.scopes().names(),
            "created_at": crate::clock::rfc3339(self.created_at),
            "updated_at": crate::clock::rfc3339(self.updated_at),
            "revoked": !self.is_live(),
        })
    }
}

crate::versioned!(Grant);
