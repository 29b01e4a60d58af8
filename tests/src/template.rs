//! What the tests read from `template.yaml`: its functions (logical id, crate, code folder)
//! and its HTTP API routes. The template keeps each event on one line,
//! `Name: {Type: HttpApi, Properties: {ApiId: !Ref HttpApi, Method: GET, Path: /login}}`,
//! and [`routes`] refuses any `HttpApi` event it cannot read, so nothing hides from the tests.

use std::path::PathBuf;

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

pub fn read() -> String {
    std::fs::read_to_string(workspace().join("template.yaml")).expect("read template.yaml")
}

/// The lines of one top-level resource: from `  ID:` to the next line indented by exactly
/// two spaces (or the next section).
pub fn block(template: &str, logical_id: &str) -> String {
    let header = format!("  {logical_id}:");
    let mut lines = template.lines().skip_while(|l| *l != header);
    assert!(
        lines.next().is_some(),
        "{logical_id} missing from template.yaml"
    );
    lines
        .take_while(|l| l.is_empty() || l.starts_with("   "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The logical ids of the template's resources, in order.
fn resources(template: &str) -> Vec<String> {
    let mut in_resources = false;
    let mut ids = Vec::new();
    for line in template.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_resources = line == "Resources:";
            continue;
        }
        if in_resources
            && let Some(id) = line.strip_prefix("  ")
            && !id.starts_with(' ')
            && !id.starts_with('#')
            && let Some(id) = id.strip_suffix(':')
        {
            ids.push(id.to_string());
        }
    }
    ids
}

/// One `AWS::Serverless::Function`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub logical_id: String,
    /// Its crate and that crate's bin (e.g. `sso-acs`): the folder `CodeUri` names, which
    /// `scripts/lambda.mk` builds.
    pub binary: String,
    /// Its `CodeUri`.
    pub code_uri: String,
}

fn value_of(block: &str, key: &str) -> Option<String> {
    block.lines().find_map(|l| {
        l.trim_start()
            .strip_prefix(key)
            .and_then(|rest| rest.strip_prefix(": "))
            .map(|v| v.trim().trim_matches('"').to_string())
    })
}

pub fn functions(template: &str) -> Vec<Function> {
    resources(template)
        .into_iter()
        .filter_map(|id| {
            let b = block(template, &id);
            if !b.contains("Type: AWS::Serverless::Function") {
                return None;
            }
            let code_uri = value_of(&b, "CodeUri").unwrap_or_else(|| panic!("{id}: no CodeUri"));
            Some(Function {
                binary: code_uri.rsplit('/').next().unwrap_or_default().to_string(),
                code_uri,
                logical_id: id,
            })
        })
        .collect()
}

/// One HTTP API route and the function it invokes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub method: String,
    /// The route's path template (`/account/welcome/{token}`).
    pub path: String,
    /// The function's logical id.
    pub function: String,
}

impl Route {
    /// The API Gateway route key, `METHOD /path`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The path parameters when `path` matches this route's template.
    pub fn matches(&self, method: &str, path: &str) -> Option<Vec<(String, String)>> {
        if method != self.method {
            return None;
        }
        let want: Vec<&str> = self.path.split('/').collect();
        let got: Vec<&str> = path.split('/').collect();
        if want.len() != got.len() {
            return None;
        }
        let mut params = Vec::new();
        for (w, g) in want.iter().zip(&got) {
            match w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                Some(name) if !g.is_empty() => params.push((name.to_string(), g.to_string())),
                Some(_) => return None,
                None if w == g => {}
                None => return None,
            }
        }
        Some(params)
    }
}

/// The value after `key` in a flow mapping: a quoted string, or up to the next `,` or `}`.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = &line[line.find(key)? + key.len()..];
    if let Some(quoted) = rest.strip_prefix('"') {
        return Some(&quoted[..quoted.find('"')?]);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

/// Every `HttpApi` event of every function.
pub fn routes(template: &str) -> Vec<Route> {
    let mut routes = Vec::new();
    for f in functions(template) {
        for line in block(template, &f.logical_id).lines() {
            if !line.contains("Type: HttpApi") {
                continue;
            }
            let (Some(method), Some(path)) = (field(line, "Method: "), field(line, "Path: "))
            else {
                panic!("{}: an HttpApi event not on one line: {line}", f.logical_id);
            };
            assert!(
                line.contains("ApiId: !Ref HttpApi"),
                "{}: an event outside the HttpApi: {line}",
                f.logical_id
            );
            routes.push(Route {
                method: method.to_string(),
                path: path.to_string(),
                function: f.logical_id.clone(),
            });
        }
    }
    assert_eq!(
        routes.len(),
        template.matches("Type: HttpApi").count(),
        "every HttpApi event belongs to a function and was read"
    );
    routes
}
