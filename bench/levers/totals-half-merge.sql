-- One of two key ranges of trueup's split aggregate-match, merge join.
SET enable_hashjoin = off;
SELECT parent."id", parent."total_amount", agg."expected"
FROM "orders" AS parent
JOIN (SELECT "order_id" AS "k0", SUM(quantity * unit_price) AS "expected" FROM "order_items"
      WHERE "order_id" >= 1 AND "order_id" <= 750000 GROUP BY "order_id") AS agg
  ON agg."k0" = parent."id"
WHERE parent."id" >= 1 AND parent."id" <= 750000
  AND ((parent."total_amount" IS NULL) <> (agg."expected" IS NULL) OR ABS(parent."total_amount" - agg."expected") > 0.005::float8);
