//! Fresh PostgreSQL databases on the test server that `scripts/test` starts. Included by
//! the integration tests of several crates (`#[path = ...] mod pg;`).

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

/// The admin URL of the test server, or `None` (with a note) when there is none. Fails
/// instead when `TRUEUP_REQUIRE_PG` is set, as `scripts/test` does, so that CI cannot skip.
pub fn admin_url() -> Option<String> {
    server_url("PostgreSQL", "TRUEUP_TEST_PG_URL", "TRUEUP_REQUIRE_PG")
}

/// The URL in `url_var` of the `server` test server, or `None` (with a note) when it is
/// not set; fails instead when `require_var` is set.
pub fn server_url(server: &str, url_var: &str, require_var: &str) -> Option<String> {
    match std::env::var(url_var) {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var_os(require_var).is_none(),
                "{require_var} is set but {url_var} is not: run the tests with scripts/test"
            );
            eprintln!(
                "note: no {server} test server ({url_var}): skipped; scripts/test starts one"
            );
            None
        }
    }
}

/// Creates an empty database and returns its URL.
pub async fn fresh_database(admin: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "trueup_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let pool = sqlx::PgPool::connect(admin)
        .await
        .expect("connect to the PostgreSQL test server");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&pool)
        .await
        .expect("create database");
    pool.close().await;
    with_database(admin, &name)
}

/// `url` pointing at database `name` instead.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a URL ending in /database");
    format!("{base}/{name}")
}

/// Runs a script of several statements.
pub async fn execute(url: &str, script: &str) {
    let pool = sqlx::PgPool::connect(url)
        .await
        .expect("connect to the test database");
    sqlx::raw_sql(sqlx::AssertSqlSafe(script.to_owned()))
        .execute(&pool)
        .await
        .expect("script");
    pool.close().await;
}

/// `url` logging in as `user` with `password` instead.
pub fn as_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}:{password}@{host}")
}

/// Creates a login role named after `tag` (roles belong to the whole server, so the name
/// is unique to this test process), with `options` (e.g. `NOINHERIT`), then runs `grants`
/// in the database at `url` (`{role}` in it is the role's name). Returns the role's name
/// and a URL that logs in as it.
pub async fn login_role(url: &str, tag: &str, options: &str, grants: &str) -> (String, String) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "trueup_{tag}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let script = format!(
        "CREATE ROLE \"{name}\" LOGIN PASSWORD 'trueup-role' {options}; {}",
        grants.replace("{role}", &format!("\"{name}\""))
    );
    execute(url, &script).await;
    let login = as_user(url, &name, "trueup-role");
    (name, login)
}

/// Drops roles made by [`login_role`]: what they own in the database at `url` goes to the
/// admin, what they were granted there goes.
pub async fn drop_roles(url: &str, names: &[&str]) {
    let script: String = names
        .iter()
        .map(|name| {
            format!(
                "REASSIGN OWNED BY \"{name}\" TO CURRENT_USER; DROP OWNED BY \"{name}\"; DROP ROLE \"{name}\";"
            )
        })
        .collect();
    execute(url, &script).await;
}
