-- The runbook's five integrity checks (Diagnosis, step 2), as a data team runs them today
-- with the sqlite3 CLI, one after another. Two changes, both needed for correct answers on
-- SQLite, where money is binary floating point: amounts are compared within half a cent
-- instead of with `!=`, and each check returns every violating row's key (as trueup does)
-- rather than a count.

-- Orphaned orders (orders without customers). The runbook's LEFT JOIN also reports orders
-- with a NULL customer_id; the demo shop has none, so the rows are the same.
SELECT o.id
FROM orders o
LEFT JOIN customers c ON o.customer_id = c.id
WHERE c.id IS NULL;

-- Duplicate customer emails.
SELECT email, COUNT(*) AS count
FROM customers
GROUP BY email
HAVING COUNT(*) > 1;

-- Orders with invalid totals.
SELECT o.id, o.total_amount, SUM(oi.quantity * oi.unit_price) AS calculated_total
FROM orders o
JOIN order_items oi ON o.id = oi.order_id
GROUP BY o.id, o.total_amount
HAVING ABS(o.total_amount - SUM(oi.quantity * oi.unit_price)) > 0.005;

-- Inventory inconsistencies.
SELECT p.id, p.name, p.stock_quantity,
       COALESCE(SUM(i.quantity), 0) AS actual_inventory
FROM products p
LEFT JOIN inventory i ON p.id = i.product_id
GROUP BY p.id, p.name, p.stock_quantity
HAVING p.stock_quantity != COALESCE(SUM(i.quantity), 0);

-- Payment-order mismatches (one row per bad payment, as in the runbook).
SELECT o.id AS order_id, o.total_amount AS order_total,
       p.amount AS payment_amount, p.status AS payment_status
FROM orders o
LEFT JOIN payments p ON o.id = p.order_id
WHERE o.status = 'COMPLETED'
  AND (p.id IS NULL OR p.status != 'COMPLETED' OR ABS(p.amount - o.total_amount) > 0.005);
