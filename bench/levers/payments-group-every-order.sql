-- A first version of the payments rule: group every completed order, then keep the bad ones.
SET enable_hashjoin = on;
SELECT o.id, o.total_amount, COUNT(p.id),
       SUM(CASE WHEN p.status <> 'COMPLETED' THEN 1 ELSE 0 END),
       SUM(CASE WHEN ABS(p.amount - o.total_amount) > 0.005 THEN 1 ELSE 0 END)
FROM orders o LEFT JOIN payments p ON p.order_id = o.id
WHERE o.status = 'COMPLETED'
GROUP BY o.id, o.total_amount
HAVING COUNT(p.id) = 0
    OR SUM(CASE WHEN p.status <> 'COMPLETED' THEN 1 ELSE 0 END) > 0
    OR SUM(CASE WHEN ABS(p.amount - o.total_amount) > 0.005 THEN 1 ELSE 0 END) > 0;
