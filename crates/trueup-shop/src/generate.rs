//! The rows of a shop, table by table, as iterators any loader can consume.
//!
//! Each customer, product and order is rebuilt from its own random stream whenever it is
//! needed (an order's items and payments are derived again for their tables), so the rows
//! come table after table, as bulk loaders such as PostgreSQL's `COPY` want them, without
//! holding the shop in memory. Ids start at 1 and are dense.

use crate::names::customer_name;
use crate::plan::{
    BadPayment, Plan, customer_email, draw_order_status, draw_product_price, product_gtin,
    product_price,
};
use crate::planted::Planted;
use crate::rng::{SplitMix64, Stream};
use crate::rows::{
    Cents, Customer, Inventory, Order, OrderItem, OrderStatus, Payment, PaymentStatus, Product,
};
use crate::spec::ShopSpec;
use crate::time::Timestamp;

/// Number of warehouses, `WH-1` to `WH-8`.
const WAREHOUSES: usize = 8;

/// A demo shop: its plan of problems and the rows that carry them.
#[derive(Debug, Clone)]
pub struct Shop {
    spec: ShopSpec,
    plan: Plan,
}

/// What a product's stream decides.
struct ProductDraft {
    price: Cents,
    created_at: Timestamp,
    stock_quantity: i64,
    /// Warehouse number and quantity, by warehouse.
    inventory: Vec<(usize, i64)>,
}

/// What an order's stream decides, with the plan's overrides applied.
struct OrderDraft {
    order: Order,
    /// Product, quantity and unit price.
    items: Vec<(i64, i64, Cents)>,
    /// Amount and status; created one minute apart from `paid_at`.
    payments: Vec<(Cents, PaymentStatus)>,
    paid_at: Timestamp,
}

impl Shop {
    /// Plans the problems of the shop `spec` describes; rows are made when iterated.
    pub fn new(spec: &ShopSpec) -> Self {
        Self {
            spec: *spec,
            plan: Plan::new(spec),
        }
    }

    pub fn spec(&self) -> &ShopSpec {
        &self.spec
    }

    /// The problems planted in this shop's rows.
    pub fn planted(&self) -> Planted {
        Planted::from_plan(&self.plan)
    }

    /// The rows of `customers`, by id.
    pub fn customers(&self) -> impl Iterator<Item = Customer> + '_ {
        (1..=self.plan.customers).map(|id| self.customer(id))
    }

    /// The rows of `products`, by id.
    pub fn products(&self) -> impl Iterator<Item = Product> + '_ {
        (1..=self.plan.products).map(|id| {
            let draft = self.product_draft(id);
            Product {
                id,
                name: format!("Product {id}"),
                gtin: self
                    .plan
                    .bad_gtins
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| product_gtin(id)),
                // An outlier's order items keep the normal price: it was mistyped later.
                price: self
                    .plan
                    .price_outliers
                    .get(&id)
                    .copied()
                    .unwrap_or(draft.price),
                stock_quantity: draft.stock_quantity,
                created_at: draft.created_at,
            }
        })
    }

    /// The rows of `inventory`, by product then warehouse.
    pub fn inventory(&self) -> impl Iterator<Item = Inventory> + '_ {
        (1..=self.plan.products)
            .flat_map(|product_id| {
                let rows = self.product_draft(product_id).inventory;
                rows.into_iter()
                    .map(move |(warehouse, quantity)| (product_id, warehouse, quantity))
            })
            .zip(1..)
            .map(|((product_id, warehouse, quantity), id)| Inventory {
                id,
                product_id,
                warehouse: format!("WH-{warehouse}"),
                quantity,
            })
    }

    /// The rows of `orders`, by id.
    pub fn orders(&self) -> impl Iterator<Item = Order> + '_ {
        (1..=self.plan.orders).map(|id| self.order_draft(id).order)
    }

    /// The rows of `order_items`, by order.
    pub fn order_items(&self) -> impl Iterator<Item = OrderItem> + '_ {
        (1..=self.plan.orders)
            .flat_map(|order_id| {
                let items = self.order_draft(order_id).items;
                items.into_iter().map(move |item| (order_id, item))
            })
            .zip(1..)
            .map(
                |((order_id, (product_id, quantity, unit_price)), id)| OrderItem {
                    id,
                    order_id,
                    product_id,
                    quantity,
                    unit_price,
                },
            )
    }

    /// The rows of `payments`, by order.
    pub fn payments(&self) -> impl Iterator<Item = Payment> + '_ {
        (1..=self.plan.orders)
            .flat_map(|order_id| {
                let draft = self.order_draft(order_id);
                let paid_at = draft.paid_at;
                draft
                    .payments
                    .into_iter()
                    .zip(0..)
                    .map(move |((amount, status), n)| Payment {
                        id: 0,
                        order_id,
                        amount,
                        status,
                        created_at: paid_at.plus(60 * n),
                    })
            })
            .zip(1..)
            .map(|(payment, id)| Payment { id, ..payment })
    }

    fn customer(&self, id: i64) -> Customer {
        let mut rng = SplitMix64::entity(self.plan.seed, Stream::Customer, id);
        let created_at = Timestamp::random(&mut rng);
        let email = if self.plan.null_emails.contains(&id) {
            None
        } else if let Some(malformed) = self.plan.malformed_emails.get(&id) {
            Some(malformed.clone())
        } else {
            Some(customer_email(
                self.plan.email_owner.get(&id).copied().unwrap_or(id),
            ))
        };
        let name = match self.plan.copy_names.get(&id) {
            Some(name) => name.clone(),
            None => customer_name(id),
        };
        Customer {
            id,
            email,
            name,
            created_at,
        }
    }

    fn product_draft(&self, id: i64) -> ProductDraft {
        let mut rng = SplitMix64::entity(self.plan.seed, Stream::Product, id);
        let price = draw_product_price(&mut rng);
        let created_at = Timestamp::random(&mut rng);
        let rows = if rng.one_in(8) { 0 } else { rng.index(7) + 1 };
        let mut warehouses: [usize; WAREHOUSES] = std::array::from_fn(|i| i + 1);
        for i in 0..rows {
            let pick = i + rng.index(WAREHOUSES - i);
            warehouses.swap(i, pick);
        }
        let mut chosen = warehouses[..rows].to_vec();
        chosen.sort_unstable();
        let mut inventory: Vec<(usize, i64)> = chosen
            .into_iter()
            .map(|wh| (wh, rng.range(0, 100)))
            .collect();
        if self.plan.empty_products.contains(&id) {
            inventory.clear();
        }
        let counted: i64 = inventory.iter().map(|&(_, quantity)| quantity).sum();
        let stock_quantity = match self.plan.stock_delta.get(&id) {
            Some(&delta) => shifted(counted, delta),
            None => counted,
        };
        ProductDraft {
            price,
            created_at,
            stock_quantity,
            inventory,
        }
    }

    fn order_draft(&self, id: i64) -> OrderDraft {
        let plan = &self.plan;
        let mut rng = SplitMix64::entity(plan.seed, Stream::Order, id);
        let status = draw_order_status(&mut rng);
        let customer_id = rng.range(1, plan.customers);
        let created_at = Timestamp::random(&mut rng);
        let item_count = rng.range(1, 7);
        let mut items: Vec<(i64, i64, Cents)> = (0..item_count)
            .map(|_| {
                let product_id = rng.range(1, plan.products);
                let quantity = rng.range(1, 5);
                (product_id, quantity, product_price(plan.seed, product_id))
            })
            .collect();
        let pending_payment = rng.one_in(3);
        let pending_delta = if rng.one_in(5) {
            rng.sign() * rng.range(100, 5000)
        } else {
            0
        };
        let paid_at = created_at.plus(rng.range(60, 86_400));

        if plan.empty_orders.contains(&id) {
            items.clear();
        }
        let customer_id = plan
            .orphan_customer
            .get(&id)
            .copied()
            .unwrap_or(customer_id);
        let counted: i64 = items
            .iter()
            .map(|&(_, quantity, price)| quantity * price.0)
            .sum();
        let total = match plan.total_delta.get(&id) {
            Some(&delta) => shifted(counted, delta),
            None => counted,
        };

        // A wrong total is paid as stored, so that it is not a payment finding as well.
        let paid = Cents(total);
        let payments = match (status, plan.bad_payments.get(&id)) {
            (OrderStatus::Completed, None) => vec![(paid, PaymentStatus::Completed)],
            (OrderStatus::Completed, Some(BadPayment::Missing)) => Vec::new(),
            (OrderStatus::Completed, Some(&BadPayment::Unfinished(status))) => vec![(paid, status)],
            (OrderStatus::Completed, Some(&BadPayment::WrongAmount(delta))) => {
                vec![(Cents(shifted(total, delta)), PaymentStatus::Completed)]
            }
            (OrderStatus::Completed, Some(&BadPayment::FailedAndWrongAmount(delta))) => vec![
                (paid, PaymentStatus::Failed),
                (Cents(shifted(total, delta)), PaymentStatus::Completed),
            ],
            // Decoy: a pending payment of another amount is not a finding.
            (OrderStatus::Pending, _) if pending_payment => {
                vec![(Cents(shifted(total, pending_delta)), PaymentStatus::Pending)]
            }
            _ => Vec::new(),
        };

        let order = Order {
            id,
            customer_id,
            status,
            total_amount: Cents(total),
            created_at,
        };
        OrderDraft {
            order,
            items,
            payments,
            paid_at,
        }
    }
}

/// `value + delta`, or `value - delta` where that would go negative: never negative, and
/// different from `value` whenever `delta` is not 0.
fn shifted(value: i64, delta: i64) -> i64 {
    if value + delta < 0 {
        value - delta
    } else {
        value + delta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Shop {
        Shop::new(&ShopSpec {
            orders: 600,
            problem_rate: 0.02,
            seed: 5,
        })
    }

    #[test]
    fn ids_are_dense_from_one() {
        let shop = small();
        let dense = |ids: Vec<i64>| {
            ids.iter()
                .copied()
                .eq(1..=i64::try_from(ids.len()).unwrap())
        };
        assert!(dense(shop.customers().map(|r| r.id).collect()));
        assert!(dense(shop.products().map(|r| r.id).collect()));
        assert!(dense(shop.inventory().map(|r| r.id).collect()));
        assert!(dense(shop.orders().map(|r| r.id).collect()));
        assert!(dense(shop.order_items().map(|r| r.id).collect()));
        assert!(dense(shop.payments().map(|r| r.id).collect()));
    }

    #[test]
    fn the_same_spec_gives_the_same_rows() {
        let (a, b) = (small(), small());
        assert!(a.customers().eq(b.customers()));
        assert!(a.products().eq(b.products()));
        assert!(a.inventory().eq(b.inventory()));
        assert!(a.orders().eq(b.orders()));
        assert!(a.order_items().eq(b.order_items()));
        assert!(a.payments().eq(b.payments()));
        let c = Shop::new(&ShopSpec {
            seed: 6,
            ..*a.spec()
        });
        assert!(!a.orders().eq(c.orders()));
    }

    #[test]
    fn rows_stay_in_their_ranges() {
        let shop = small();
        let outliers = &shop.plan.price_outliers;
        assert!(shop.products().all(|p| p.stock_quantity >= 0));
        assert!(
            shop.products()
                .filter(|p| !outliers.contains_key(&p.id))
                .all(|p| (100..=50_000).contains(&p.price.0))
        );
        assert!(
            shop.products()
                .filter(|p| outliers.contains_key(&p.id))
                .all(|p| (500_000..=50_000_000).contains(&p.price.0))
        );
        assert!(shop.inventory().all(|i| (0..=100).contains(&i.quantity)));
        assert!(shop.order_items().all(|i| (1..=5).contains(&i.quantity)));
        assert!(shop.orders().all(|o| o.total_amount.0 >= 0));
        assert!(shop.payments().all(|p| p.amount.0 >= 0));
    }

    #[test]
    fn statuses_and_items_have_the_documented_mix() {
        let shop = Shop::new(&ShopSpec {
            orders: 20_000,
            problem_rate: 0.0,
            seed: 1,
        });
        let orders: Vec<Order> = shop.orders().collect();
        let share =
            |status| orders.iter().filter(|o| o.status == status).count() * 100 / orders.len();
        assert!((45..=49).contains(&share(OrderStatus::Completed)));
        assert!((18..=22).contains(&share(OrderStatus::Shipped)));
        assert!((18..=22).contains(&share(OrderStatus::Pending)));
        assert!((11..=15).contains(&share(OrderStatus::Cancelled)));
        let items = shop.order_items().count();
        assert!(
            (3 * orders.len()..5 * orders.len()).contains(&items),
            "{items} items"
        );
    }
}
