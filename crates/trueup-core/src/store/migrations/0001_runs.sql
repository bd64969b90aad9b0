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

CREATE TABLE findings (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    rule_id TEXT NOT NULL,
    -- FNV-1a 64 of the rule id and the key values: the same in every run and on every machine.
    fingerprint INTEGER NOT NULL,
    -- JSON objects.
    key TEXT NOT NULL,
    detail TEXT NOT NULL,
    message TEXT NOT NULL
);

CREATE INDEX findings_by_run ON findings (run_id, rule_id, fingerprint);
