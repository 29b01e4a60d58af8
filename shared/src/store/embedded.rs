//! The embedded backend: one SQLite database in WAL mode under the configured folder.
//!
//! Durable across restarts, and safe for several processes at once (`identity admin`
//! writes while `identity serve` runs): every write is one `BEGIN IMMEDIATE` transaction
//! that checks its conditions and applies its operations under SQLite's write lock.
//!
//! `synchronous=NORMAL` in WAL mode: a commit does not wait for an fsync, so a committed
//! write survives the process crashing but not the machine losing power (SQLite's own
//! trade-off for WAL). This store is for one machine (`identity serve`, the tests); a
//! deployment uses DynamoDB.
//!
//! Every statement is prepared once per connection (rusqlite's statement cache) and runs on
//! the calling thread under the connection's lock: each is tens of microseconds, less than
//! handing it to another thread would cost.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Params, Row, params};

use super::{Backend, Cond, Item, Key, Op, StoreError, Table};

pub struct Embedded {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

const FILE_NAME: &str = "identity.sqlite3";

#[cfg(unix)]
fn owner_only_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn owner_only_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn owner_only_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map(drop)
}

#[cfg(not(unix))]
fn owner_only_file(_: &Path) -> std::io::Result<()> {
    Ok(())
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("embedded store: {e}"))
}

impl Embedded {
    /// Opens (creating when needed) the database in the folder `dir`. What it creates is
    /// the owner's alone, whatever the umask: the folder 0700, the database 0600 (it holds
    /// the embedded keys, sessions and password hashes); SQLite gives its WAL files the
    /// database's mode.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let at = |e: std::io::Error| unavailable(format!("{}: {e}", dir.display()));
        if !dir.exists() {
            owner_only_dir(dir).map_err(at)?;
        }
        let path = dir.join(FILE_NAME);
        if !path.exists() {
            owner_only_file(&path).map_err(at)?;
        }
        let conn = Connection::open(&path).map_err(unavailable)?;
        conn.busy_timeout(Duration::from_secs(15))
            .map_err(unavailable)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(unavailable)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(unavailable)?;
        conn.set_prepared_statement_cache_capacity(32);
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS records (
                tbl TEXT NOT NULL,
                pk TEXT NOT NULL,
                sk TEXT NOT NULL,
                body TEXT NOT NULL,
                expires_at INTEGER,
                version INTEGER NOT NULL,
                PRIMARY KEY (tbl, pk, sk)
            ) WITHOUT ROWID;",
        )
        .map_err(unavailable)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn run<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let guard = self
            .conn
            .lock()
            .map_err(|_| unavailable("connection lock poisoned"))?;
        f(&guard)
    }
}

/// Runs a (cached) statement.
fn exec(c: &Connection, sql: &str, p: impl Params) -> Result<usize, StoreError> {
    c.prepare_cached(sql)
        .and_then(|mut s| s.execute(p))
        .map_err(unavailable)
}

/// The one row a (cached) statement returns, if any.
fn one<T>(
    c: &Connection,
    sql: &str,
    p: impl Params,
    f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>, StoreError> {
    c.prepare_cached(sql)
        .and_then(|mut s| s.query_row(p, f).optional())
        .map_err(unavailable)
}

/// A `BEGIN IMMEDIATE` transaction: committed by [`Tx::commit`], rolled back when dropped
/// without it (a refused condition, an error).
struct Tx<'c> {
    c: &'c Connection,
    open: bool,
}

impl<'c> Tx<'c> {
    fn begin(c: &'c Connection) -> Result<Self, StoreError> {
        exec(c, "BEGIN IMMEDIATE", [])?;
        Ok(Self { c, open: true })
    }

    fn commit(mut self) -> Result<(), StoreError> {
        exec(self.c, "COMMIT", [])?;
        self.open = false;
        Ok(())
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = exec(self.c, "ROLLBACK", []);
        }
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.c
    }
}

const LIVE: &str = "(expires_at IS NULL OR expires_at > ?)";

fn row_to_item(row: &rusqlite::Row<'_>) -> rusqlite::Result<Item> {
    Ok(Item {
        pk: row.get(0)?,
        sk: row.get(1)?,
        body: row.get(2)?,
        expires_at: row.get(3)?,
        version: row.get(4)?,
    })
}

fn live_version(
    tx: &Connection,
    table: Table,
    pk: &str,
    sk: &str,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    one(
        tx,
        &format!("SELECT version FROM records WHERE tbl = ? AND pk = ? AND sk = ? AND {LIVE}"),
        params![table.name(), pk, sk, now],
        |r| r.get(0),
    )
}

fn holds(cond: Cond, version: Option<i64>) -> bool {
    match cond {
        Cond::Always => true,
        Cond::Absent => version.is_none(),
        Cond::Live => version.is_some(),
        Cond::Version(v) => version == Some(v),
    }
}

/// The live records of `pk` whose sort key starts with `prefix`: all in order, or with a
/// `limit`, that many newest first (by sort key).
fn range(
    c: &Connection,
    table: Table,
    pk: &str,
    prefix: &str,
    now: i64,
    limit: Option<i64>,
) -> Result<Vec<Item>, StoreError> {
    const SELECT: &str = "SELECT pk, sk, body, expires_at, version FROM records
         WHERE tbl = ? AND pk = ? AND substr(sk, 1, length(?)) = ? AND";
    let sql = match limit {
        None => format!("{SELECT} {LIVE} ORDER BY sk"),
        Some(_) => format!("{SELECT} {LIVE} ORDER BY sk DESC LIMIT ?"),
    };
    let mut stmt = c.prepare_cached(&sql).map_err(unavailable)?;
    let rows = match limit {
        None => stmt.query_map(params![table.name(), pk, prefix, prefix, now], row_to_item),
        Some(n) => stmt.query_map(
            params![table.name(), pk, prefix, prefix, now, n],
            row_to_item,
        ),
    }
    .map_err(unavailable)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
}

#[async_trait]
impl Backend for Embedded {
    fn name(&self) -> &'static str {
        "embedded"
    }

    async fn get(&self, key: Key<'_>, now: i64) -> Result<Option<Item>, StoreError> {
        let Key { table, pk, sk } = key;
        let (pk, sk) = (pk.to_string(), sk.to_string());
        self.run(move |c| {
            one(
                c,
                &format!(
                    "SELECT pk, sk, body, expires_at, version FROM records
                     WHERE tbl = ? AND pk = ? AND sk = ? AND {LIVE}"
                ),
                params![table.name(), pk, sk, now],
                row_to_item,
            )
        })
        .await
    }

    async fn query(
        &self,
        table: Table,
        pk: &str,
        sk_prefix: &str,
        now: i64,
    ) -> Result<Vec<Item>, StoreError> {
        let (pk, prefix) = (pk.to_string(), sk_prefix.to_string());
        self.run(move |c| range(c, table, &pk, &prefix, now, None))
            .await
    }

    async fn query_newest(
        &self,
        table: Table,
        pk: &str,
        sk_prefix: &str,
        limit: usize,
        now: i64,
    ) -> Result<Vec<Item>, StoreError> {
        let (pk, prefix) = (pk.to_string(), sk_prefix.to_string());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |c| range(c, table, &pk, &prefix, now, Some(limit)))
            .await
    }

    async fn add(
        &self,
        counter: Key<'_>,
        by: i64,
        expires_at: i64,
        now: i64,
    ) -> Result<i64, StoreError> {
        let Key { table, pk, sk } = counter;
        let (pk, sk) = (pk.to_string(), sk.to_string());
        self.run(move |c| {
            let tx = Tx::begin(c)?;
            let count = match live_version(&tx, table, &pk, &sk, now)? {
                Some(v) => {
                    exec(
                        &tx,
                        "UPDATE records SET version = ? WHERE tbl = ? AND pk = ? AND sk = ?",
                        params![v + by, table.name(), pk, sk],
                    )?;
                    v + by
                }
                None => {
                    exec(
                        &tx,
                        "INSERT OR REPLACE INTO records (tbl, pk, sk, body, expires_at, version)
                         VALUES (?, ?, ?, '{}', ?, ?)",
                        params![table.name(), pk, sk, expires_at, by],
                    )?;
                    by
                }
            };
            tx.commit()?;
            Ok(count)
        })
        .await
    }

    async fn scan(&self, table: Table, now: i64) -> Result<Vec<Item>, StoreError> {
        self.run(move |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT pk, sk, body, expires_at, version FROM records WHERE tbl = ? AND {LIVE} ORDER BY pk, sk"
                ))
                .map_err(unavailable)?;
            let rows = stmt.query_map(params![table.name(), now], row_to_item).map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
        .await
    }

    async fn write(&self, ops: Vec<Op>, now: i64) -> Result<(), StoreError> {
        self.run(move |c| {
            let tx = Tx::begin(c)?;
            for op in &ops {
                let (table, pk, sk, cond) = match op {
                    Op::Put { table, item, cond } => (*table, &item.pk, &item.sk, *cond),
                    Op::Delete { table, pk, sk, cond } | Op::Check { table, pk, sk, cond } => (*table, pk, sk, *cond),
                };
                if cond != Cond::Always && !holds(cond, live_version(&tx, table, pk, sk, now)?) {
                    return Err(StoreError::Conflict); // dropping `tx` rolls back
                }
                match op {
                    Op::Put { table, item, .. } => {
                        exec(
                            &tx,
                            "INSERT OR REPLACE INTO records (tbl, pk, sk, body, expires_at, version)
                             VALUES (?, ?, ?, ?, ?, ?)",
                            params![table.name(), item.pk, item.sk, item.body, item.expires_at, item.version],
                        )?;
                    }
                    Op::Delete { table, pk, sk, .. } => {
                        exec(
                            &tx,
                            "DELETE FROM records WHERE tbl = ? AND pk = ? AND sk = ?",
                            params![table.name(), pk, sk],
                        )?;
                    }
                    Op::Check { .. } => {}
                }
            }
            tx.commit()
        })
        .await
    }

    async fn take(&self, key: Key<'_>, now: i64) -> Result<Option<Item>, StoreError> {
        let Key { table, pk, sk } = key;
        let (pk, sk) = (pk.to_string(), sk.to_string());
        self.run(move |c| {
            // One statement: the row is gone for everyone else the moment it is returned.
            one(
                c,
                &format!(
                    "DELETE FROM records WHERE tbl = ? AND pk = ? AND sk = ? AND {LIVE}
                     RETURNING pk, sk, body, expires_at, version"
                ),
                params![table.name(), pk, sk, now],
                row_to_item,
            )
        })
        .await
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_store_it_creates_is_the_owners_alone() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join(".identity");
        Embedded::open(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700, "the folder");
        assert_eq!(mode(&dir.join(FILE_NAME)), 0o600, "the database");
        // Opened again, nothing changes and it still works.
        Embedded::open(&dir).unwrap();
        assert_eq!(mode(&dir.join(FILE_NAME)), 0o600);
    }
}
