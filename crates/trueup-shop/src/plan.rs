//! Which rows carry a planted problem or a decoy, chosen from the seed before any row exists.
//!
//! The plan only needs each order's status and each product's price, which are the first
//! draws of their own streams ([`draw_order_status`], [`draw_product_price`]), and customer
//! names, which are a function of the id ([`customer_name`]); the generator makes the same
//! draws, so the plan and the rows agree by construction. Everything else the plan decides is
//! an override the generator applies to the row it would otherwise produce.
//!
//! The problems for the e-commerce rule pack are drawn from the plan's stream 0; those for
//! the check plugins (near-duplicate names, malformed emails, bad GTINs, price outliers)
//! from stream 1, so adding them left the pack's planted rows as they were.

use std::collections::{HashMap, HashSet};

use crate::names::{
    NEAR, Variation, customer_name, near_a_customer_name, normalized, variations, within,
};
use crate::rng::{SplitMix64, Stream};
use crate::rows::{Cents, OrderStatus, PaymentStatus};
use crate::spec::ShopSpec;

/// Minimum number of problems of each kind, whatever the rate.
const MIN_ORPHANED_ORDERS: u64 = 3;
const MIN_DUPLICATE_EMAILS: u64 = 4;
const MIN_WRONG_TOTALS: u64 = 5;
const MIN_WRONG_STOCK: u64 = 4;
const MIN_BAD_PAYMENTS: u64 = 6;
const MIN_NEAR_DUPLICATE_NAMES: u64 = 5;
const MIN_MALFORMED_EMAILS: u64 = 5;
const MIN_BAD_GTINS: u64 = 4;
const MIN_PRICE_OUTLIERS: u64 = 3;

/// Price outliers are at most one product in this many (or the minimum), so that the median
/// and the median absolute deviation stay those of the normal prices.
const MAX_OUTLIER_SHARE: i64 = 50;

/// Price outliers are products of at least this price (50.00) times 100 or 1000: 5000.00 or
/// more, far above the normal 1.00 to 500.00.
const MIN_OUTLIER_BASE: Cents = Cents(5000);

/// Draws before giving up on an original long enough for a variation that changes letters.
const LONG_NAME_TRIES: usize = 16;

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
    /// Planted near-duplicate names: (original, copy), the copy named after the original.
    pub(crate) near_duplicate_names: Vec<(i64, i64)>,
    /// Copy → its name, a variation of its original's.
    pub(crate) copy_names: HashMap<i64, String>,
    /// Customer → its malformed email.
    pub(crate) malformed_emails: HashMap<i64, String>,
    /// Product → its GTIN with a wrong check digit or a letter.
    pub(crate) bad_gtins: HashMap<i64, String>,
    /// Product → its absurd price.
    pub(crate) price_outliers: HashMap<i64, Cents>,
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

/// The price of a product: the first draw of its stream, so the plan and orders can read it
/// cheaply. 1.00 to 500.00, uniformly.
pub(crate) fn draw_product_price(rng: &mut SplitMix64) -> Cents {
    Cents(rng.range(100, 50_000))
}

/// The price of product `id` in the shop seeded with `seed` (before outliers are planted).
pub(crate) fn product_price(seed: u64, id: i64) -> Cents {
    draw_product_price(&mut SplitMix64::entity(seed, Stream::Product, id))
}

/// The email of customer `id` (before duplicates and malformed emails are planted).
pub(crate) fn customer_email(id: i64) -> String {
    format!("customer{id}@example.com")
}

/// A malformed email for customer `id`, of variety `kind` (mod 10): the first five are the
/// demo's. Each is unique (it holds the id) and unlike any well-formed email of the shop.
pub(crate) fn malformed_email(id: i64, kind: usize) -> String {
    match kind % 10 {
        0 => format!("customer{id}.example.com"),      // no @
        1 => format!("customer{id}@mail@example.com"), // two @
        2 => format!("customer {id}@example.com"),     // a space
        3 => format!("customer{id}@examplecom"),       // a domain without a dot
        4 => format!("customer{id}@example.com."),     // the domain ends with a dot
        5 => format!("customer..{id}@example.com"),    // two dots in a row
        6 => format!(".customer{id}@example.com"),     // the local part starts with a dot
        7 => format!("customer{id}@example_shop.com"), // `_` in the domain
        8 => format!("customer{id}@-example.com"),     // the domain starts with a hyphen
        // A local part of more than 64 characters.
        _ => format!(
            "customer{id}.newsletter.subscriptions.and.order.notifications.for.the.shop@example.com"
        ),
    }
}

/// The GTIN-13 of product `id`: GS1 prefix `40`, a 10-digit item reference (`id × 1234567891
/// mod 10¹⁰`: distinct for distinct ids) and the check digit.
pub(crate) fn product_gtin(id: i64) -> String {
    let item = i128::from(id).rem_euclid(10_000_000_000) * 1_234_567_891 % 10_000_000_000;
    let digits = format!("40{item:010}");
    let check = gtin_check_digit(&digits);
    format!("{digits}{check}")
}

/// The GS1 check digit of 12 digits: weights 1, 3, 1, 3, … from the left.
pub(crate) fn gtin_check_digit(digits: &str) -> u32 {
    let sum: u32 = digits
        .chars()
        .filter_map(|c| c.to_digit(10))
        .zip([1, 3].into_iter().cycle())
        .map(|(d, w)| d * w)
        .sum();
    (10 - sum % 10) % 10
}

/// The GTIN of product `id` made invalid, of variety `kind`: a wrong check digit (`delta` in
/// 1..=9 added to it), or for every fourth one from the third, a letter in place of a digit.
fn bad_gtin(id: i64, kind: usize, delta: u32) -> String {
    let gtin = product_gtin(id);
    if kind % 4 == 2 {
        // An O for a 0, or an I, S or B for the digit it looks like, at the 7th digit.
        let (head, tail) = gtin.split_at(6);
        let letter = match tail.as_bytes()[0] {
            b'1' | b'7' => 'I',
            b'5' => 'S',
            b'8' | b'3' => 'B',
            _ => 'O',
        };
        return format!("{head}{letter}{}", &tail[1..]);
    }
    let (digits, check) = gtin.split_at(12);
    let check = check.parse::<u32>().unwrap_or(0);
    format!("{digits}{}", (check + delta) % 10)
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
            near_duplicate_names: Vec::new(),
            copy_names: HashMap::new(),
            malformed_emails: HashMap::new(),
            bad_gtins: HashMap::new(),
            price_outliers: HashMap::new(),
        };
        plan.plan_customers(&mut rng, spec.problem_rate);
        plan.plan_products(&mut rng, spec.problem_rate);
        plan.plan_orders(&mut rng, spec.problem_rate);
        let mut rng = SplitMix64::entity(spec.seed, Stream::Plan, 1);
        plan.plan_names_and_emails(&mut rng, spec.problem_rate);
        plan.plan_gtins_and_prices(&mut rng, spec.problem_rate);
        plan
    }

    /// Near-duplicate names and malformed emails, on customers without a planted email
    /// problem or decoy: the copies keep their own well-formed, unique email.
    fn plan_names_and_emails(&mut self, rng: &mut SplitMix64, rate: f64) {
        let candidates = (1..=self.customers)
            .filter(|id| {
                !self.null_emails.contains(id)
                    && !self.email_owner.contains_key(id)
                    && !self.duplicate_owners.contains(id)
            })
            .collect();
        let mut pool = Sampler::new(candidates);
        // Normalized names of the copies that change letters, for the copies to come.
        let mut changed: Vec<String> = Vec::new();
        let pairs = planted_count(rate, self.customers, MIN_NEAR_DUPLICATE_NAMES);
        for k in 0..to_usize(pairs) {
            let variation = Variation::CYCLE[k % Variation::CYCLE.len()];
            let Some(mut original) = pool.draw(rng) else {
                break;
            };
            for _ in 0..LONG_NAME_TRIES {
                if normalized(&customer_name(original)).len() >= variation.min_len() {
                    break;
                }
                match pool.draw(rng) {
                    Some(id) => original = id,
                    None => break,
                }
            }
            let Some(copy) = pool.draw(rng) else {
                break;
            };
            let start = rng.index(64);
            let name = self.copy_name(original, variation, start, &mut changed);
            self.near_duplicate_names.push((original, copy));
            self.copy_names.insert(copy, name);
        }

        let count = planted_count(rate, self.customers, MIN_MALFORMED_EMAILS);
        for (k, id) in pool.draw_many(rng, count).into_iter().enumerate() {
            self.malformed_emails.insert(id, malformed_email(id, k));
        }
    }

    /// The name of the copy of `original`: a `variation` of it if one changing letters is
    /// at distance more than [`NEAR`] of every other name (normal names and the copies in
    /// `changed`), else the same name in capitals.
    fn copy_name(
        &self,
        original: i64,
        variation: Variation,
        start: usize,
        changed: &mut Vec<String>,
    ) -> String {
        let name = customer_name(original);
        for candidate in variations(&name, variation, start) {
            let norm = normalized(&candidate);
            if norm == normalized(&name) {
                return candidate;
            }
            let alone = !near_a_customer_name(&norm, self.customers, original)
                && !changed.iter().any(|other| within(other, &norm, NEAR));
            if alone {
                changed.push(norm);
                return candidate;
            }
        }
        name.to_ascii_uppercase()
    }

    /// Price outliers among products of at least [`MIN_OUTLIER_BASE`], then bad GTINs among
    /// the other products.
    fn plan_gtins_and_prices(&mut self, rng: &mut SplitMix64, rate: f64) {
        let most = (self.products / MAX_OUTLIER_SHARE).max(to_i64(MIN_PRICE_OUTLIERS));
        let count = planted_count(rate, self.products, MIN_PRICE_OUTLIERS)
            .min(u64::try_from(most).unwrap_or(0));
        let candidates = (1..=self.products)
            .filter(|&id| product_price(self.seed, id) >= MIN_OUTLIER_BASE)
            .collect();
        for (k, id) in Sampler::new(candidates)
            .draw_many(rng, count)
            .into_iter()
            .enumerate()
        {
            // Cents typed as dollars (×100), or worse (×1000).
            let factor = if k % 2 == 0 { 100 } else { 1000 };
            let price = Cents(product_price(self.seed, id).0 * factor);
            self.price_outliers.insert(id, price);
        }

        let candidates = (1..=self.products)
            .filter(|id| !self.price_outliers.contains_key(id))
            .collect();
        let count = planted_count(rate, self.products, MIN_BAD_GTINS);
        for (k, id) in Sampler::new(candidates)
            .draw_many(rng, count)
            .into_iter()
            .enumerate()
        {
            let delta = u32::try_from(rng.range(1, 9)).unwrap_or(1);
            self.bad_gtins.insert(id, bad_gtin(id, k, delta));
        }
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

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
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
