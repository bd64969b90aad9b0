//! The rows of the shop's six tables, as plain values any loader can write.

use std::fmt;

use crate::time::Timestamp;

/// An amount of money in whole cents; displays as dollars (`12.34`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cents(pub i64);

impl Cents {
    /// The amount in dollars, as the shop stores it (`cents / 100.0`).
    #[expect(
        clippy::cast_precision_loss,
        reason = "amounts are far below 2^53 cents, where f64 is exact"
    )]
    pub fn dollars(self) -> f64 {
        self.0 as f64 / 100.0
    }
}

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

/// The status of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    Pending,
    Shipped,
    Completed,
    Cancelled,
}

impl OrderStatus {
    /// The stored text: `PENDING`, `SHIPPED`, `COMPLETED` or `CANCELLED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Shipped => "SHIPPED",
            Self::Completed => "COMPLETED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

/// The status of a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    Pending,
    Completed,
    Failed,
}

impl PaymentStatus {
    /// The stored text: `PENDING`, `COMPLETED` or `FAILED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
        }
    }
}

/// A row of `customers`.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub id: i64,
    /// `None` for the few customers without an email (not duplicates of each other); a few
    /// planted ones are malformed.
    pub email: Option<String>,
    /// "First Last"; no two customers' names are near-duplicates except the planted pairs.
    pub name: String,
    pub created_at: Timestamp,
}

/// A row of `products`.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub id: i64,
    pub name: String,
    /// A GTIN-13 (13 digits, the last the GS1 check digit); a few planted ones have a wrong
    /// check digit or a letter.
    pub gtin: String,
    pub price: Cents,
    pub stock_quantity: i64,
    pub created_at: Timestamp,
}

/// A row of `inventory`: the stock of a product in one warehouse.
#[derive(Debug, Clone, PartialEq)]
pub struct Inventory {
    pub id: i64,
    pub product_id: i64,
    /// `WH-1` to `WH-8`.
    pub warehouse: String,
    pub quantity: i64,
}

/// A row of `orders`.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub id: i64,
    pub customer_id: i64,
    pub status: OrderStatus,
    pub total_amount: Cents,
    pub created_at: Timestamp,
}

/// A row of `order_items`.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderItem {
    pub id: i64,
    pub order_id: i64,
    pub product_id: i64,
    pub quantity: i64,
    pub unit_price: Cents,
}

/// A row of `payments`.
#[derive(Debug, Clone, PartialEq)]
pub struct Payment {
    pub id: i64,
    pub order_id: i64,
    pub amount: Cents,
    pub status: PaymentStatus,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_display_as_dollars() {
        assert_eq!(Cents(1234).to_string(), "12.34");
        assert_eq!(Cents(5).to_string(), "0.05");
        assert_eq!(Cents(-105).to_string(), "-1.05");
        assert_eq!(Cents(0).to_string(), "0.00");
        assert!((Cents(1234).dollars() - 12.34).abs() < 1e-12);
    }
}
