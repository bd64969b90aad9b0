//! A deterministic demo shop with planted data problems.
//!
//! [`ShopSpec`] says how big the shop is, how many problems to plant and from which seed.
//! [`Planted`] is the truth a correct checker must report, computed without generating any
//! row. [`Shop`] yields the rows table by table (for any loader), [`create_sqlite`]
//! writes them to a new SQLite file, [`create_postgres`] loads them into a PostgreSQL
//! database with `COPY` and [`create_mysql`] into a MySQL (or MariaDB) database with
//! multi-row `INSERT`s.
//!
//! Everything derives from the seed: the same spec gives the same rows and the same planted
//! problems on every machine.
//!
//! Two kinds of problems are planted: those the e-commerce rule pack (`rules/ecommerce`)
//! finds ([`Planted::expected_findings`]: orphaned orders, duplicate emails, wrong totals,
//! wrong stock, bad payments), and those the check plugins find
//! ([`Planted::plugin_expected_findings`]): customers whose names are near-duplicates
//! (customers are named "First Last" from built-in lists, no two near-duplicates except
//! the planted pairs), malformed emails, products whose `gtin` (a GTIN-13) has a wrong
//! check digit or a letter, and absurd product prices (robust outliers).

#[cfg(test)]
mod definitions;
mod error;
mod generate;
mod load;
mod mysql;
mod names;
mod plan;
mod planted;
mod postgres;
mod rng;
mod rows;
mod spec;
mod sqlite;
mod time;

pub use error::{Error, Result};
pub use generate::Shop;
pub use mysql::{MYSQL_INDEXES, MYSQL_SCHEMA, create_mysql};
pub use planted::{ExpectedFindings, Planted};
pub use postgres::{POSTGRES_INDEXES, POSTGRES_SCHEMA, create_postgres};
pub use rows::{
    Cents, Customer, Inventory, Order, OrderItem, OrderStatus, Payment, PaymentStatus, Product,
};
pub use spec::ShopSpec;
pub use sqlite::{SQLITE_SCHEMA, create_sqlite};
pub use time::Timestamp;
