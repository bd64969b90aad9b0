//! End to end: a shop loaded into MariaDB (MySQL) has exactly the planted problems, as the
//! runbook's integrity queries (and the queries of `rules/ecommerce`) find them, and its
//! decoys; its money is exact and its text compares byte by byte.
//!
//! Needs a server: `TRUEUP_TEST_MYSQL_URL` (an admin URL, as `scripts/test` exports).
//! Without one the tests are skipped with a note, unless `TRUEUP_REQUIRE_MYSQL` is set.

mod common;
#[path = "../../../tests/support/mysql.rs"]
mod mysql;
#[path = "../../../tests/support/pg.rs"]
mod pg;

use common::Db;
use sqlx::mysql::MySqlPool;
use trueup_shop::{Error, Planted, Shop, ShopSpec, create_mysql};

impl Fresh {
    async fn new() -> Option<Self> {
        let admin = mysql::admin_url()?;
        let url = mysql::fresh_database(&admin).await;
        let name = url
            .rsplit_once('/')
            .map(|(_, name)| name.to_owned())
            .expect("a URL ending in /database");
        Some(Self { admin, name, url })
    }

    async fn drop_database(self, pool: MySqlPool) {
        pool.close().await;
        mysql::execute(&self.admin, &format!("DROP DATABASE `{}`", self.name)).await;
    }
}

common::server_tests! {
    create: create_mysql,
    pool: MySqlPool,
    unreachable: Error::Mysql,
    unreachable_url: "mysql://someone:hunter2@127.0.0.1:1/nowhere",
    count_tables: "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()",
    moment_suffix: ".000000",
}

#[tokio::test]
async fn the_demo_has_its_keys_indexes_and_types() {
    let Some((_, pool, fresh)) = shop(&ShopSpec::demo()).await else {
        return;
    };
    let indexes = "SELECT COUNT(DISTINCT table_name, index_name) FROM information_schema.statistics
        WHERE table_schema = DATABASE() AND index_name LIKE 'idx%'";
    assert_eq!(pool.count(indexes).await, 5);
    let keys = "SELECT COUNT(*) FROM information_schema.table_constraints
        WHERE table_schema = DATABASE() AND constraint_type = 'PRIMARY KEY'";
    assert_eq!(pool.count(keys).await, 6, "a primary key on each table");
    let foreign = "SELECT COUNT(*) FROM information_schema.table_constraints
        WHERE table_schema = DATABASE() AND constraint_type = 'FOREIGN KEY'";
    assert_eq!(
        pool.count(foreign).await,
        0,
        "no foreign keys: the data breaks them"
    );
    let tables = "SELECT COUNT(*) FROM information_schema.tables
        WHERE table_schema = DATABASE() AND engine = 'InnoDB' AND table_collation = 'utf8mb4_bin'";
    assert_eq!(pool.count(tables).await, 6, "InnoDB, compared byte by byte");
    let types = "SELECT CAST(CONCAT(table_name, '.', column_name, ' ', column_type) AS CHAR)
        FROM information_schema.columns
        WHERE table_schema = DATABASE()
          AND column_name IN ('price', 'total_amount', 'unit_price', 'amount', 'created_at', 'email')";
    assert_eq!(
        pool.strings(types).await,
        [
            "customers.created_at datetime(6)",
            "customers.email varchar(255)",
            "order_items.unit_price decimal(10,2)",
            "orders.created_at datetime(6)",
            "orders.total_amount decimal(12,2)",
            "payments.amount decimal(12,2)",
            "payments.created_at datetime(6)",
            "products.created_at datetime(6)",
            "products.price decimal(10,2)",
        ]
    );
    fresh.drop_database(pool).await;
}

#[tokio::test]
async fn text_is_stored_exactly_and_compares_case_sensitively() {
    let spec = ShopSpec::demo();
    let Some((_, pool, fresh)) = shop(&spec).await else {
        return;
    };
    let shop = Shop::new(&spec);
    let mut customers: Vec<_> = shop.customers().map(|c| (c.id, c.email, c.name)).collect();
    customers.sort_unstable();
    let mut stored = pool.customers().await;
    stored.sort_unstable();
    assert_eq!(stored, customers, "every email and name as generated");
    let upper =
        "SELECT COUNT(*) FROM customers WHERE email = UPPER(email) AND email <> LOWER(email)";
    assert_eq!(pool.count(upper).await, 0, "text compares case-sensitively");
    fresh.drop_database(pool).await;
}

#[tokio::test]
async fn a_failed_load_drops_the_tables_it_made() {
    let Some(fresh) = Fresh::new().await else {
        return;
    };
    // A user who may create, fill and drop tables but not index them: the load fails at
    // the first index, after every table is made and loaded.
    let user = format!("trueup_noindex_{}", std::process::id());
    let grants = format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY 'no-index';
         GRANT SELECT, INSERT, CREATE, DROP ON `{}`.* TO '{user}'@'%'",
        fresh.name
    );
    mysql::execute(&fresh.admin, &grants).await;
    let err = create_mysql(
        &mysql::as_user(&fresh.url, &user, "no-index"),
        &ShopSpec::demo(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Mysql { .. }), "{err:?}");
    assert!(!err.to_string().contains("no-index"), "no password: {err}");
    let pool = fresh.pool().await;
    let tables = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()";
    assert_eq!(pool.count(tables).await, 0, "the tables are dropped again");
    mysql::execute(&fresh.admin, &format!("DROP USER '{user}'@'%'")).await;
    fresh.drop_database(pool).await;
}
