//! `identity admin addon …`: add-ons, which belong to an app (never to the person who
//! provisioned them). A child module of `admin`, sharing its output conventions.

use clap::Subcommand;
use identity_shared::addons::{Addon, Addons};
use identity_shared::apps::Apps;
use identity_shared::store::Store;
use serde_json::{Value, json};

use super::{Failure, Output, app_by_name};

#[derive(Debug, Subcommand)]
pub enum AddonCommand {
    /// Provision an add-on for an app. Prints its addon_id, resource_id, sso_salt and the
    /// partner credentials (partner_username, partner_password: shown this once, stored
    /// only as a hash).
    Add {
        /// The app that owns the add-on.
        #[arg(long)]
        app: String,
        /// The add-on's name (3–60 lowercase letters, digits, dashes; unique).
        #[arg(long)]
        name: String,
        /// Where the SSO form is POSTed: https, or http on a loopback host.
        #[arg(long = "sso-url")]
        sso_url: String,
    },
    /// Show one add-on (by name or id); never its salt or password.
    Show { addon: String },
    /// List add-ons, all or one app's.
    List {
        #[arg(long)]
        app: Option<String>,
    },
}

async fn addon_json(store: &Store, addon: &Addon) -> Result<Value, Failure> {
    let mut j = addon.public_json();
    j["app"] = store
        .app(&addon.app_id)
        .await?
        .map_or(Value::Null, |a| a.name.into());
    Ok(j)
}

pub async fn addon(store: &Store, cmd: AddonCommand) -> Result<Output, Failure> {
    match cmd {
        AddonCommand::Add { app, name, sso_url } => {
            let app = app_by_name(store, &app).await?;
            let provisioned = store.create_addon(&app, &name, &sso_url).await?;
            let a = &provisioned.addon;
            let salt = a.sso_salt();
            let mut json = addon_json(store, a).await?;
            json["sso_salt"] = salt.expose().into();
            json["partner_password"] = provisioned.partner_password.expose_secret().into();
            let text = format!(
                "created add-on {name} ({id}) for app {app}\n\
addon_id: {id}\nresource_id: {rid}\nsso_url: {url}\nsso path: {path}\n\
sso_salt: {salt}\npartner_username: {user}\npartner_password: {pw}\n\
(the salt and the partner password are shown only now)",
                name = a.name,
                id = a.id,
                app = app.name,
                rid = a.resource_id,
                url = a.sso_url,
                path = a.sso_path(),
                salt = salt.expose(),
                user = a.partner_username,
                pw = provisioned.partner_password.expose_secret(),
            );
            Ok(Output { json, text })
        }
        AddonCommand::Show { addon } => {
            let found = match store.addon_by_name(&addon).await? {
                Some(a) => Some(a),
                None => store.addon(&addon).await?,
            };
            let a = found.ok_or_else(|| Failure(format!("no add-on {addon}")))?;
            let json = addon_json(store, &a).await?;
            Ok(Output {
                text: serde_json::to_string_pretty(&json)?,
                json,
            })
        }
        AddonCommand::List { app } => {
            let addons = match app {
                Some(name) => {
                    store
                        .addons_of(&app_by_name(store, &name).await?.id)
                        .await?
                }
                None => store.list_addons().await?,
            };
            let mut rows = Vec::with_capacity(addons.len());
            for a in &addons {
                rows.push(addon_json(store, a).await?);
            }
            let text = rows
                .iter()
                .map(|j| {
                    format!(
                        "{}  {}  app={}  {}",
                        j["addon_id"].as_str().unwrap_or(""),
                        j["name"].as_str().unwrap_or(""),
                        j["app"].as_str().unwrap_or(""),
                        j["sso_url"].as_str().unwrap_or(""),
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output {
                json: json!({ "addons": rows }),
                text,
            })
        }
    }
}
