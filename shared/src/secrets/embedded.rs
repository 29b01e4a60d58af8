//! The embedded secret source: keys generated on first use and kept in the store's `keys`
//! table, so `identity serve` restarts with the same keys and `identity admin` sees them.

use async_trait::async_trait;

use super::{Doc, SecretKind, SecretSource, SecretsError, generate};
use crate::secret::SecretString;
use crate::store::{Item, Store, StoreError, Table, record};

pub struct EmbeddedSecrets {
    store: Store,
}

fn pk(kind: SecretKind) -> String {
    format!("key#{}", kind.name())
}

fn store_err(e: StoreError) -> SecretsError {
    SecretsError::Unavailable(e.to_string())
}

impl EmbeddedSecrets {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Moves the current key to `previous` (dropping the older one) and generates a new
    /// current key. Processes pick it up at their next refresh.
    pub async fn rotate(&self, kind: SecretKind) -> Result<(), SecretsError> {
        self.fetch(kind).await?; // make sure there is something to rotate
        let item = self
            .store
            .get_item(Table::Keys, &pk(kind), "doc")
            .await
            .map_err(store_err)?;
        let item =
            item.ok_or_else(|| SecretsError::Unavailable("key vanished during rotation".into()))?;
        let old: Doc<serde_json::Value> = item.parse().map_err(store_err)?;
        let next = Doc {
            current: generate(kind)?,
            previous: Some(old.current),
        };
        let new_item = Item::new(pk(kind), "doc", &next)
            .map_err(store_err)?
            .with_version(item.version + 1);
        self.store
            .write(vec![record::replace(Table::Keys, new_item, item.version)])
            .await
            .map_err(|e| match e {
                StoreError::Conflict => {
                    SecretsError::Unavailable("the key changed during rotation; try again".into())
                }
                other => store_err(other),
            })
    }
}

#[async_trait]
impl SecretSource for EmbeddedSecrets {
    fn name(&self) -> &'static str {
        "embedded"
    }

    async fn fetch(&self, kind: SecretKind) -> Result<SecretString, SecretsError> {
        if let Some(item) = self
            .store
            .get_item(Table::Keys, &pk(kind), "doc")
            .await
            .map_err(store_err)?
        {
            return Ok(SecretString::new(item.body.clone()));
        }
        let doc = Doc {
            current: generate(kind)?,
            previous: None,
        };
        let item = Item::new(pk(kind), "doc", &doc).map_err(store_err)?;
        match self
            .store
            .write(vec![record::create(Table::Keys, item)])
            .await
        {
            Ok(()) | Err(StoreError::Conflict) => {} // another process generated it first: use theirs
            Err(e) => return Err(store_err(e)),
        }
        let item = self
            .store
            .get_item(Table::Keys, &pk(kind), "doc")
            .await
            .map_err(store_err)?;
        item.map(|i| SecretString::new(i.body.clone()))
            .ok_or_else(|| SecretsError::Unavailable("generated key could not be read back".into()))
    }
}
