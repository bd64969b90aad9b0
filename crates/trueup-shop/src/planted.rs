//! The planted problems: what a correct checker must report for a shop, no more, no less.

use std::collections::BTreeSet;

use crate::plan::{Plan, customer_email};
use crate::spec::ShopSpec;

/// The findings a correct check of the shop reports: one list per rule of
/// `rules/ecommerce`, then one per check of the plugins (near-duplicate names, email syntax,
/// GTIN check digits, price outliers), each sorted ascending.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Planted {
    /// Orders whose `customer_id` matches no customer.
    pub orphaned_orders: Vec<i64>,
    /// Emails shared by two or more customers, once each.
    pub duplicate_emails: Vec<String>,
    /// Orders whose `total_amount` differs by at least 0.01 from Σ quantity × unit_price
    /// of their items.
    pub wrong_totals: Vec<i64>,
    /// Products whose `stock_quantity` differs from Σ inventory quantity (0 without
    /// inventory rows).
    pub wrong_stock: Vec<i64>,
    /// COMPLETED orders without a payment, with a payment that is not COMPLETED, or with a
    /// payment of another amount than the order's total.
    pub bad_payments: Vec<i64>,
    /// Customers whose email is malformed: longer than 254 bytes; not exactly one `@`; a
    /// local part that is empty, longer than 64, starts or ends with `.` or holds `..`; a
    /// domain that is empty, has no `.`, starts or ends with `.` or `-`, holds `..` or a
    /// character other than ASCII letters, digits, `-` and `.`; or whitespace or an ASCII
    /// control character anywhere. NULL emails are not malformed.
    pub malformed_emails: Vec<i64>,
    /// Pairs of customers (original, copy) whose names are near-duplicates: equal once
    /// normalized (lowercase, every character other than an ASCII letter or digit a space,
    /// runs of spaces one space, trimmed), or both normalized names of 8 characters or more
    /// and at Levenshtein distance 1 — or 2 when both have 12 or more. No other two customers'
    /// names are near-duplicates.
    pub near_duplicate_names: Vec<(i64, i64)>,
    /// Products whose `gtin` is not a valid GTIN-13 (13 digits, the last the GS1 check
    /// digit): a wrong check digit, or a letter.
    pub bad_gtins: Vec<i64>,
    /// Products whose price is a robust outlier: |price − median| > 8 × MAD, MAD the median
    /// of |price − median|, over all products (the median of an even count is the mean of the
    /// two middle values).
    pub price_outliers: Vec<i64>,
}

/// The findings one rule of the e-commerce pack must report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedFindings {
    /// The rule's id.
    pub rule: &'static str,
    /// What its findings are, for people.
    pub what: &'static str,
    /// The rule's (single) key column.
    pub key_column: &'static str,
    /// The key values, as text.
    pub keys: BTreeSet<String>,
}

impl ExpectedFindings {
    fn new(
        rule: &'static str,
        what: &'static str,
        key_column: &'static str,
        keys: BTreeSet<String>,
    ) -> Self {
        Self {
            rule,
            what,
            key_column,
            keys,
        }
    }
}

impl Planted {
    /// The planted problems of the shop `spec` describes, without generating its rows.
    pub fn for_spec(spec: &ShopSpec) -> Self {
        Self::from_plan(&Plan::new(spec))
    }

    pub(crate) fn from_plan(plan: &Plan) -> Self {
        Self {
            orphaned_orders: sorted(plan.orphan_customer.keys().copied()),
            duplicate_emails: sorted(plan.duplicate_owners.iter().map(|&id| customer_email(id))),
            wrong_totals: sorted(plan.total_delta.keys().copied()),
            wrong_stock: sorted(plan.stock_delta.keys().copied()),
            bad_payments: sorted(plan.bad_payments.keys().copied()),
            malformed_emails: sorted(plan.malformed_emails.keys().copied()),
            near_duplicate_names: sorted(plan.near_duplicate_names.iter().copied()),
            bad_gtins: sorted(plan.bad_gtins.keys().copied()),
            price_outliers: sorted(plan.price_outliers.keys().copied()),
        }
    }

    /// What the bundled e-commerce rule pack (`rules/ecommerce/`) must report on this shop,
    /// rule by rule: every planted key and nothing else.
    pub fn expected_findings(&self) -> [ExpectedFindings; 5] {
        let ids = |ids: &[i64]| ids.iter().map(i64::to_string).collect();
        [
            ExpectedFindings::new(
                "ecommerce.orphaned-orders",
                "orphaned orders",
                "id",
                ids(&self.orphaned_orders),
            ),
            ExpectedFindings::new(
                "ecommerce.duplicate-customer-emails",
                "duplicated emails",
                "email",
                self.duplicate_emails.iter().cloned().collect(),
            ),
            ExpectedFindings::new(
                "ecommerce.order-total-matches-items",
                "wrong order totals",
                "id",
                ids(&self.wrong_totals),
            ),
            ExpectedFindings::new(
                "ecommerce.stock-matches-inventory",
                "wrong stock counts",
                "id",
                ids(&self.wrong_stock),
            ),
            ExpectedFindings::new(
                "ecommerce.completed-orders-paid",
                "unpaid completed orders",
                "order_id",
                ids(&self.bad_payments),
            ),
        ]
    }

    /// What the check plugins' rules must report on this shop, rule by rule: every planted
    /// key and nothing else. A near-duplicate pair is two findings, one per customer.
    pub fn plugin_expected_findings(&self) -> Vec<ExpectedFindings> {
        let ids = |ids: &[i64]| ids.iter().map(i64::to_string).collect();
        let pairs = self
            .near_duplicate_names
            .iter()
            .flat_map(|&(original, copy)| [original, copy])
            .map(|id| id.to_string())
            .collect();
        vec![
            ExpectedFindings::new(
                "customers.email-syntax",
                "malformed emails",
                "id",
                ids(&self.malformed_emails),
            ),
            ExpectedFindings::new(
                "customers.name-near-duplicates",
                "customers with a near-duplicate name",
                "id",
                pairs,
            ),
            ExpectedFindings::new(
                "products.gtin-check-digit",
                "invalid GTINs",
                "id",
                ids(&self.bad_gtins),
            ),
            ExpectedFindings::new(
                "products.price-outliers",
                "price outliers",
                "id",
                ids(&self.price_outliers),
            ),
        ]
    }

    /// Number of findings of the e-commerce rule pack, over its five rules (the plugins'
    /// findings are not counted: see [`Planted::plugin_expected_findings`]).
    pub fn total(&self) -> usize {
        self.orphaned_orders.len()
            + self.duplicate_emails.len()
            + self.wrong_totals.len()
            + self.wrong_stock.len()
            + self.bad_payments.len()
    }
}

fn sorted<T: Ord>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut items: Vec<T> = items.collect();
    items.sort_unstable();
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_has_the_minimum_of_each_kind() {
        let planted = Planted::for_spec(&ShopSpec::demo());
        assert_eq!(planted.orphaned_orders.len(), 3);
        assert_eq!(planted.duplicate_emails.len(), 4);
        assert_eq!(planted.wrong_totals.len(), 5);
        assert_eq!(planted.wrong_stock.len(), 4);
        assert_eq!(planted.bad_payments.len(), 6);
        assert_eq!(planted.total(), 22);
    }

    #[test]
    fn the_same_seed_plants_the_same_problems() {
        let spec = ShopSpec::demo();
        assert_eq!(Planted::for_spec(&spec), Planted::for_spec(&spec));
        let other = ShopSpec { seed: 43, ..spec };
        assert_ne!(Planted::for_spec(&spec), Planted::for_spec(&other));
    }

    #[test]
    fn kinds_on_orders_do_not_overlap() {
        let planted = Planted::for_spec(&ShopSpec {
            orders: 5000,
            problem_rate: 0.1,
            seed: 9,
        });
        for id in &planted.bad_payments {
            assert!(planted.orphaned_orders.binary_search(id).is_err());
            assert!(planted.wrong_totals.binary_search(id).is_err());
        }
        for id in &planted.wrong_totals {
            assert!(planted.orphaned_orders.binary_search(id).is_err());
        }
    }
}

/// The planted truth of the check plugins against the generated rows, by the definitions the
/// plugins apply (`definitions.rs`).
#[cfg(test)]
mod plugin_truth {
    use std::collections::{BTreeSet, HashMap};

    use super::*;
    use crate::definitions::{
        email_malformed, gtin_valid, levenshtein, near_duplicates, near_duplicates_of, normalize,
        robust_outliers, with_near_duplicates,
    };
    use crate::generate::Shop;
    use crate::names::customer_name;

    /// The size `bench/sqlite.sh` and the large SQLite test use.
    const BENCH_SQLITE: ShopSpec = ShopSpec {
        orders: 250_000,
        problem_rate: 0.001,
        seed: 42,
    };

    /// Scale factor 1, as `bench/postgres.sh` loads it.
    const SCALE_FACTOR_ONE: ShopSpec = ShopSpec {
        orders: 1_500_000,
        problem_rate: 0.01,
        seed: 42,
    };

    /// Shops of several sizes, rates and seeds, the extremes included.
    fn specs() -> Vec<ShopSpec> {
        let mut specs = vec![
            ShopSpec::demo(),
            ShopSpec {
                orders: 5000,
                problem_rate: 0.1,
                seed: 7,
            },
            ShopSpec {
                orders: 6000,
                problem_rate: 0.02,
                seed: 7,
            },
            ShopSpec {
                orders: 10,
                problem_rate: 0.0,
                seed: 3,
            },
            ShopSpec {
                orders: 3000,
                problem_rate: 1.0,
                seed: 11,
            },
        ];
        specs.extend([0, 1, 2, 3, u64::MAX].map(|seed| ShopSpec {
            orders: 300,
            problem_rate: 0.01,
            seed,
        }));
        specs
    }

    fn ids_of_pairs(planted: &Planted) -> BTreeSet<i64> {
        planted
            .near_duplicate_names
            .iter()
            .flat_map(|&(a, b)| [a, b])
            .collect()
    }

    fn normal_names(customers: u64) -> Vec<(i64, String)> {
        (1..=i64::try_from(customers).unwrap())
            .map(|id| (id, customer_name(id)))
            .collect()
    }

    #[test]
    fn the_demo_has_the_minimum_of_each_plugin_problem() {
        let planted = Planted::for_spec(&ShopSpec::demo());
        assert_eq!(planted.near_duplicate_names.len(), 5);
        assert_eq!(planted.malformed_emails.len(), 5);
        assert_eq!(planted.bad_gtins.len(), 4);
        assert_eq!(planted.price_outliers.len(), 3);
        let findings = planted.plugin_expected_findings();
        let counts: Vec<(&str, usize)> = findings.iter().map(|e| (e.rule, e.keys.len())).collect();
        assert_eq!(
            counts,
            [
                ("customers.email-syntax", 5),
                ("customers.name-near-duplicates", 10),
                ("products.gtin-check-digit", 4),
                ("products.price-outliers", 3),
            ]
        );
        assert!(findings.iter().all(|e| e.key_column == "id"));
    }

    #[test]
    fn normal_names_are_never_near_duplicates() {
        let names = normal_names(ShopSpec::demo().customers());
        // Every pair, as the definition says.
        for (i, (a, name_a)) in names.iter().enumerate() {
            for (b, name_b) in &names[i + 1..] {
                assert!(
                    !near_duplicates(name_a, name_b),
                    "{a} {name_a} / {b} {name_b}"
                );
            }
        }
        assert_eq!(with_near_duplicates(&names), BTreeSet::new());
        let names = normal_names(BENCH_SQLITE.customers());
        assert_eq!(names.len(), 25_000);
        assert_eq!(with_near_duplicates(&names), BTreeSet::new());
    }

    /// A sample of scale factor 1's 150k customers against all of them.
    #[test]
    fn a_sample_of_a_big_shop_has_no_near_duplicate_names() {
        let customers = SCALE_FACTOR_ONE.customers();
        let all = normal_names(customers);
        let probes: Vec<(i64, String)> = all.iter().step_by(997).cloned().collect();
        assert!(probes.len() > 150);
        assert_eq!(
            near_duplicates_of(&probes, all.into_iter()),
            BTreeSet::new()
        );
    }

    /// Every name of a scale factor 1 shop and a sample of scale factor 3's (names with a
    /// middle name): `cargo test -p trueup-shop --release -- --ignored`.
    #[test]
    #[ignore = "large: 150k names against each other, and 450k against a sample"]
    fn big_shops_have_no_near_duplicate_names() {
        let names = normal_names(SCALE_FACTOR_ONE.customers());
        assert_eq!(with_near_duplicates(&names), BTreeSet::new());
        let customers = 3 * SCALE_FACTOR_ONE.customers();
        let all = normal_names(customers);
        let probes: Vec<(i64, String)> = all.iter().skip(140_000).step_by(331).cloned().collect();
        assert!(probes.iter().any(|(_, name)| name.split(' ').count() == 3));
        assert_eq!(
            near_duplicates_of(&probes, all.into_iter()),
            BTreeSet::new()
        );
    }

    /// The planted pairs of scale factor 1 are its only near-duplicates.
    #[test]
    #[ignore = "large: 150k names"]
    fn a_big_shop_has_exactly_the_planted_near_duplicates() {
        let shop = Shop::new(&SCALE_FACTOR_ONE);
        let planted = shop.planted();
        assert_eq!(planted.near_duplicate_names.len(), 1500);
        let names: Vec<(i64, String)> = shop.customers().map(|c| (c.id, c.name)).collect();
        assert_eq!(with_near_duplicates(&names), ids_of_pairs(&planted));
    }

    #[test]
    fn the_planted_pairs_are_the_only_near_duplicate_names() {
        for spec in specs() {
            let shop = Shop::new(&spec);
            let planted = shop.planted();
            let names: HashMap<i64, String> = shop.customers().map(|c| (c.id, c.name)).collect();
            for &(original, copy) in &planted.near_duplicate_names {
                assert_ne!(original, copy);
                assert_eq!(names[&original], customer_name(original));
                assert!(
                    near_duplicates(&names[&original], &names[&copy]),
                    "{spec:?}: {} / {}",
                    names[&original],
                    names[&copy]
                );
            }
            let names: Vec<(i64, String)> = names.into_iter().collect();
            let pairs = planted.near_duplicate_names.len();
            assert_eq!(ids_of_pairs(&planted).len(), 2 * pairs, "{spec:?}");
            assert_eq!(
                with_near_duplicates(&names),
                ids_of_pairs(&planted),
                "{spec:?}"
            );
        }
    }

    #[test]
    fn the_demo_plants_every_variety_of_near_duplicate_name() {
        let shop = Shop::new(&ShopSpec::demo());
        let names: HashMap<i64, String> = shop.customers().map(|c| (c.id, c.name)).collect();
        let mut kinds = BTreeSet::new();
        for &(original, copy) in &shop.planted().near_duplicate_names {
            let (a, b) = (&names[&original], &names[&copy]);
            let (na, nb) = (normalize(a), normalize(b));
            let kind = match levenshtein(&na, &nb) {
                0 if b.contains("  ") => "doubled space",
                0 if b.contains('-') => "hyphen",
                0 => "case",
                1 => "dropped letter",
                2 => "swapped letters",
                _ => "other",
            };
            kinds.insert(kind);
        }
        assert_eq!(
            kinds,
            BTreeSet::from([
                "case",
                "doubled space",
                "dropped letter",
                "hyphen",
                "swapped letters"
            ])
        );
    }

    #[test]
    fn exactly_the_planted_emails_are_malformed_and_duplicates_stay_exact() {
        for spec in specs() {
            let shop = Shop::new(&spec);
            let planted = shop.planted();
            let mut malformed = Vec::new();
            let mut uses: HashMap<String, usize> = HashMap::new();
            for customer in shop.customers() {
                let Some(email) = customer.email else {
                    continue;
                };
                if email_malformed(&email) {
                    malformed.push(customer.id);
                }
                *uses.entry(email).or_default() += 1;
            }
            assert_eq!(malformed, planted.malformed_emails, "{spec:?}");
            let mut duplicates: Vec<String> = uses
                .into_iter()
                .filter(|&(_, n)| n > 1)
                .map(|(email, _)| email)
                .collect();
            duplicates.sort_unstable();
            assert_eq!(duplicates, planted.duplicate_emails, "{spec:?}");
        }
    }

    #[test]
    fn the_demo_plants_every_named_variety_of_malformed_email() {
        let shop = Shop::new(&ShopSpec::demo());
        let planted = shop.planted();
        let emails: Vec<String> = shop
            .customers()
            .filter(|c| planted.malformed_emails.contains(&c.id))
            .filter_map(|c| c.email)
            .collect();
        assert!(emails.iter().any(|e| !e.contains('@')), "{emails:?}");
        assert!(emails.iter().any(|e| e.matches('@').count() == 2));
        assert!(emails.iter().any(|e| e.contains(' ')));
        assert!(emails.iter().any(|e| e.ends_with("@examplecom")));
        assert!(emails.iter().any(|e| e.ends_with('.')));
    }

    #[test]
    fn exactly_the_planted_gtins_are_invalid() {
        for spec in specs() {
            let shop = Shop::new(&spec);
            let planted = shop.planted();
            let mut seen = BTreeSet::new();
            let mut invalid = Vec::new();
            for product in shop.products() {
                assert!(seen.insert(product.gtin.clone()), "{} twice", product.gtin);
                if !gtin_valid(&product.gtin) {
                    invalid.push(product.id);
                }
            }
            assert_eq!(invalid, planted.bad_gtins, "{spec:?}");
        }
        let shop = Shop::new(&ShopSpec::demo());
        let bad: Vec<String> = shop
            .products()
            .filter(|p| shop.planted().bad_gtins.contains(&p.id))
            .map(|p| p.gtin)
            .collect();
        assert!(
            bad.iter()
                .any(|g| g.bytes().any(|b| b.is_ascii_alphabetic()))
        );
        assert!(bad.iter().any(|g| g.bytes().all(|b| b.is_ascii_digit())));
        assert!(bad.iter().all(|g| g.len() == 13));
    }

    #[test]
    fn exactly_the_planted_prices_are_outliers() {
        for spec in specs() {
            let shop = Shop::new(&spec);
            let prices: Vec<(i64, f64)> =
                shop.products().map(|p| (p.id, p.price.dollars())).collect();
            let expected: BTreeSet<i64> = shop.planted().price_outliers.into_iter().collect();
            assert_eq!(robust_outliers(&prices, 8.0), expected, "{spec:?}");
        }
    }
}
