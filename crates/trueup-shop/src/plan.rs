//! Which rows carry a planted problem or a decoy, chosen from the seed before any row exists.
//!
//! The plan only needs each order's status, which is the first draw of the order's own
//! stream ([`draw_order_status`]); the generator makes the same draw, so the plan and the
//! rows agree by construction. Everything else the plan decides is an override the
//! generator applies to the row it would otherwise produce.

use std::collections::{HashMap, HashSet};

use crate::rng::{SplitMix64, Stream};
use crate::rows::{OrderStatus, PaymentStatus};
use crate::spec::ShopSpec;

/// Minimum number of problems of each kind, whatever the rate.
const MIN_ORPHANED_ORDERS: u64 = 3;
const MIN_DUPLICATE_EMAILS: u64 = 4;
const MIN_WRONG_TOTALS: u64 = 5;
const MIN_WRONG_STOCK: u64 = 4;
const MIN_BAD_PAYMENTS: u64 = 6;

/// Orphaned orders point at `customers + ORPHAN_OFFSET + k`, ids no customer has.
const ORPHAN_OFFSET: i64 = 1000;

/// How a COMPLETED order's payments are wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadPayment {
    /// No payment at all.
    Missing,
    /// One payment of the right amount that is not COMPLETED.
    Unfinished(PaymentStatus),
    /// One COMPLETED payment of the total plus this many cents.
    WrongAmount(i64),
    /// Two bad payments: a FAILED one of the total and a COMPLETED one of the total plus
    /// this many cents. The order is still one finding.
    FailedAndWrongAmount(i64),
}

/// The planted problems and decoys of one shop.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) seed: u64,
    pub(crate) customers: i64,
    pub(crate) products: i64,
    pub(crate) orders: i64,
    /// Customers without an email (decoys).
    pub(crate) null_emails: HashSet<i64>,
    /// Customer → the customer whose email it shares (the lowest id of its group).
    pub(crate) email_owner: HashMap<i64, i64>,
    /// The lowest customer id of each duplicate-email group.
    pub(crate) duplicate_owners: Vec<i64>,
    /// Products forced to have no inventory rows (one planted, one decoy).
    pub(crate) empty_products: HashSet<i64>,
    /// Product → units added to its stock (sign flipped if the stock would go negative).
    pub(crate) stock_delta: HashMap<i64, i64>,
    /// Order → the customer id no customer has.
    pub(crate) orphan_customer: HashMap<i64, i64>,
    /// CANCELLED orders without items and with a total of 0.00 (decoys).
    pub(crate) empty_orders: HashSet<i64>,
    /// Order → cents added to its total (sign flipped if the total would go negative).
    pub(crate) total_delta: HashMap<i64, i64>,
    /// COMPLETED order → how its payments are wrong.
    pub(crate) bad_payments: HashMap<i64, BadPayment>,
}

/// The status of an order: the first draw of its stream. COMPLETED 47%, SHIPPED 20%,
/// PENDING 20%, CANCELLED 13%.
pub(crate) fn draw_order_status(rng: &mut SplitMix64) -> OrderStatus {
    match rng.below(100) {
        0..47 => OrderStatus::Completed,
        47..67 => OrderStatus::Shipped,
        67..87 => OrderStatus::Pending,
        _ => OrderStatus::Cancelled,
    }
}

/// The email of customer `id` (before duplicates are planted).
pub(crate) fn customer_email(id: i64) -> String {
    format!("customer{id}@example.com")
}

impl Plan {
    pub(crate) fn new(spec: &ShopSpec) -> Self {
        let mut rng = SplitMix64::entity(spec.seed, Stream::Plan, 0);
        let customers = to_i64(spec.customers());
        let products = to_i64(spec.products());
        let orders = to_i64(spec.orders);
        let mut plan = Self {
            seed: spec.seed,
            customers,
            products,
            orders,
            null_emails: HashSet::new(),
            email_owner: HashMap::new(),
            duplicate_owners: Vec::new(),
            empty_products: HashSet::new(),
            stock_delta: HashMap::new(),
            orphan_customer: HashMap::new(),
            empty_orders: HashSet::new(),
            total_delta: HashMap::new(),
            bad_payments: HashMap::new(),
        };
        plan.plan_customers(&mut rng, spec.problem_rate);
        plan.plan_products(&mut rng, spec.problem_rate);
        plan.plan_orders(&mut rng, spec.problem_rate);
        plan
    }

    fn plan_customers(&mut self, rng: &mut SplitMix64, rate: f64) {
        let null_count = (self.customers / 500).max(3);
        let mut pool = Sampler::new((1..=self.customers).collect());
        self.null_emails = pool.draw_many(rng, null_count).into_iter().collect();

        // The null-email customers are already drawn, so no group can contain one.
        let groups = planted_count(rate, self.customers, MIN_DUPLICATE_EMAILS);
        for g in 0..groups {
            let size = if g == 0 { 3 } else { rng.range(2, 3) };
            let mut group = pool.draw_many(rng, size);
            if group.len() < 2 {
                break;
            }
            group.sort_unstable();
            let owner = group[0];
            self.duplicate_owners.push(owner);
            for &member in &group[1..] {
                self.email_owner.insert(member, owner);
            }
        }
    }

    fn plan_products(&mut self, rng: &mut SplitMix64, rate: f64) {
        let mut pool = Sampler::new((1..=self.products).collect());
        // One product without inventory gets stock (a finding), another keeps stock 0 (a
        // decoy); more of both kinds arise from the products' own draws.
        let planted_empty = pool.draw(rng);
        let decoy_empty = pool.draw(rng);
        self.empty_products
            .extend(planted_empty.into_iter().chain(decoy_empty));

        let count = planted_count(rate, self.products, MIN_WRONG_STOCK);
        let chosen = planted_empty
            .into_iter()
            .chain(pool.draw_many(rng, count.saturating_sub(1)));
        for id in chosen {
            let delta = rng.sign() * rng.range(1, 20);
            self.stock_delta.insert(id, delta);
        }
    }

    fn plan_orders(&mut self, rng: &mut SplitMix64, rate: f64) {
        let statuses: Vec<OrderStatus> = (1..=self.orders)
            .map(|id| draw_order_status(&mut SplitMix64::entity(self.seed, Stream::Order, id)))
            .collect();
        let status = |id: i64| statuses[usize::try_from(id - 1).unwrap_or(usize::MAX)];

        // Orphans are never COMPLETED, so they are not payment findings as well.
        let count = planted_count(rate, self.orders, MIN_ORPHANED_ORDERS);
        let candidates = (1..=self.orders)
            .filter(|&id| status(id) != OrderStatus::Completed)
            .collect();
        for (k, id) in Sampler::new(candidates)
            .draw_many(rng, count)
            .into_iter()
            .enumerate()
        {
            let customer = self.customers + ORPHAN_OFFSET + to_i64(k);
            self.orphan_customer.insert(id, customer);
        }

        let count = (self.orders / 500).max(2);
        let candidates = (1..=self.orders)
            .filter(|&id| {
                status(id) == OrderStatus::Cancelled && !self.orphan_customer.contains_key(&id)
            })
            .collect();
        self.empty_orders = Sampler::new(candidates)
            .draw_many(rng, count)
            .into_iter()
            .collect();

        let count = planted_count(rate, self.orders, MIN_WRONG_TOTALS);
        let candidates = (1..=self.orders)
            .filter(|id| !self.orphan_customer.contains_key(id) && !self.empty_orders.contains(id))
            .collect();
        for (k, id) in Sampler::new(candidates)
            .draw_many(rng, count)
            .into_iter()
            .enumerate()
        {
            let delta = match k {
                0 => 1, // one cent: a checker must find the smallest error too
                _ if k % 2 == 1 => rng.sign() * rng.range(2, 99),
                _ => rng.sign() * rng.range(100, 20_000),
            };
            self.total_delta.insert(id, delta);
        }

        let count = planted_count(rate, self.orders, MIN_BAD_PAYMENTS);
        let candidates = (1..=self.orders)
            .filter(|id| {
                status(*id) == OrderStatus::Completed
                    && !self.orphan_customer.contains_key(id)
                    && !self.total_delta.contains_key(id)
            })
            .collect();
        for (k, id) in Sampler::new(candidates)
            .draw_many(rng, count)
            .into_iter()
            .enumerate()
        {
            let bad = match k % 4 {
                0 => BadPayment::Missing,
                1 if k / 4 % 2 == 0 => BadPayment::Unfinished(PaymentStatus::Pending),
                1 => BadPayment::Unfinished(PaymentStatus::Failed),
                2 => BadPayment::WrongAmount(rng.sign() * rng.range(100, 5000)),
                _ => BadPayment::FailedAndWrongAmount(rng.sign() * rng.range(100, 5000)),
            };
            self.bad_payments.insert(id, bad);
        }
    }
}

/// `max(minimum, round(rate × base))` problems, before capping by the candidates.
fn planted_count(rate: f64, base: i64, minimum: u64) -> u64 {
    scaled(rate, u64::try_from(base).unwrap_or(0)).max(minimum)
}

/// `round(rate × base)` for a rate clamped to `0.0..=1.0` (NaN counts as 0).
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss,
    reason = "a configuration rate, clamped to 0..=1 so the product lies in 0..=base"
)]
fn scaled(rate: f64, base: u64) -> u64 {
    if rate.is_nan() || rate <= 0.0 {
        return 0;
    }
    ((rate.min(1.0) * base as f64).round() as u64).min(base)
}

/// Ids as the tables store them; sizes beyond `i64::MAX` are not meaningful.
fn to_i64<T: TryInto<i64>>(n: T) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// Draws distinct ids from a pool, in random order (a lazy Fisher–Yates shuffle).
struct Sampler {
    pool: Vec<i64>,
    drawn: usize,
}

impl Sampler {
    fn new(pool: Vec<i64>) -> Self {
        Self { pool, drawn: 0 }
    }

    fn draw(&mut self, rng: &mut SplitMix64) -> Option<i64> {
        let left = self.pool.len() - self.drawn;
        if left == 0 {
            return None;
        }
        let pick = self.drawn + rng.index(left);
        self.pool.swap(self.drawn, pick);
        self.drawn += 1;
        Some(self.pool[self.drawn - 1])
    }

    /// Up to `count` ids: fewer when the pool runs out.
    fn draw_many<N: TryInto<usize>>(&mut self, rng: &mut SplitMix64, count: N) -> Vec<i64> {
        let count = count.try_into().unwrap_or(usize::MAX);
        std::iter::from_fn(|| self.draw(rng)).take(count).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_rate_with_a_minimum() {
        assert_eq!(planted_count(0.0, 5000, 5), 5);
        assert_eq!(planted_count(0.1, 5000, 5), 500);
        assert_eq!(planted_count(0.0001, 5000, 5), 5);
        assert_eq!(planted_count(f64::NAN, 5000, 5), 5);
        assert_eq!(planted_count(7.0, 5000, 5), 5000);
    }

    #[test]
    fn the_sampler_draws_each_id_once() {
        let mut rng = SplitMix64::new(3);
        let mut sampler = Sampler::new((1..=10).collect());
        let mut drawn = sampler.draw_many(&mut rng, 20);
        drawn.sort_unstable();
        assert_eq!(drawn, (1..=10).collect::<Vec<_>>());
    }

    #[test]
    fn the_demo_plan_has_every_kind_of_problem_and_decoy() {
        let plan = Plan::new(&ShopSpec::demo());
        assert_eq!(plan.orphan_customer.len(), 3);
        assert_eq!(plan.duplicate_owners.len(), 4);
        assert_eq!(plan.total_delta.len(), 5);
        assert_eq!(plan.stock_delta.len(), 4);
        assert_eq!(plan.bad_payments.len(), 6);
        assert!(plan.total_delta.values().any(|&d| d == 1));
        assert!(
            plan.bad_payments
                .values()
                .any(|b| matches!(b, BadPayment::FailedAndWrongAmount(_)))
        );
        assert_eq!(plan.empty_products.len(), 2);
        assert_eq!(
            plan.empty_products
                .iter()
                .filter(|id| plan.stock_delta.contains_key(id))
                .count(),
            1
        );
        assert!(plan.null_emails.len() >= 2);
        assert!(plan.empty_orders.len() >= 2);
    }
}
