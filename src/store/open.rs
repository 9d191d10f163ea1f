//! Opening the state: the directory and file checks before SQLite touches anything, building a
//! new database in a temporary file, the identity check and schema migration.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use time::OffsetDateTime;

use super::{
    AuditEntry, DB_FILE, DEFAULT_BUSY_TIMEOUT, Operator, Store, StoreError, schema, sql_error,
};

impl Store {
    /// Open the CA database in `dir`, creating the directory (mode 0700) and the database
    /// (mode 0600) on first use. Waits up to [`DEFAULT_BUSY_TIMEOUT`] for other processes.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_timeout(dir, DEFAULT_BUSY_TIMEOUT)
    }

    /// [`Store::open`] with another busy timeout.
    pub fn open_with_timeout(dir: &Path, busy_timeout: Duration) -> Result<Self, StoreError> {
        ensure_dir(dir)?;
        let path = dir.join(DB_FILE);
        match fs::symlink_metadata(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                create_database(dir, &path, busy_timeout)?;
            }
            Err(source) => return Err(StoreError::Io { path, source }),
        }
        check_header(&path)?;
        let conn = connect(&path, busy_timeout)?;
        let store = Self {
            conn,
            path,
            busy_timeout,
        };
        store.check_identity()?;
        store.migrate()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state directory and database files that users other than their owner may read or
    /// write (hsmsign creates them 0700 / 0600), with their permission bits.
    pub fn loose_permissions(&self) -> Vec<(PathBuf, u32)> {
        use std::os::unix::fs::PermissionsExt;
        let mut paths = vec![parent_of(&self.path)];
        for suffix in ["", "-wal", "-shm"] {
            let mut name = self.path.clone().into_os_string();
            name.push(suffix);
            paths.push(PathBuf::from(name));
        }
        paths
            .into_iter()
            .filter_map(|p| {
                let mode = fs::metadata(&p).ok()?.permissions().mode() & 0o7777;
                (mode & 0o077 != 0).then_some((p, mode))
            })
            .collect()
    }
    fn check_identity(&self) -> Result<(), StoreError> {
        let pragma = |name: &str| -> Result<i64, StoreError> {
            self.conn
                .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                .map_err(self.sql("reading the database identity"))
        };
        let application_id = pragma("application_id")?;
        if application_id != i64::from(schema::APPLICATION_ID) {
            return Err(StoreError::Foreign {
                path: self.path.clone(),
                application_id: application_id as i32,
            });
        }
        let version = pragma("user_version")?;
        if version > schema::VERSION {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                supported: schema::VERSION,
            });
        }
        let mut stmt = self
            .conn
            .prepare("PRAGMA quick_check")
            .map_err(self.sql("checking the database"))?;
        let findings: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(self.sql("checking the database"))?;
        if findings != ["ok"] {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                reason: findings.join("; "),
            });
        }
        Ok(())
    }

    /// Bring an older schema up to date, in one transaction with its audit record.
    fn migrate(&self) -> Result<(), StoreError> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.sql("reading the schema version"))?;
        if version >= schema::VERSION {
            return Ok(());
        }
        let entry = AuditEntry::new("store.migrate", Operator::new("hsmsign"))
            .param("from_version", version.to_string())
            .param("to_version", schema::VERSION.to_string());
        let change = self.begin(entry)?;
        // Another process may have migrated while we waited for the lock.
        let version: i64 = change
            .tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.sql("reading the schema version"))?;
        if version >= schema::VERSION {
            return Ok(());
        }
        apply_migrations(&change.tx, version).map_err(self.sql("migrating the schema"))?;
        change.commit().map(|_| ())
    }
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn ensure_dir(dir: &Path) -> Result<(), StoreError> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(StoreError::NotADirectory {
            path: dir.to_owned(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut builder = fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir).map_err(|source| StoreError::Dir {
                path: dir.to_owned(),
                source,
            })
        }
        Err(source) => Err(StoreError::Dir {
            path: dir.to_owned(),
            source,
        }),
    }
}

/// Refuse anything but an hsmsign database of a known version, before SQLite opens the file
/// (opening may already write: WAL recovery, journal rollback).
fn check_header(path: &Path) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let not_db = |reason: &str| StoreError::NotADatabase {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let meta = fs::symlink_metadata(path).map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(not_db("not a regular file"));
    }
    let mut header = Vec::with_capacity(100);
    fs::File::open(path)
        .map_err(io)?
        .take(100)
        .read_to_end(&mut header)
        .map_err(io)?;
    if header.is_empty() {
        return Err(not_db("empty file"));
    }
    if header.len() < 100 || !header.starts_with(b"SQLite format 3\0") {
        return Err(not_db("not an SQLite database"));
    }
    let be = |at: usize| {
        i32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let application_id = be(68);
    if application_id != schema::APPLICATION_ID {
        return Err(StoreError::Foreign {
            path: path.to_owned(),
            application_id,
        });
    }
    let version = i64::from(be(60));
    if version > schema::VERSION {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found: version,
            supported: schema::VERSION,
        });
    }
    if version < 1 {
        return Err(not_db("hsmsign application id but no schema"));
    }
    Ok(())
}

/// Open a connection with our settings. The file must exist.
fn connect(path: &Path, timeout: Duration) -> Result<Connection, StoreError> {
    let sql = |context| move |e| sql_error(path, timeout, context, e);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql("opening"))?;
    conn.busy_timeout(timeout)
        .map_err(sql("setting the busy timeout"))?;
    // No writable_schema or other ways to corrupt the file through SQL.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)
        .map_err(sql("configuring"))?;
    conn.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA trusted_schema = OFF;",
    )
    .map_err(sql("configuring"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(sql("switching to WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Invalid {
            field: "journal mode",
            reason: format!(
                "SQLite kept {mode} instead of WAL for {}; the state directory must be on a local file system",
                path.display()
            ),
        });
    }
    Ok(conn)
}

fn apply_migrations(conn: &Connection, from: i64) -> rusqlite::Result<()> {
    for step in schema::MIGRATIONS
        .iter()
        .skip(usize::try_from(from).unwrap_or(usize::MAX))
    {
        conn.execute_batch(step)?;
    }
    conn.execute_batch(&format!("PRAGMA user_version = {}", schema::VERSION))
}

/// Build a new database in a temporary file and link it into place only when complete.
fn create_database(dir: &Path, path: &Path, timeout: Duration) -> Result<(), StoreError> {
    let tmp = dir.join(format!(
        ".{DB_FILE}.{}.{}.new",
        std::process::id(),
        OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    let result = build_new_database(&tmp, timeout).and_then(|()| {
        match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(source) => Err(StoreError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    });
    for suffix in ["", "-wal", "-shm"] {
        let mut name = tmp.clone().into_os_string();
        name.push(suffix);
        let _ = fs::remove_file(PathBuf::from(name));
    }
    result?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            source,
        })
}

fn build_new_database(tmp: &Path, timeout: Duration) -> Result<(), StoreError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(tmp).map_err(|source| StoreError::Io {
        path: tmp.to_owned(),
        source,
    })?;
    let conn = connect(tmp, timeout)?;
    let store = Store {
        conn,
        path: tmp.to_owned(),
        busy_timeout: timeout,
    };
    store
        .conn
        .execute_batch(&format!(
            "PRAGMA application_id = {}",
            schema::APPLICATION_ID
        ))
        .map_err(store.sql("creating the database"))?;
    // Two transactions are fine here: nobody sees the file before it is linked into place.
    {
        let tx = rusqlite::Transaction::new_unchecked(&store.conn, TransactionBehavior::Immediate)
            .map_err(store.sql("creating the schema"))?;
        apply_migrations(&tx, 0).map_err(store.sql("creating the schema"))?;
        tx.commit().map_err(store.sql("creating the schema"))?;
    }
    store.record(
        AuditEntry::new("store.create", Operator::new("hsmsign"))
            .param("schema_version", schema::VERSION.to_string()),
    )?;
    let Store { conn, path, .. } = store;
    conn.close()
        .map_err(|(_, e)| sql_error(&path, timeout, "closing the new database", e))?;
    fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(|source| StoreError::Io {
            path: tmp.to_owned(),
            source,
        })
}
