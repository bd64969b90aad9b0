//! What trueup's read-only detection stops and what it does not, shown on the real
//! databases: each claim of `docs/guides/least-privilege.md` is one test here. A detector
//! query runs in the session `Source::fetch` runs it in (PostgreSQL: `BEGIN READ ONLY`, the
//! timeout set, the query, `ROLLBACK`; SQLite: a connection opened read-only), but without
//! trueup's statement check, which refuses most of these calls before they reach the server
//! (each test asserts that refusal too where it applies): these tests show what the database
//! would do if the check missed one.

mod support;

use std::time::Duration;

use support::{Rows, open_source, pg, raw_query};
use trueup_core::source::{QueryError, Source};
use trueup_core::value::Value;

/// Runs `sql` the way a detector runs, returning its rows or the error's text.
async fn detect(source: &Source, sql: &str) -> Result<Vec<Vec<Value>>, String> {
    let query = raw_query(sql);
    let mut rows = Rows::default();
    match source
        .fetch_unchecked(&query, Duration::from_secs(10), &mut rows)
        .await
    {
        Ok(()) => Ok(rows.0),
        Err(QueryError::Failed(err)) => Err(trueup_core::error::chain(&err)),
        Err(err) => Err(err.to_string()),
    }
}

async fn scalar(url: &str, sql: &str) -> i64 {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let value = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    value
}

/// A session of `url` busy in `pg_sleep` until something ends it; yields how it ended.
async fn busy_session(url: &str, tag: &str) -> tokio::task::JoinHandle<Result<(), String>> {
    let url = url.to_owned();
    let sql = format!("SELECT pg_sleep(30), '{tag}'");
    let handle = tokio::spawn(async move {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    // Wait until it is running.
    for _ in 0..100 {
        let running = scalar(
            &pg::admin_url().unwrap(),
            &format!("SELECT COUNT(*) FROM pg_stat_activity WHERE query LIKE '%''{tag}''%' AND state = 'active' AND query NOT LIKE '%pg_stat_activity%'"),
        )
        .await;
        if running > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle
}

async fn postgres() -> Option<String> {
    let url = pg::fresh_database(&pg::admin_url()?).await;
    pg::execute(
        &url,
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, total NUMERIC(12,2));
         INSERT INTO orders VALUES (1, 10.00);
         CREATE SEQUENCE order_numbers;",
    )
    .await;
    Some(url)
}

#[tokio::test]
async fn hardening_2_read_only_transaction_refuses_writes_nextval_setval_and_ddl() {
    let Some(url) = postgres().await else { return };
    let source = open_source(&url).await;
    for (sql, refused) in [
        (
            "WITH d AS (DELETE FROM orders RETURNING id) SELECT id FROM d",
            "in a read-only transaction",
        ),
        (
            "SELECT nextval('order_numbers')",
            "cannot execute nextval() in a read-only transaction",
        ),
        (
            "SELECT setval('order_numbers', 5)",
            "cannot execute setval() in a read-only transaction",
        ),
        (
            "CREATE TEMP TABLE scratch (x int)",
            "cannot execute CREATE TABLE in a read-only transaction",
        ),
        (
            "SELECT id FROM orders FOR UPDATE",
            "cannot execute SELECT FOR UPDATE in a read-only transaction",
        ),
        // The detector cannot switch its own transaction to read-write.
        (
            "SELECT set_config('transaction_read_only', 'off', true)",
            "transaction read-write mode must be set before any query",
        ),
    ] {
        let err = detect(&source, sql).await.expect_err(sql);
        assert!(err.contains(refused), "{sql}: {err}");
    }
    source.close().await;
    assert_eq!(scalar(&url, "SELECT COUNT(*) FROM orders").await, 1);
}

#[tokio::test]
async fn hardening_2_read_only_transaction_does_not_stop_terminating_a_session_of_the_same_role() {
    let Some(url) = postgres().await else { return };
    let (role, role_url) = pg::login_role(
        &url,
        "same",
        "NOINHERIT",
        "GRANT SELECT ON orders TO {role}",
    )
    .await;
    let victim = busy_session(&role_url, "trueup_victim_same_role").await;
    let source = open_source(&role_url).await;
    let rows = detect(
        &source,
        "SELECT pid, pg_terminate_backend(pid) AS terminated FROM pg_stat_activity \
         WHERE query LIKE '%''trueup_victim_same_role''%' AND pid <> pg_backend_pid() \
         AND query NOT LIKE '%pg_stat_activity%'",
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][1], Value::Bool(true));
    let ended = victim
        .await
        .unwrap()
        .expect_err("the session was terminated");
    assert!(ended.contains("terminating connection"), "{ended}");
    source.close().await;
    pg::drop_roles(&url, &[&role]).await;
}

#[tokio::test]
async fn hardening_2_another_roles_sessions_are_safe_unless_trueup_is_a_member_of_it() {
    let Some(url) = postgres().await else { return };
    let (app, app_url) = pg::login_role(&url, "app", "", "").await;
    let (outsider, outsider_url) = pg::login_role(&url, "outsider", "NOINHERIT", "").await;
    let (member, member_url) = pg::login_role(
        &url,
        "member",
        "NOINHERIT",
        &format!("GRANT \"{app}\" TO {{role}}"),
    )
    .await;
    let victim = busy_session(&app_url, "trueup_victim_app").await;
    // Other roles' query texts are hidden from it: the sessions are found by role.
    let cancel =
        format!("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE usename = '{app}'");

    // A role that is not a member of the application's role may not signal its sessions.
    let source_outsider = open_source(&outsider_url).await;
    let err = detect(&source_outsider, &cancel).await.unwrap_err();
    assert!(err.contains("must be a member of the role"), "{err}");
    source_outsider.close().await;

    // NOINHERIT alone does not stop it either way...
    let source_member = open_source(&member_url).await;
    let err = detect(&source_member, &cancel).await.unwrap_err();
    assert!(err.contains("must be a member of the role"), "{err}");
    // ...but a member can take the role inside the read-only transaction, in one SELECT.
    let rows = detect(
        &source_member,
        &format!(
            "WITH r AS MATERIALIZED (SELECT set_config('role', '{app}', true) AS role) \
             SELECT r.role, pg_cancel_backend(pid) AS cancelled FROM r, pg_stat_activity \
             WHERE usename = '{app}'"
        ),
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][1], Value::Bool(true));
    let ended = victim.await.unwrap().expect_err("the query was cancelled");
    assert!(ended.contains("canceling statement"), "{ended}");
    source_member.close().await;
    pg::drop_roles(&url, &[&member, &outsider, &app]).await;
}

#[tokio::test]
async fn hardening_2_a_session_advisory_lock_outlives_the_read_only_transaction() {
    let Some(url) = postgres().await else { return };
    let source = open_source(&url).await;
    detect(&source, "SELECT pg_advisory_lock(7283)::text")
        .await
        .unwrap();
    // The transaction was rolled back, and the pooled session still holds the lock.
    let held =
        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 7283 AND granted";
    assert_eq!(scalar(&url, held).await, 1);
    source.close().await;
    // Closing the session releases it.
    for _ in 0..100 {
        if scalar(&url, held).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the lock was not released when the session closed");
}

/// SQL handed to a function as text is a value to trueup's statement check, and the server
/// runs it inside the read-only transaction with the same effects as the call written out:
/// here each takes a session advisory lock. The check refuses these functions by name.
#[tokio::test]
async fn hardening_2_sql_given_as_text_runs_its_calls_in_the_read_only_transaction() {
    let Some(url) = postgres().await else { return };
    let source = open_source(&url).await;
    for (sql, lock) in [
        (
            "SELECT query_to_xml('SELECT pg_advisory_lock(7291)', true, false, '')::text",
            7291,
        ),
        (
            "SELECT word FROM ts_stat('SELECT to_tsvector(''a'') FROM (SELECT pg_advisory_lock(7292)) x')",
            7292,
        ),
        (
            "SELECT ts_rewrite('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery \
             FROM (SELECT pg_advisory_lock(7293)) x')::text",
            7293,
        ),
    ] {
        let problem = trueup_core::sql_text::detector_problem(
            sql,
            Some(trueup_core::dialect::Dialect::Postgres),
        )
        .unwrap_or_else(|| panic!("the statement check accepts {sql}"));
        assert!(problem.contains("runs SQL given as text"), "{problem}");
        detect(&source, sql).await.unwrap();
        let held = format!(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = {lock} \
             AND granted"
        );
        assert_eq!(scalar(&url, &held).await, 1, "{sql}");
    }
    source.close().await;
}

#[tokio::test]
async fn hardening_2_pg_notify_in_a_detector_is_discarded_with_the_rollback() {
    let Some(url) = postgres().await else { return };
    let mut listener = sqlx::postgres::PgListener::connect(&url).await.unwrap();
    listener.listen("trueup_channel").await.unwrap();
    let source = open_source(&url).await;
    detect(
        &source,
        "SELECT pg_notify('trueup_channel', 'from a detector')::text",
    )
    .await
    .unwrap();
    let heard = tokio::time::timeout(Duration::from_millis(500), listener.recv()).await;
    assert!(heard.is_err(), "a notification arrived: {heard:?}");
    // The listener works: a committed notification arrives.
    pg::execute(&url, "SELECT pg_notify('trueup_channel', 'committed')").await;
    let heard = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("the committed notification")
        .unwrap();
    assert_eq!(heard.payload(), "committed");
    source.close().await;
}

#[tokio::test]
async fn hardening_2_dblink_writes_past_the_read_only_transaction() {
    let Some(url) = postgres().await else { return };
    let available = scalar(
        &url,
        "SELECT COUNT(*) FROM pg_available_extensions WHERE name = 'dblink'",
    )
    .await;
    if available == 0 {
        eprintln!("note: dblink is not installed on the test server: skipped");
        return;
    }
    pg::execute(&url, "CREATE EXTENSION dblink").await;
    let (role, role_url) = pg::login_role(
        &url,
        "dblink",
        "NOINHERIT",
        "GRANT SELECT ON orders TO {role}",
    )
    .await;
    // dblink is usable by every role by default; a non-superuser must give a password,
    // here that of the admin (any role's password it knows would do).
    let admin: url_parts::Parts = url_parts::Parts::of(&url);
    let source = open_source(&role_url).await;
    let rows = detect(
        &source,
        &format!(
            "SELECT dblink_exec('host={} port={} dbname={} user={} password={}', \
             'INSERT INTO orders VALUES (2, 0)') AS done",
            admin.host, admin.port, admin.database, admin.user, admin.password
        ),
    )
    .await
    .unwrap();
    assert_eq!(rows, [[Value::Text("INSERT 0 1".into())]]);
    source.close().await;
    assert_eq!(scalar(&url, "SELECT COUNT(*) FROM orders").await, 2);
    pg::drop_roles(&url, &[&role]).await;
}

/// The parts of a `postgres://user:password@host:port/database` URL.
mod url_parts {
    pub struct Parts {
        pub user: String,
        pub password: String,
        pub host: String,
        pub port: String,
        pub database: String,
    }

    impl Parts {
        pub fn of(url: &str) -> Parts {
            let rest = url.split_once("://").unwrap().1;
            let (userinfo, rest) = rest.rsplit_once('@').unwrap();
            let (user, password) = userinfo.split_once(':').unwrap();
            let (address, database) = rest.split_once('/').unwrap();
            let (host, port) = address.rsplit_once(':').unwrap();
            Parts {
                user: user.into(),
                password: password.into(),
                host: host.into(),
                port: port.into(),
                database: database.split('?').next().unwrap().into(),
            }
        }
    }
}

#[tokio::test]
async fn hardening_2_a_running_detector_holds_a_share_lock_that_ddl_waits_for() {
    let Some(url) = postgres().await else { return };
    let source = open_source(&url).await;
    let slow = detect(&source, "SELECT pg_sleep(2)::text, id FROM orders");
    let watch = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        // ALTER TABLE needs an exclusive lock: it waits behind the detector's share lock.
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("SET lock_timeout = '200ms'")
            .execute(&mut *conn)
            .await
            .unwrap();
        let err = sqlx::query("ALTER TABLE orders ADD COLUMN note TEXT")
            .execute(&mut *conn)
            .await
            .unwrap_err();
        err.to_string()
    };
    let (rows, err) = tokio::join!(slow, watch);
    rows.unwrap();
    assert!(err.contains("lock timeout"), "{err}");
    source.close().await;
}

#[tokio::test]
async fn hardening_2_sqlite_read_only_open_covers_attached_files_and_refuses_extensions() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main.db");
    let other = dir.path().join("other.db");
    for (path, table) in [(&main, "orders"), (&other, "notes")] {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE {table} (id INTEGER PRIMARY KEY); INSERT INTO {table} VALUES (1);"
        )))
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let source = open_source(&format!("sqlite://{}", main.display())).await;
    let missing = dir.path().join("missing.db");
    // ATTACH opens with the connection's read-only flags: it cannot create a file...
    let err = detect(&source, &format!("ATTACH '{}' AS m", missing.display()))
        .await
        .unwrap_err();
    assert!(err.contains("unable to open database"), "{err}");
    assert!(!missing.exists());
    // ...and an attached file is read-only too.
    detect(&source, &format!("ATTACH '{}' AS other", other.display()))
        .await
        .unwrap();
    let err = detect(&source, "INSERT INTO other.notes VALUES (2) RETURNING id")
        .await
        .unwrap_err();
    assert!(err.contains("readonly"), "{err}");
    // Loading an extension from SQL is not enabled.
    let err = detect(&source, "SELECT load_extension('x')")
        .await
        .unwrap_err();
    assert!(err.contains("not authorized"), "{err}");
    // A PRAGMA that writes the file is refused.
    let err = detect(&source, "PRAGMA user_version = 5")
        .await
        .unwrap_err();
    assert!(err.contains("readonly"), "{err}");
    // A URI asking for more than the connection's flags is refused.
    let err = detect(
        &source,
        &format!("ATTACH 'file:{}?mode=rwc' AS m2", missing.display()),
    )
    .await
    .unwrap_err();
    assert!(!missing.exists(), "{err}");
    // VACUUM INTO is not stopped by the read-only open: it writes a copy of the database to
    // any path the user can write. trueup's statement check is what refuses it.
    let copy = dir.path().join("copy.db");
    let vacuum = format!("VACUUM INTO '{}'", copy.display());
    detect(&source, &vacuum).await.unwrap();
    assert!(copy.exists());
    assert!(
        trueup_core::sql_text::detector_problem(
            &vacuum,
            Some(trueup_core::dialect::Dialect::Sqlite)
        )
        .is_some()
    );
    assert!(
        trueup_core::sql_text::detector_problem(
            "ATTACH 'x.db' AS x",
            Some(trueup_core::dialect::Dialect::Sqlite)
        )
        .is_some()
    );
    // Temporary tables live outside the file and are allowed.
    detect(&source, "CREATE TEMP TABLE scratch (x)")
        .await
        .unwrap();
    source.close().await;

    // What follows `?` in a sqlite URL does not loosen the read-only open.
    let source = open_source(&format!("sqlite://{}?mode=rwc", main.display())).await;
    let err = detect(&source, "INSERT INTO orders VALUES (2) RETURNING id")
        .await
        .unwrap_err();
    assert!(err.contains("readonly"), "{err}");
    source.close().await;
}

#[tokio::test]
async fn hardening_2_role_settings_are_defaults_a_session_can_change() {
    let Some(url) = postgres().await else { return };
    let grants = "GRANT SELECT, INSERT ON orders TO {role};";
    let (role, role_url) = pg::login_role(&url, "settings", "NOINHERIT", grants).await;
    pg::execute(
        &url,
        &format!(
            "ALTER ROLE \"{role}\" SET default_transaction_read_only = on; \
             ALTER ROLE \"{role}\" SET statement_timeout = '100ms';"
        ),
    )
    .await;
    let pool = sqlx::PgPool::connect(&role_url).await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let refused = sqlx::query("INSERT INTO orders VALUES (2, 0)")
        .execute(&mut *conn)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("read-only transaction"),
        "{refused}"
    );
    // Anyone with the role's password can turn it off in their own session.
    sqlx::query("SET default_transaction_read_only = off")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO orders VALUES (2, 0)")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    pool.close().await;
    // trueup sets each rule's own timeout, which replaces the role's statement_timeout.
    let source = open_source(&role_url).await;
    detect(&source, "SELECT pg_sleep(0.5)::text").await.unwrap();
    source.close().await;
    pg::drop_roles(&url, &[&role]).await;
}

#[tokio::test]
async fn hardening_2_pg_read_all_data_needs_an_inheriting_role() {
    let Some(url) = postgres().await else { return };
    let (noinherit, noinherit_url) = pg::login_role(
        &url,
        "readall_noinherit",
        "NOINHERIT",
        "GRANT pg_read_all_data TO {role};",
    )
    .await;
    let (inherit, inherit_url) = pg::login_role(
        &url,
        "readall_inherit",
        "INHERIT",
        "GRANT pg_read_all_data TO {role};",
    )
    .await;
    let source = open_source(&noinherit_url).await;
    let err = detect(&source, "SELECT id FROM orders").await.unwrap_err();
    assert!(err.contains("permission denied"), "{err}");
    source.close().await;
    let source = open_source(&inherit_url).await;
    assert_eq!(
        detect(&source, "SELECT id FROM orders").await.unwrap(),
        [[Value::Int(1)]]
    );
    source.close().await;
    pg::drop_roles(&url, &[&noinherit, &inherit]).await;
}

#[tokio::test]
async fn hardening_2_pg_signal_backend_members_can_cancel_another_roles_session() {
    let Some(url) = postgres().await else { return };
    let (app, app_url) = pg::login_role(&url, "signalled", "", "").await;
    let (signaller, signaller_url) = pg::login_role(
        &url,
        "signaller",
        "INHERIT",
        "GRANT pg_signal_backend TO {role};",
    )
    .await;
    let victim = busy_session(&app_url, "trueup_victim_signalled").await;
    let source = open_source(&signaller_url).await;
    let rows = detect(
        &source,
        &format!("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE usename = '{app}'"),
    )
    .await
    .unwrap();
    assert_eq!(rows, [[Value::Bool(true)]]);
    let ended = victim.await.unwrap().expect_err("the query was cancelled");
    assert!(ended.contains("canceling statement"), "{ended}");
    source.close().await;
    pg::drop_roles(&url, &[&signaller, &app]).await;
}

#[tokio::test]
async fn hardening_2_a_view_needs_select_on_the_view_only() {
    let Some(url) = postgres().await else { return };
    pg::execute(
        &url,
        "CREATE VIEW big_orders AS SELECT id FROM orders WHERE total > 1",
    )
    .await;
    let (role, role_url) = pg::login_role(
        &url,
        "view",
        "NOINHERIT",
        "GRANT SELECT ON big_orders TO {role};",
    )
    .await;
    let source = open_source(&role_url).await;
    assert_eq!(
        detect(&source, "SELECT id FROM big_orders").await.unwrap(),
        [[Value::Int(1)]]
    );
    let err = detect(&source, "SELECT id FROM orders").await.unwrap_err();
    assert!(err.contains("permission denied"), "{err}");
    source.close().await;
    pg::drop_roles(&url, &[&role]).await;
}
