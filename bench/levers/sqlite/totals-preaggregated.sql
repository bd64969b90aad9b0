-- trueup's aggregate-match on SQLite: aggregate the items first, then join.
SELECT parent."id", parent."total_amount", agg."expected"
FROM "orders" AS parent
JOIN (SELECT "order_id" AS "k0", SUM(quantity * unit_price) AS "expected" FROM "order_items" GROUP BY "order_id") AS agg
  ON agg."k0" = parent."id"
WHERE ((parent."total_amount" IS NULL) <> (agg."expected" IS NULL) OR ABS(parent."total_amount" - agg."expected") > 0.005);
