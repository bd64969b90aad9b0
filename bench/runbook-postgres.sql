-- The runbook's five integrity checks (Data Inconsistency, Diagnosis step 2), as a data team
-- runs them today: psql, one session, one query after another. On PostgreSQL money is exact
-- NUMERIC, so the runbook's `!=` comparisons are right as written and are kept. Changes,
-- each marked `CHANGED` below: every check returns every violating row's key (as trueup
-- does) instead of a count, and the duplicate-email check leaves out customers without an
-- email. Each check is preceded by a `\echo` marker so that bench/postgres.sh can count
-- its rows; the markers change nothing for the server.

\echo '#check orphaned_orders'
-- Check for orphaned orders (orders without customers).
-- CHANGED: `SELECT o.id` instead of `SELECT COUNT(*) as orphaned_orders`. The LEFT JOIN also
-- reports orders with a NULL customer_id; the demo shop has none, so the rows are the same
-- as the rule's.
SELECT o.id
FROM orders o
LEFT JOIN customers c ON o.customer_id = c.id
WHERE c.id IS NULL;

\echo '#check duplicate_emails'
-- Check for duplicate customer emails.
-- CHANGED: `WHERE email IS NOT NULL`. As written, the query also reports the customers
-- without an email as one more "duplicate" (the NULL group); the shop has several, and they
-- are not duplicates of each other.
SELECT email, COUNT(*) as count
FROM customers
WHERE email IS NOT NULL
GROUP BY email
HAVING COUNT(*) > 1;

\echo '#check wrong_totals'
-- Check for orders with invalid totals (verbatim).
SELECT o.id, o.total_amount, SUM(oi.quantity * oi.unit_price) as calculated_total
FROM orders o
JOIN order_items oi ON o.id = oi.order_id
GROUP BY o.id, o.total_amount
HAVING o.total_amount != SUM(oi.quantity * oi.unit_price);

\echo '#check wrong_stock'
-- Check for inventory inconsistencies (verbatim).
SELECT p.id, p.name, p.stock_quantity,
       COALESCE(SUM(i.quantity), 0) as actual_inventory
FROM products p
LEFT JOIN inventory i ON p.id = i.product_id
GROUP BY p.id, p.name, p.stock_quantity
HAVING p.stock_quantity != COALESCE(SUM(i.quantity), 0);

\echo '#check bad_payments'
-- Check for payment-order mismatches (verbatim): one row per bad payment, so an order with
-- two bad payments appears twice; bench/postgres.sh counts distinct order ids.
SELECT o.id as order_id, o.total_amount as order_total,
       p.amount as payment_amount, p.status as payment_status
FROM orders o
LEFT JOIN payments p ON o.id = p.order_id
WHERE o.status = 'COMPLETED'
  AND (p.id IS NULL OR p.status != 'COMPLETED' OR p.amount != o.total_amount);
