//! The deployment, locally: the six release bootstraps `sam build` made, each in its own
//! execution environments with its own role, behind API Gateway's routes ([`gateway`]), on
//! DynamoDB Local and moto behind IAM ([`iam_gate`]), configured as `template.yaml`
//! configures them (rendered by AWS's SAM transform, `scripts/render-template.py`).
//!
//! [`Stack::start`] does what `sam deploy` does, in order: render the template, create the
//! tables and the secrets (the cookie key generated, the others `{}`), run the first key
//! rotation through the rotation bootstrap (as each `RotationSchedule` does at deploy), then
//! start the HTTP functions and the API. [`Stack::audit`] holds every call the functions
//! made against their policies: refused calls, and grants nothing used.
//!
//! A control listener (`IDENTITY_STACK_CONTROL`) lets a test name itself (`PUT /test`),
//! empty every table between journeys (`POST /reset`) and read the calls judged so far
//! (`GET /calls`).

pub mod gateway;
pub mod iam_gate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use identity_shared::store::dynamodb::DynamoDb;

use crate::iam::{self, Account, Statement};
use gateway::{Function, Gateway};
use iam_gate::{Authority, Gate, Judged, Recording};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// How to start a stack.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the API listens (port 0: any free port).
    pub listen: SocketAddr,
    /// The template to deploy (a narrowed copy shows what a missing grant does).
    pub template: PathBuf,
    /// A Python with AWS's SAM translator (the test command's venv has it).
    pub python: PathBuf,
    /// Where `sam build` left the bootstraps.
    pub bootstraps: PathBuf,
    pub dynamodb: String,
    pub moto: String,
    /// Template parameters besides BaseUrl, TablePrefix and SecretsPrefix.
    pub parameters: Vec<(String, String)>,
    /// Variables added to every function's environment, as a template that set them
    /// would (the soak lifts the per-address limits: all its people share 127.0.0.1).
    pub environment: Vec<(String, String)>,
}

impl Options {
    /// The defaults of the test command's environment (the stand-ins' endpoints from
    /// `tests/run.sh --with-services`).
    pub fn from_env(listen: SocketAddr) -> Result<Options, Error> {
        let root = crate::template::workspace();
        let var = |name: &str| std::env::var(name).unwrap_or_default();
        Ok(Options {
            listen,
            template: root.join("template.yaml"),
            python: std::env::var_os("IDENTITY_STACK_PYTHON")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join(".test-deps/venv/bin/python3")),
            bootstraps: crate::runtime_api::build_dir(),
            dynamodb: var("IDENTITY_TEST_DYNAMODB_ENDPOINT"),
            moto: var("IDENTITY_TEST_SECRETSMANAGER_ENDPOINT"),
            parameters: Vec::new(),
            environment: Vec::new(),
        })
    }
}

/// One function of the rendered template.
#[derive(Debug, Clone)]
pub struct RenderedFunction {
    pub role_arn: String,
    pub timeout: Duration,
    pub environment: BTreeMap<String, String>,
    pub statements: Vec<Statement>,
}

/// `template.yaml` as CloudFormation would deploy it.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub functions: BTreeMap<String, RenderedFunction>,
    pub resource_policies: BTreeMap<String, Vec<Statement>>,
    pub tables: BTreeMap<String, String>,
    /// Logical id → (name, initial value).
    pub secrets: BTreeMap<String, (String, String)>,
}

/// Runs `scripts/render-template.py`: the template through AWS's SAM transform, with its
/// intrinsic functions resolved. Secret ARNs stay `{{LogicalId}}`.
pub fn render(
    python: &Path,
    template: &Path,
    parameters: &[(String, String)],
) -> Result<Value, Error> {
    let script = crate::template::workspace().join("scripts/render-template.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(template)
        .args(parameters.iter().map(|(k, v)| format!("{k}={v}")))
        .output()
        .map_err(|e| format!("run {}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "render-template.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn statements(v: &Value) -> Result<Vec<Statement>, Error> {
    v.as_array()
        .ok_or("statements are not a list")?
        .iter()
        .map(|s| {
            let source = s["Source"].as_str().unwrap_or("?").to_string();
            let mut s = s.clone();
            if let Some(o) = s.as_object_mut() {
                o.remove("Source");
            }
            Statement::from_json(&s, &source).map_err(|e| format!("{source}: {e}").into())
        })
        .collect()
}

impl Rendered {
    /// Reads the renderer's output with each `{{Secret}}` replaced by its ARN.
    pub fn read(
        rendered: &Value,
        secret_arns: &BTreeMap<String, String>,
    ) -> Result<Rendered, Error> {
        let mut text = rendered.to_string();
        for (logical, arn) in secret_arns {
            text = text.replace(&format!("{{{{{logical}}}}}"), arn);
        }
        let v: Value = serde_json::from_str(&text)?;
        let mut functions = BTreeMap::new();
        for (id, f) in v["functions"].as_object().ok_or("no functions")? {
            functions.insert(
                id.clone(),
                RenderedFunction {
                    role_arn: f["role_arn"].as_str().ok_or("role_arn")?.to_string(),
                    timeout: Duration::from_secs(f["timeout"].as_u64().ok_or("timeout")?),
                    environment: serde_json::from_value(f["environment"].clone())?,
                    statements: statements(&f["statements"])?,
                },
            );
        }
        let mut resource_policies = BTreeMap::new();
        for (arn, s) in v["resource_policies"]
            .as_object()
            .ok_or("no resource policies")?
        {
            resource_policies.insert(arn.clone(), statements(s)?);
        }
        let secrets = v["secrets"]
            .as_object()
            .ok_or("no secrets")?
            .iter()
            .map(|(id, s)| {
                (
                    id.clone(),
                    (
                        s["name"].as_str().unwrap_or_default().to_string(),
                        s["initial"].as_str().unwrap_or_default().to_string(),
                    ),
                )
            })
            .collect();
        Ok(Rendered {
            functions,
            resource_policies,
            tables: serde_json::from_value(v["tables"].clone())?,
            secrets,
        })
    }
}

/// The rotation function's logical id: not behind the API; Secrets Manager invokes it.
pub const ROTATION: &str = "KeyRotationFunction";

/// IAM for one deployment: the rendered policies, the gates in front of DynamoDB Local and
/// moto, and the access key of every execution environment started so far.
pub struct Judge {
    pub authority: Arc<Authority>,
    pub rendered: Rendered,
    /// The deployment's table prefix (shown as `${TablePrefix}` in reports).
    pub prefix: String,
    ddb: Gate,
    moto: Gate,
    started: std::sync::atomic::AtomicUsize,
    /// Added to every function's environment ([`Options::environment`]).
    pub environment: Vec<(String, String)>,
    /// Each secret's ARN and the placeholder it is reported as (`{{CookieSecret}}`).
    placeholders: Vec<(String, String)>,
}

/// Where each judged deployment leaves the grants its calls used, for [`audit_recorded`]:
/// the test command points every stack of its run at one folder.
pub const RECORD_VAR: &str = "IDENTITY_IAM_RECORD";

impl Drop for Judge {
    fn drop(&mut self) {
        let Some(dir) = std::env::var_os(RECORD_VAR) else {
            return;
        };
        let used: Vec<String> = self.audit().used.keys().map(Grant::key).collect();
        let _ = std::fs::create_dir_all(&dir);
        let file = std::path::Path::new(&dir).join(format!("{}.used", uuid::Uuid::new_v4()));
        let _ = std::fs::write(file, used.join("\n") + "\n");
    }
}

impl Judge {
    /// Gates in front of `dynamodb` and `moto` that judge calls against `rendered`;
    /// `secret_arns` maps each secret's name to its ARN.
    pub async fn new(
        rendered: Rendered,
        secret_arns: Vec<(String, String)>,
        by_logical: &BTreeMap<String, String>,
        prefix: &str,
        dynamodb: &str,
        moto: &str,
    ) -> Result<Judge, Error> {
        let recording = Arc::new(Recording::default());
        *recording.test.lock().unwrap() = "deploy".into();
        let authority = Arc::new(Authority {
            account: Account {
                partition: "aws".into(),
                region: "us-east-1".into(),
                account: "123456789012".into(),
                secrets: secret_arns,
            },
            principals: Default::default(),
            resource_policies: rendered.resource_policies.clone(),
            recording,
            enforce: std::env::var("IDENTITY_STACK_IAM").as_deref() != Ok("record"),
        });
        Ok(Judge {
            ddb: Gate::start(dynamodb, authority.clone()).await?,
            moto: Gate::start(moto, authority.clone()).await?,
            authority,
            rendered,
            prefix: prefix.to_string(),
            started: Default::default(),
            environment: Vec::new(),
            placeholders: by_logical
                .iter()
                .map(|(logical, arn)| (arn.clone(), format!("{{{{{logical}}}}}")))
                .collect(),
        })
    }

    pub fn recording(&self) -> &Arc<Recording> {
        &self.authority.recording
    }

    /// The environment of a new execution environment of `function`: what the template
    /// gives it, the gates as its AWS endpoints, and an access key of its own (its role).
    pub fn instance_environment(
        &self,
        function: &str,
    ) -> (Vec<(String, String)>, Arc<iam_gate::Principal>) {
        let f = &self.rendered.functions[function];
        let n = self
            .started
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let key = format!("AKIA{}{n}", function.to_ascii_uppercase());
        let principal = Arc::new(iam_gate::Principal {
            function: function.to_string(),
            instance: n,
            role_arn: f.role_arn.clone(),
            statements: Arc::new(f.statements.clone()),
            route: std::sync::Mutex::new("init".into()),
        });
        self.authority
            .principals
            .lock()
            .unwrap()
            .insert(key.clone(), principal.clone());
        let mut env: Vec<(String, String)> = f.environment.clone().into_iter().collect();
        env.extend(self.environment.iter().cloned());
        env.extend(crate::runtime_api::env_of(&[
            ("AWS_ENDPOINT_URL_DYNAMODB", &self.ddb.endpoint()),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", &self.moto.endpoint()),
            ("AWS_ENDPOINT_URL_SESV2", &self.moto.endpoint()),
            ("AWS_ACCESS_KEY_ID", &key),
            ("AWS_SECRET_ACCESS_KEY", "local-stack"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]));
        (env, principal)
    }

    /// Every call judged so far, held against the policies.
    pub fn audit(&self) -> Audit {
        let policies: BTreeMap<String, Vec<Statement>> = self
            .rendered
            .functions
            .iter()
            .map(|(id, f)| (id.clone(), f.statements.clone()))
            .collect();
        let calls = self.recording().calls.lock().unwrap().clone();
        audit(&policies, &calls, &|r| self.normalized(r))
    }

    /// A resource as reports show it, the same for every deployment: the table prefix as
    /// `${TablePrefix}`, each secret's ARN as its placeholder.
    fn normalized(&self, resource: &str) -> String {
        let mut r = resource.to_string();
        for (arn, placeholder) in &self.placeholders {
            r = r.replace(arn, placeholder);
        }
        r.replace(&self.prefix, "${TablePrefix}")
    }
}

/// Prints the IAM audit when the test holding it fails: a 503 from a refused call then
/// comes with the function, action, resource and route that caused it.
pub struct AuditOnPanic(pub Arc<Judge>);

impl Drop for AuditOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the IAM audit so far:\n{}", self.0.audit().report());
        }
    }
}

/// A running stack.
pub struct Stack {
    pub base_url: String,
    pub control_url: String,
    pub prefix: String,
    /// What `identity admin` (the operator) needs to reach the same store and secrets.
    pub operator_env: Vec<(String, String)>,
    pub judge: Arc<Judge>,
    /// The store and secrets as the operator reaches them (directly, not through IAM), for
    /// tests that seed or check.
    pub state: identity_shared::AppState,
    pub gateway: Arc<Gateway>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn random_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

impl Stack {
    pub async fn start(options: Options) -> Result<Stack, Error> {
        if options.dynamodb.is_empty() || options.moto.is_empty() {
            return Err("DynamoDB Local and moto are not running: run under tests/run.sh --with-services (scripts/local-stack.sh does)".into());
        }
        let listener = tokio::net::TcpListener::bind(options.listen).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let prefix = format!("stack{}-", random_suffix());
        let secrets_prefix = format!("stack{}/", random_suffix());
        let mut parameters = vec![
            ("BaseUrl".to_string(), base_url.clone()),
            ("TablePrefix".to_string(), prefix.clone()),
            ("SecretsPrefix".to_string(), secrets_prefix.clone()),
        ];
        parameters.extend(options.parameters.iter().cloned());
        let raw = render(&options.python, &options.template, &parameters)?;

        // The tables, as the template declares them and the schema defines them.
        let ddb = aws_sdk_dynamodb::Client::new(&crate::local_sdk_config(&options.dynamodb).await);
        let db = DynamoDb::new(ddb.clone(), prefix.clone());
        let mut made = db.create_tables().await?;
        let mut declared: Vec<String> =
            serde_json::from_value::<BTreeMap<String, String>>(raw["tables"].clone())?
                .into_values()
                .collect();
        declared.sort();
        made.sort();
        if declared != made {
            return Err(format!(
                "template.yaml declares the tables {declared:?}, the schema makes {made:?}"
            )
            .into());
        }
        let store =
            identity_shared::store::Store::new(Arc::new(db), identity_shared::clock::system());

        // The secrets, as CloudFormation creates them.
        let sm = aws_sdk_secretsmanager::Client::new(&crate::local_sdk_config(&options.moto).await);
        let mut by_logical = BTreeMap::new();
        let mut by_name = Vec::new();
        for (logical, spec) in raw["secrets"].as_object().ok_or("no secrets")? {
            let name = spec["name"].as_str().unwrap_or_default();
            let made = sm
                .create_secret()
                .name(name)
                .secret_string(spec["initial"].as_str().unwrap_or_default())
                .send()
                .await?;
            let arn = made.arn().unwrap_or_default().to_string();
            by_logical.insert(logical.clone(), arn.clone());
            by_name.push((name.to_string(), arn));
        }
        let rendered = Rendered::read(&raw, &by_logical)?;
        let mut judge = Judge::new(
            rendered,
            by_name,
            &by_logical,
            &prefix,
            &options.dynamodb,
            &options.moto,
        )
        .await?;
        judge.environment = options.environment.clone();
        let judge = Arc::new(judge);

        let routes = crate::template::routes(&std::fs::read_to_string(&options.template)?);
        let mut functions = BTreeMap::new();
        for (id, f) in &judge.rendered.functions {
            let bootstrap = options.bootstraps.join(id).join("bootstrap");
            if !bootstrap.is_file() {
                return Err(format!("{} missing: run sam build", bootstrap.display()).into());
            }
            functions.insert(
                id.clone(),
                Arc::new(Function::new(id, bootstrap, f.timeout)),
            );
        }

        // The first rotation of every key, step by step, as Secrets Manager drives it.
        let rotation = functions
            .get(ROTATION)
            .ok_or("template.yaml has no KeyRotationFunction")?
            .clone();
        for (logical, arn) in &by_logical {
            let token = uuid::Uuid::new_v4().to_string();
            for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
                let event = json!({"SecretId": arn, "ClientRequestToken": token, "Step": step});
                if rotation
                    .invoke(&judge, &format!("rotation {logical} {step}"), &event)
                    .await
                    .is_none()
                {
                    return Err(format!(
                        "the first rotation of {logical} failed at {step}:\n{}",
                        rotation.output().await
                    )
                    .into());
                }
            }
        }
        // Every HTTP function warm, as after its first request.
        for f in functions.values() {
            if f.logical_id != ROTATION {
                f.start_instance(&judge).await;
            }
        }
        *judge.recording().test.lock().unwrap() = "idle".into();

        let gateway = Arc::new(Gateway {
            routes,
            functions,
            judge: judge.clone(),
        });
        let mut tasks = vec![gateway::spawn(listener, gateway.clone())];
        let control = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let control_url = format!("http://{}", control.local_addr()?);
        let control_state = Arc::new(Control {
            recording: judge.recording().clone(),
            ddb: ddb.clone(),
            tables: judge.rendered.tables.values().cloned().collect(),
        });
        let app = Router::new()
            .route("/test", put(name_test))
            .route("/reset", post(reset))
            .route("/calls", get(calls))
            .with_state(control_state);
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(control, app).await;
        }));

        let config = identity_shared::Config::new(
            base_url.clone(),
            identity_shared::config::StoreSpec::DynamoDb {
                table_prefix: prefix.clone(),
            },
            identity_shared::config::SecretsSpec::SecretsManager {
                prefix: secrets_prefix.clone(),
            },
        )?;
        let state = identity_shared::AppState {
            config: Arc::new(config),
            store,
            secrets: Arc::new(identity_shared::secrets::Secrets::new(
                Arc::new(
                    identity_shared::secrets::secretsmanager::SecretsManager::new(
                        sm,
                        secrets_prefix.clone(),
                    ),
                ),
                Duration::from_secs(300),
            )),
            mail: Arc::new(identity_shared::outbox::LoggingSender),
            aws: None,
        };
        let operator_env = crate::runtime_api::env_of(&[
            ("IDENTITY_BASE_URL", &base_url),
            ("IDENTITY_STORE", "dynamodb:"),
            ("IDENTITY_TABLE_PREFIX", &prefix),
            (
                "IDENTITY_SECRETS",
                &format!("secretsmanager:{secrets_prefix}"),
            ),
            ("AWS_ENDPOINT_URL_DYNAMODB", &options.dynamodb),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", &options.moto),
            // `identity admin user impersonate` records the operator's AWS identity
            // (sts:GetCallerIdentity), as moto's STS answers it.
            ("AWS_ENDPOINT_URL_STS", &options.moto),
            ("AWS_ACCESS_KEY_ID", iam_gate::UPSTREAM_KEY),
            ("AWS_SECRET_ACCESS_KEY", iam_gate::UPSTREAM_KEY),
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("IDENTITY_STACK_CONTROL", &control_url),
        ]);
        Ok(Stack {
            base_url,
            control_url,
            prefix,
            operator_env,
            judge,
            state,
            gateway,
            tasks,
        })
    }

    /// Names the test whose calls follow (in the IAM audit).
    pub fn name_test(&self, test: &str) {
        *self.judge.recording().test.lock().unwrap() = test.to_string();
    }

    /// Everything every function printed.
    pub async fn output(&self) -> String {
        let mut out = String::new();
        for (id, f) in &self.gateway.functions {
            out.push_str(&format!("--- {id}\n{}", f.output().await));
        }
        out
    }

    pub fn audit(&self) -> Audit {
        self.judge.audit()
    }
}

struct Control {
    recording: Arc<Recording>,
    ddb: aws_sdk_dynamodb::Client,
    tables: Vec<String>,
}

async fn name_test(State(c): State<Arc<Control>>, body: String) -> &'static str {
    *c.recording.test.lock().unwrap() = body.trim().to_string();
    "ok"
}

async fn calls(State(c): State<Arc<Control>>) -> axum::Json<Vec<Judged>> {
    axum::Json(c.recording.calls.lock().unwrap().clone())
}

/// Deletes every item of every table (keys and secrets stay): a fresh deployment for the
/// next journey without restarting the functions.
async fn reset(State(c): State<Arc<Control>>) -> Result<&'static str, (http::StatusCode, String)> {
    let fail = |e: String| (http::StatusCode::INTERNAL_SERVER_ERROR, e);
    for table in &c.tables {
        let mut start = None;
        loop {
            let page = c
                .ddb
                .scan()
                .table_name(table)
                .projection_expression("pk, sk")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| fail(format!("scan {table}: {e:?}")))?;
            for item in page.items() {
                c.ddb
                    .delete_item()
                    .table_name(table)
                    .set_key(Some(item.clone()))
                    .send()
                    .await
                    .map_err(|e| fail(format!("delete in {table}: {e:?}")))?;
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
    }
    Ok("ok")
}

/// One grant of a policy: an allowed action on a resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub function: String,
    pub source: String,
    pub action: String,
    pub resource: String,
}

impl Grant {
    /// The same for every deployment of one template.
    pub fn key(&self) -> String {
        format!(
            "{} | {} | {} | {}",
            self.function, self.source, self.action, self.resource
        )
    }
}

/// Every grant of `template` (rendered here) that no deployment recorded in `dir` used,
/// less those the template excuses (`# iam-unexercised: FUNCTION ACTION RESOURCE: why`).
pub fn audit_recorded(options: &Options, dir: &Path) -> Result<Vec<Grant>, Error> {
    let prefix = "audit-";
    let raw = render(
        &options.python,
        &options.template,
        &[
            ("BaseUrl".into(), "https://id.example.com".into()),
            ("TablePrefix".into(), prefix.into()),
            ("SecretsPrefix".into(), "audit/".into()),
        ],
    )?;
    // Secrets stay `{{LogicalId}}`, as the deployments reported them.
    let rendered = Rendered::read(&raw, &BTreeMap::new())?;
    let policies: BTreeMap<String, Vec<Statement>> = rendered
        .functions
        .iter()
        .map(|(id, f)| (id.clone(), f.statements.clone()))
        .collect();
    let all = audit(&policies, &[], &|r| r.replace(prefix, "${TablePrefix}")).unused;
    let mut used = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir)? {
        let text = std::fs::read_to_string(entry?.path())?;
        used.extend(text.lines().map(str::to_string));
    }
    let unused: Vec<Grant> = all
        .into_iter()
        .filter(|g| !used.contains(&g.key()))
        .collect();
    Ok(unexcused(
        &unused,
        &std::fs::read_to_string(&options.template)?,
        &rendered.tables,
        prefix,
    ))
}

/// What the calls show about the policies.
#[derive(Debug, Default)]
pub struct Audit {
    /// Calls the policies refused.
    pub refused: Vec<Judged>,
    /// Grants no call needed, each with the number of calls that did (0).
    pub unused: Vec<Grant>,
    /// Grants with the calls that needed them.
    pub used: BTreeMap<Grant, usize>,
}

impl Audit {
    /// The report: refused calls (each with its function, action, resource, route and
    /// test), then unused grants.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let mut seen = std::collections::BTreeSet::new();
        for r in &self.refused {
            if seen.insert((&r.function, &r.action, &r.resource, &r.test)) {
                out.push_str(&format!(
                    "REFUSED {} {} on {} (route {}, test {}): {}\n",
                    r.function, r.action, r.resource, r.route, r.test, r.by
                ));
            }
        }
        for g in &self.unused {
            out.push_str(&format!(
                "UNUSED {} {} on {} ({})\n",
                g.function, g.action, g.resource, g.source
            ));
        }
        out
    }
}

/// Holds `calls` against `policies` (function → its statements); `normalized` turns a
/// resource into what reports show.
pub fn audit(
    policies: &BTreeMap<String, Vec<Statement>>,
    calls: &[Judged],
    normalized: &dyn Fn(&str) -> String,
) -> Audit {
    let mut audit = Audit {
        refused: calls.iter().filter(|c| !c.allowed).cloned().collect(),
        ..Audit::default()
    };
    for (function, statements) in policies {
        for s in statements {
            for (action, resource) in iam::statement_grants(s) {
                let grant = Grant {
                    function: function.clone(),
                    source: s.source.clone(),
                    action: action.clone(),
                    resource: normalized(&resource),
                };
                let n = calls
                    .iter()
                    .filter(|c| c.allowed && &c.function == function)
                    .filter(|c| {
                        iam::pair_matches(
                            &action,
                            &resource,
                            &iam::Request {
                                principal_arn: String::new(),
                                action: c.action.clone(),
                                resource: c.resource.clone(),
                                context: Default::default(),
                            },
                        )
                    })
                    .count();
                if n == 0 {
                    audit.unused.push(grant);
                } else {
                    audit.used.insert(grant, n);
                }
            }
        }
    }
    audit
}

/// A grant `template.yaml` keeps though no test exercises it, and says why: a line
/// `# iam-unexercised: FUNCTION ACTION RESOURCE: why`, RESOURCE the logical id of a table
/// or secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excuse {
    pub function: String,
    pub action: String,
    pub resource: String,
}

pub fn excuses(template: &str) -> Vec<Excuse> {
    template
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("# iam-unexercised: "))
        .filter_map(|rest| {
            let (who, _why) = rest.split_once(": ")?;
            let mut words = who.split_whitespace();
            Some(Excuse {
                function: words.next()?.to_string(),
                action: words.next()?.to_string(),
                resource: words.next()?.to_string(),
            })
        })
        .collect()
}

/// The unused grants that no excuse of `template` covers; `tables` maps each table's
/// logical id to its name under `prefix`, as the grants' resources were rendered.
pub fn unexcused(
    unused: &[Grant],
    template: &str,
    tables: &BTreeMap<String, String>,
    prefix: &str,
) -> Vec<Grant> {
    let excuses = excuses(template);
    let covers = |e: &Excuse, g: &Grant| {
        let resource = match tables.get(&e.resource) {
            Some(name) => format!("table/{}", name.replacen(prefix, "${TablePrefix}", 1)),
            None => format!("{{{{{}}}}}", e.resource),
        };
        e.function == g.function && e.action == g.action && g.resource.ends_with(&resource)
    };
    unused
        .iter()
        .filter(|g| !excuses.iter().any(|e| covers(e, g)))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(action: &str, resource: &str) -> Statement {
        Statement::from_json(
            &json!({"Effect": "Allow", "Action": [action], "Resource": resource}),
            "test statement",
        )
        .unwrap()
    }

    fn call(function: &str, action: &str, resource: &str, allowed: bool) -> Judged {
        Judged {
            function: function.into(),
            instance: 0,
            route: "GET /x".into(),
            test: "t".into(),
            action: action.into(),
            resource: resource.into(),
            allowed,
            by: String::new(),
        }
    }

    const TABLE: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/p-once";

    fn unprefixed(r: &str) -> String {
        r.replace("p-", "${TablePrefix}")
    }

    #[test]
    fn a_grant_no_call_needed_is_reported_unused() {
        let policies = BTreeMap::from([(
            "F".to_string(),
            vec![
                statement("dynamodb:GetItem", TABLE),
                statement("dynamodb:Scan", TABLE),
            ],
        )]);
        let a = audit(
            &policies,
            &[call("F", "dynamodb:GetItem", TABLE, true)],
            &unprefixed,
        );
        assert_eq!(a.unused.len(), 1);
        assert_eq!(a.unused[0].action, "dynamodb:Scan");
        assert_eq!(
            a.unused[0].resource,
            "arn:aws:dynamodb:us-east-1:123456789012:table/${TablePrefix}once"
        );
        assert!(a.refused.is_empty());
    }

    #[test]
    fn a_refused_call_is_reported_with_its_route_and_test() {
        let a = audit(
            &BTreeMap::new(),
            &[call("F", "dynamodb:Query", TABLE, false)],
            &unprefixed,
        );
        assert_eq!(a.refused.len(), 1);
        assert!(a.report().contains("REFUSED F dynamodb:Query on"));
        assert!(a.report().contains("route GET /x, test t"));
    }

    #[test]
    fn another_functions_call_does_not_use_a_grant() {
        let policies =
            BTreeMap::from([("F".to_string(), vec![statement("dynamodb:GetItem", TABLE)])]);
        let a = audit(
            &policies,
            &[call("G", "dynamodb:GetItem", TABLE, true)],
            &unprefixed,
        );
        assert_eq!(a.unused.len(), 1);
    }

    #[test]
    fn an_excuse_covers_its_function_action_and_table_only() {
        let t = "  # iam-unexercised: F dynamodb:Scan OnceTable: only when the moon is full\n";
        assert_eq!(
            excuses(t),
            [Excuse {
                function: "F".into(),
                action: "dynamodb:Scan".into(),
                resource: "OnceTable".into()
            }]
        );
        let tables = BTreeMap::from([
            ("OnceTable".to_string(), "p-once".to_string()),
            ("AppsTable".to_string(), "p-apps".to_string()),
        ]);
        let grant = |function: &str, action: &str, table: &str| Grant {
            function: function.into(),
            source: "s".into(),
            action: action.into(),
            resource: format!(
                "arn:aws:dynamodb:us-east-1:123456789012:table/${{TablePrefix}}{table}"
            ),
        };
        let unused = [
            grant("F", "dynamodb:Scan", "once"),
            grant("F", "dynamodb:Scan", "apps"),
            grant("G", "dynamodb:Scan", "once"),
            grant("F", "dynamodb:Query", "once"),
        ];
        let left = unexcused(&unused, t, &tables, "p-");
        assert_eq!(
            left.len(),
            3,
            "only F's Scan of the once table is excused: {left:?}"
        );
    }
}
