//! Fresh MariaDB (MySQL) databases on the test server that `scripts/test` starts. Included
//! by the integration tests of several crates (`#[path = ...] mod mysql;`), beside `pg`
//! (whose URL helpers it shares).

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

#[allow(unused_imports)]
pub use super::pg::{as_user, with_database};

/// The admin URL of the MariaDB test server, or `None` (with a note) when there is none.
/// Fails instead when `TRUEUP_REQUIRE_MYSQL` is set, as `scripts/test` does, so that CI
/// cannot skip.
pub fn admin_url() -> Option<String> {
    super::pg::server_url("MariaDB", "TRUEUP_TEST_MYSQL_URL", "TRUEUP_REQUIRE_MYSQL")
}

/// Creates an empty database and returns its URL. Its text compares byte for byte
/// (`utf8mb4_bin`), as SQLite's and PostgreSQL's do, so that one fixture means the same on
/// every backend (MySQL's default collation would find `b@x.io` and `B@x.io` equal).
pub async fn fresh_database(admin: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "trueup_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let pool = sqlx::MySqlPool::connect(admin)
        .await
        .expect("connect to the MariaDB test server");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    )))
    .execute(&pool)
    .await
    .expect("create database");
    pool.close().await;
    with_database(admin, &name)
}

/// Runs a script of several statements.
pub async fn execute(url: &str, script: &str) {
    let pool = sqlx::MySqlPool::connect(url)
        .await
        .expect("connect to the test database");
    sqlx::raw_sql(sqlx::AssertSqlSafe(script.to_owned()))
        .execute(&pool)
        .await
        .expect("script");
    pool.close().await;
}
