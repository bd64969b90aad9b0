-- Runs, the rules they ran, and every finding, keyed by a stable fingerprint.
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Unix milliseconds.
    started_at INTEGER NOT NULL,
    -- NULL while the run goes on, and for ever if it was killed: such a run is incomplete.
    finished_at INTEGER,
    tool_version TEXT NOT NULL,
    -- Hash of every rule's id and definition: equal hashes, same rule set.
    rules_hash TEXT NOT NULL,
    rules INTEGER NOT NULL DEFAULT 0,
    findings INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE run_rules (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    rule_id TEXT NOT NULL,
    -- Hash of the rule's definition (detector, source, settings), to tell a changed rule.
    rule_hash TEXT NOT NULL,
    severity TEXT NOT NULL,
    findings INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    error TEXT,
    PRIMARY KEY (run_id, rule_id)
);

-- A run's findings in batches of consecutive findings, each a JSON array of
-- [seq, rule_id, fingerprint, key, detail, message]: one row per batch keeps recording
-- fast (see docs/design/state-store.md). The `findings` view unpacks them for SQL.
CREATE TABLE finding_batches (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    first_seq INTEGER NOT NULL,
    rows TEXT NOT NULL,
    PRIMARY KEY (run_id, first_seq)
);

-- Each complete run's (fingerprint, seq) pairs, sorted, as 16-byte little-endian records:
-- diffs merge two of them in memory. The fingerprint (FNV-1a 64 of the rule id and the key
-- values) is the same in every run and on every machine.
CREATE TABLE run_fingerprints (
    run_id INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    prints BLOB NOT NULL
);

CREATE VIEW findings AS
SELECT b.run_id,
       j.value ->> 0 AS seq,
       j.value ->> 1 AS rule_id,
       j.value ->> 2 AS fingerprint,
       j.value -> 3 AS key,
       j.value -> 4 AS detail,
       j.value ->> 5 AS message
FROM finding_batches AS b, json_each(b.rows) AS j;
