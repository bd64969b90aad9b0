-- The PostgreSQL form of migrations/sqlite/0001_runs.sql: the same tables and view, for a
-- state store shared by runners on several machines. See that file for what each holds.
CREATE TABLE runs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    tool_version TEXT NOT NULL,
    rules_hash TEXT NOT NULL,
    rules BIGINT NOT NULL DEFAULT 0,
    findings BIGINT NOT NULL DEFAULT 0,
    errors BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE run_rules (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    rule_id TEXT NOT NULL,
    rule_hash TEXT NOT NULL,
    severity TEXT NOT NULL,
    findings BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    error TEXT,
    PRIMARY KEY (run_id, rule_id)
);

CREATE TABLE finding_batches (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    first_seq BIGINT NOT NULL,
    rows TEXT NOT NULL,
    PRIMARY KEY (run_id, first_seq)
);

CREATE TABLE run_fingerprints (
    run_id BIGINT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    prints BYTEA NOT NULL
);

CREATE VIEW findings AS
SELECT b.run_id,
       (j.value ->> 0)::BIGINT AS seq,
       j.value ->> 1 AS rule_id,
       (j.value ->> 2)::BIGINT AS fingerprint,
       (j.value -> 3)::TEXT AS key,
       (j.value -> 4)::TEXT AS detail,
       j.value ->> 5 AS message
FROM finding_batches AS b, jsonb_array_elements(b.rows::JSONB) AS j (value);
