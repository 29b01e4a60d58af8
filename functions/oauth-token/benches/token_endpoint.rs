//! The token endpoint's in-process handling on the embedded store: a request goes through
//! the whole router (layers, form parsing, client authentication, store, ES256 signing),
//! as Lambda runs it, without a network. `cargo bench -p oauth-token`.

use std::sync::Arc;

use axum::body::Body;
use base64::Engine;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{Request, StatusCode, header};
use identity_shared::accounts::{AccountStatus, Accounts, Email};
use identity_shared::config::{Config, SecretsSpec, StoreSpec};
use identity_shared::oauth::{
    AuthCodes, CodeGrant, Grants, NewClient, OAuthClients, OAuthSettings, Scopes, pkce,
};
use identity_shared::secrets::SecretKind;
use identity_shared::{AppState, clock};
use tower::ServiceExt;

const VERIFIER: &str = "bench-verifier-bench-verifier-bench-verifier-0123";
const REDIRECT: &str = "https://app.example.com/callback";

struct Setup {
    rt: tokio::runtime::Runtime,
    state: AppState,
    app: axum::Router,
    basic: String,
    client_id: String,
    account_id: String,
    gid: String,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(
        "http://127.0.0.1:3000".into(),
        StoreSpec::Embedded(dir.path().to_path_buf()),
        SecretsSpec::Embedded,
    )
    .unwrap();
    let (state, basic, client_id, account_id, gid) = rt.block_on(async {
        let state = AppState::build(config, clock::system()).await.unwrap();
        state.secrets.warm(&[SecretKind::Signing]).await.unwrap();
        let (client, secret) = state
            .store
            .create_client(NewClient {
                name: "bench".into(),
                redirect_uris: vec![REDIRECT.into()],
                scopes: vec!["identity".into(), "read".into()],
                trusted: true,
                public: false,
            })
            .await
            .unwrap();
        let account = state
            .store
            .create_account(
                &Email::parse("bench@example.com").unwrap(),
                None,
                AccountStatus::Active,
            )
            .await
            .unwrap();
        let scopes = Scopes::parse("identity read").unwrap();
        let grant = state
            .store
            .grant_for(&account.id, &client.client_id, &scopes)
            .await
            .unwrap();
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                client.client_id,
                secret.unwrap().expose_secret()
            ))
        );
        (state, basic, client.client_id, account.id, grant.gid)
    });
    let app = oauth_token::app_with(state.clone(), OAuthSettings::default());
    Setup {
        rt,
        state,
        app,
        basic,
        client_id: client_id.to_string(),
        account_id: account_id.to_string(),
        gid: gid.to_string(),
        _dir: dir,
    }
}

impl Setup {
    async fn post(&self, form: String) -> serde_json::Value {
        let r = self
            .app
            .clone()
            .oneshot(
                Request::post("/oauth/token")
                    .header(header::AUTHORIZATION, &self.basic)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(form))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    async fn code(&self) -> String {
        let code = self
            .state
            .store
            .issue_code(&CodeGrant {
                client_id: self.client_id.clone().into(),
                redirect_uri: REDIRECT.into(),
                code_challenge: pkce::challenge_of(VERIFIER),
                account_id: self.account_id.clone().into(),
                scope: "identity read".into(),
                gid: self.gid.clone().into(),
                issued_at: self.state.now(),
            })
            .await
            .unwrap();
        code.expose_secret().to_string()
    }

    async fn exchange(&self, code: &str) -> String {
        let form = format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={VERIFIER}",
            "https%3A%2F%2Fapp.example.com%2Fcallback"
        );
        self.post(form).await["refresh_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn refresh(&self, token: &str) -> String {
        self.post(format!("grant_type=refresh_token&refresh_token={token}"))
            .await["refresh_token"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

fn token_endpoint(c: &mut Criterion) {
    let s = Arc::new(setup());
    let mut group = c.benchmark_group("token_endpoint");
    group.bench_function("authorization_code", |b| {
        b.iter_batched(
            || s.rt.block_on(s.code()),
            |code| s.rt.block_on(s.exchange(&code)),
            BatchSize::SmallInput,
        )
    });
    let mut current = s.rt.block_on(async {
        let code = s.code().await;
        s.exchange(&code).await
    });
    group.bench_function("refresh_token", |b| {
        b.iter(|| {
            current = s.rt.block_on(s.refresh(&current));
        })
    });
    group.finish();
}

criterion_group!(benches, token_endpoint);
criterion_main!(benches);
