//! The planted problems: what a correct checker must report for a shop, no more, no less.

use crate::plan::{Plan, customer_email};
use crate::spec::ShopSpec;

/// The findings a correct check of the shop reports, one list per rule of
/// `rules/ecommerce`, each sorted ascending.
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
    pub keys: std::collections::BTreeSet<String>,
}

impl ExpectedFindings {
    fn new(
        rule: &'static str,
        what: &'static str,
        key_column: &'static str,
        keys: std::collections::BTreeSet<String>,
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

    /// Number of findings over all kinds.
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
