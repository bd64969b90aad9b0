-- A correlated subquery per order, the shape trueup does not use.
SELECT * FROM (
  SELECT p.id, p.total_amount,
         (SELECT SUM(quantity * unit_price) FROM order_items oi WHERE oi.order_id = p.id) AS expected
  FROM orders p)
WHERE expected IS NOT NULL AND ABS(total_amount - expected) > 0.005;
