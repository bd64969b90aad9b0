//! `validate` warns, once per source, when the source's connection can do more than read the
//! tables its rules read; warnings keep the exit code 0 and have their own `warnings` array
//! in JSON. On the real PostgreSQL server with roles made for each test, and on SQLite.

mod common;
#[path = "../../../tests/support/pg.rs"]
mod pg;

use std::path::Path;

use common::{Run, run, trueup};

const SETUP: &str = "
CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT);
CREATE TABLE order_items (id INTEGER PRIMARY KEY, order_id INTEGER);
CREATE VIEW open_orders AS SELECT * FROM orders WHERE status = 'OPEN';
INSERT INTO orders VALUES (1, 'OPEN');
INSERT INTO order_items VALUES (1, 1), (2, NULL);
";

/// A built-in naming `order_items`, and a `sql` rule that reaches `orders` only through the
/// view: only the server's plan tells that it reads `orders`.
const RULES: [(&str, &str); 2] = [
    (
        "items.toml",
        r#"
[[rule]]
id = "items.order"
title = "Items without an order"
severity = "high"
[rule.detector]
kind = "not-null"
table = "order_items"
columns = ["order_id"]
key = ["id"]
"#,
    ),
    (
        "open.toml",
        r#"
[[rule]]
id = "items.closed-order"
title = "Items of orders that are not open"
severity = "low"
[rule.detector]
kind = "sql"
key = ["id"]
query = "SELECT i.id FROM order_items i LEFT JOIN open_orders o ON o.id = i.order_id WHERE o.id IS NULL"
"#,
    ),
];

/// Grants that let a role run the rules and nothing more.
const READ: &str = "GRANT SELECT ON orders, order_items, open_orders TO {role};";

/// The variable the projects' URLs take their password from: a password written out in
/// `trueup.toml` is warned about, and these tests count the other warnings.
const PASSWORD_VARIABLE: &str = "TRUEUP_TEST_LP_PASSWORD";

/// A project whose URL reads its password from [`PASSWORD_VARIABLE`], and the password.
fn project(url: &str, rules: &[(&str, &str)]) -> tempfile::TempDir {
    let user_end = url.find("://").map_or(0, |i| i + 3);
    let at = url.find('@').filter(|at| *at > user_end);
    let colon = at.and_then(|at| url[user_end..at].find(':').map(|i| (user_end + i, at)));
    let (written, password) = match colon {
        Some((colon, at)) => (
            format!("{}${{{PASSWORD_VARIABLE}}}{}", &url[..=colon], &url[at..]),
            url[colon + 1..at].to_owned(),
        ),
        None => (url.to_owned(), String::new()),
    };
    let dir = common::project(&written, rules);
    std::fs::write(dir.path().join("password"), password).expect("keep the password");
    dir
}

fn validate(dir: &Path, format: &str) -> Run {
    let password = std::fs::read_to_string(dir.join("password")).unwrap_or_default();
    run(trueup()
        .arg("--project")
        .arg(dir.join("trueup.toml"))
        .env(PASSWORD_VARIABLE, password)
        .args(["validate", "--format", format]))
}

/// Runs `validate` in both formats: asserts it is valid (exit 0) and returns the human
/// output's warnings and the JSON `warnings` messages.
fn warnings(url: &str) -> (String, Vec<String>) {
    let dir = project(url, &RULES);
    let human = validate(dir.path(), "human");
    assert_eq!(human.code, Some(0), "{}", human.all());
    assert!(human.stdout.contains("are valid"), "{}", human.all());
    let json = validate(dir.path(), "json");
    assert_eq!(json.code, Some(0), "{}", json.all());
    let report = json.json();
    assert_eq!(report["valid"], true);
    assert_eq!(report["problems"], serde_json::json!([]));
    let messages = report["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("no warnings array: {}", json.all()))
        .iter()
        .map(|w| w["message"].as_str().unwrap().to_owned())
        .collect();
    (human.stderr, messages)
}

async fn database() -> Option<String> {
    let url = pg::fresh_database(&pg::admin_url()?).await;
    pg::execute(&url, SETUP).await;
    Some(url)
}

#[tokio::test]
async fn hardening_2_a_role_with_only_select_gets_no_warning() {
    let Some(url) = database().await else { return };
    let (reader, reader_url) = pg::login_role(&url, "reader", "NOINHERIT", READ).await;
    let (stderr, json) = warnings(&reader_url);
    assert!(!stderr.contains("warning"), "{stderr}");
    assert!(json.is_empty(), "{json:?}");
    pg::drop_roles(&url, &[&reader]).await;
}

#[tokio::test]
async fn hardening_2_the_admin_role_is_warned_about_naming_the_tables() {
    let Some(url) = database().await else { return };
    let admin = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap();
    let (stderr, json) = warnings(&url);
    assert_eq!(json.len(), 1, "one warning per source: {json:?}");
    let expected = format!(
        "source `db` can do more than read: role `{admin}` is a superuser: it can write to \
         every table and cancel or terminate any session; role `{admin}` can write to the \
         tables its rules read: `order_items`, `orders`"
    );
    assert_eq!(json[0], expected);
    assert!(stderr.contains("warning: "), "{stderr}");
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(
        stderr.contains("trueup.toml:3:7"),
        "at the source's url: {stderr}"
    );
    assert!(
        stderr.contains("docs/guides/least-privilege.md"),
        "{stderr}"
    );
}

#[tokio::test]
async fn hardening_2_write_privileges_are_found_through_views_and_columns() {
    let Some(url) = database().await else { return };
    let grants = format!("{READ} GRANT UPDATE (status) ON orders TO {{role}};");
    let (writer, writer_url) = pg::login_role(&url, "writer", "NOINHERIT", &grants).await;
    let (_, json) = warnings(&writer_url);
    assert_eq!(
        json,
        [format!(
            "source `db` can do more than read: role `{writer}` can write to the tables its \
             rules read: `orders`"
        )]
    );
    pg::drop_roles(&url, &[&writer]).await;
}

#[tokio::test]
async fn hardening_2_membership_of_the_owner_or_pg_signal_backend_is_warned_about() {
    let Some(url) = database().await else { return };
    let (app, _) = pg::login_role(
        &url,
        "owner",
        "",
        "ALTER TABLE orders OWNER TO {role}; ALTER TABLE order_items OWNER TO {role};",
    )
    .await;
    let grants =
        format!("{READ} GRANT \"{app}\" TO {{role}}; GRANT pg_signal_backend TO {{role}};");
    let (member, member_url) = pg::login_role(&url, "member", "NOINHERIT", &grants).await;
    let (_, json) = warnings(&member_url);
    assert_eq!(json.len(), 1, "{json:?}");
    assert!(
        json[0].contains(&format!(
            "role `{member}` is a member of `{app}`, which owns `order_items`, `orders`: it can \
             take that role (even with NOINHERIT) and cancel or terminate its sessions"
        )),
        "{json:?}"
    );
    assert!(
        json[0].contains(&format!(
            "role `{member}` is a member of `pg_signal_backend`"
        )),
        "{json:?}"
    );
    // NOINHERIT: the owner's write privileges are not the member's own.
    assert!(!json[0].contains("can write"), "{json:?}");

    // The owner itself owns, and can write to, what it reads.
    let owner_url = pg::as_user(&url, &app, "trueup-role");
    pg::execute(&url, &format!("GRANT SELECT ON open_orders TO \"{app}\"")).await;
    let (_, json) = warnings(&owner_url);
    assert!(
        json[0].contains("can write to the tables its rules read: `order_items`, `orders`"),
        "{json:?}"
    );
    assert!(
        json[0]
            .contains("owns `order_items`, `orders`: if the application connects as this role too"),
        "{json:?}"
    );
    pg::drop_roles(&url, &[&member, &app]).await;
}

#[tokio::test]
async fn hardening_2_warnings_come_with_problems_too() {
    let Some(url) = database().await else { return };
    let broken = r#"
[[rule]]
id = "items.typo"
title = "A misspelt column"
severity = "low"
[rule.detector]
kind = "not-null"
table = "order_items"
columns = ["order"]
key = ["id"]
"#;
    let dir = project(&url, &[("typo.toml", broken)]);
    let json = validate(dir.path(), "json");
    assert_eq!(json.code, Some(2), "{}", json.all());
    let report = json.json();
    assert_eq!(report["valid"], false);
    assert_eq!(report["problems"].as_array().unwrap().len(), 1);
    assert_eq!(report["warnings"].as_array().unwrap().len(), 1);
    let human = validate(dir.path(), "human");
    assert_eq!(human.code, Some(2));
    assert!(human.stderr.contains("warning: "), "{}", human.all());
    assert!(
        human.stderr.contains("has no column `order`"),
        "{}",
        human.all()
    );
}

#[tokio::test]
async fn hardening_2_a_writable_sqlite_file_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::raw_sql(SETUP).execute(&pool).await.unwrap();
    pool.close().await;
    let url = format!("sqlite://{}", path.display());
    let (stderr, json) = warnings(&url);
    assert_eq!(
        json,
        [format!(
            "source `db` can do more than read: the database file `{}` is writable by the user \
             trueup runs as (trueup opens it read-only, so detection cannot write to it, but \
             nothing else stops that user)",
            path.display()
        )]
    );
    assert!(stderr.contains("warning: "), "{stderr}");

    let mut permissions = std::fs::metadata(&path).unwrap().permissions();
    permissions.set_readonly(true);
    std::fs::set_permissions(&path, permissions).unwrap();
    // Root may write any file: then the warning stays, and is right.
    let root = std::fs::OpenOptions::new().write(true).open(&path).is_ok();
    let (_, json) = warnings(&url);
    assert_eq!(json.is_empty(), !root, "{json:?}");
}

#[tokio::test]
async fn hardening_2_a_built_in_with_bound_values_is_explained_too() {
    let Some(url) = database().await else { return };
    let grants = "GRANT SELECT ON open_orders TO {role}; GRANT DELETE ON orders TO {role};";
    let (role, role_url) = pg::login_role(&url, "bound", "NOINHERIT", grants).await;
    // Only the view is named, and the query has bound values: the plan names `orders`.
    let rule = r#"
[[rule]]
id = "orders.status"
title = "Open orders with an unknown status"
severity = "low"
[rule.detector]
kind = "accepted-values"
table = "open_orders"
column = "status"
key = ["id"]
values = ["OPEN"]
"#;
    let dir = project(&role_url, &[("status.toml", rule)]);
    let json = validate(dir.path(), "json");
    assert_eq!(json.code, Some(0), "{}", json.all());
    assert_eq!(
        json.json()["warnings"][0]["message"],
        format!(
            "source `db` can do more than read: role `{role}` can write to the tables its \
             rules read: `orders`"
        )
    );
    pg::drop_roles(&url, &[&role]).await;
}
