-- The payments rule as shipped: keep bad payment rows (or the missing one), then group; merge join (the rule sets enable_hashjoin = off).
SET enable_hashjoin = off;
SELECT o.id, o.total_amount, COUNT(p.id),
       SUM(CASE WHEN p.status <> 'COMPLETED' THEN 1 ELSE 0 END),
       SUM(CASE WHEN ABS(p.amount - o.total_amount) > 0.005 THEN 1 ELSE 0 END)
FROM orders o LEFT JOIN payments p ON p.order_id = o.id
WHERE o.status = 'COMPLETED'
  AND (p.id IS NULL OR p.status <> 'COMPLETED' OR ABS(p.amount - o.total_amount) > 0.005)
GROUP BY o.id, o.total_amount;
