//! How big a demo shop is, how many problems it has, and the seed everything derives from.

/// The size, problem rate and seed of a demo shop.
///
/// Customers and products scale with the orders: scale factor 1 (1.5M orders) has 150k
/// customers and 200k products.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShopSpec {
    /// Number of orders; about four items each.
    pub orders: u64,
    /// Fraction of the rows of each kind that carry a planted problem (0.0 plants only the
    /// minimum of each kind, 0.01 plants one problem per hundred rows).
    pub problem_rate: f64,
    /// The seed every row and every planted problem derives from.
    pub seed: u64,
}

impl ShopSpec {
    /// The shop of the demo: 2000 orders, the minimum of each problem, seed 42.
    pub fn demo() -> Self {
        Self {
            orders: 2000,
            problem_rate: 0.0,
            seed: 42,
        }
    }

    /// Number of customers: a tenth of the orders, at least 50.
    pub fn customers(&self) -> u64 {
        (self.orders / 10).max(50)
    }

    /// Number of products: two fifteenths of the orders, at least 40.
    pub fn products(&self) -> u64 {
        (self.orders.saturating_mul(2) / 15).max(40)
    }
}

impl Default for ShopSpec {
    fn default() -> Self {
        Self::demo()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_factor_one_has_the_documented_sizes() {
        let spec = ShopSpec {
            orders: 1_500_000,
            ..ShopSpec::demo()
        };
        assert_eq!(spec.customers(), 150_000);
        assert_eq!(spec.products(), 200_000);
    }

    #[test]
    fn small_shops_keep_a_minimum_of_customers_and_products() {
        let spec = ShopSpec {
            orders: 10,
            ..ShopSpec::demo()
        };
        assert_eq!(spec.customers(), 50);
        assert_eq!(spec.products(), 40);
    }
}
