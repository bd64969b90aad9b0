-- The runbook's order-total check: join every item to its order, then group.
SELECT o.id, o.total_amount, SUM(oi.quantity * oi.unit_price)
FROM orders o JOIN order_items oi ON o.id = oi.order_id
GROUP BY o.id, o.total_amount
HAVING ABS(o.total_amount - SUM(oi.quantity * oi.unit_price)) > 0.005;
