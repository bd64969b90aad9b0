-- Each `apply` and `undo`, beside the detection runs: the repaired database's own journal
-- holds the rows; this says when, what and how it ended, for history and reports.
CREATE TABLE repairs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The source repaired, and the repair's id in that source's journal.
    source TEXT NOT NULL,
    journal_id INTEGER NOT NULL,
    -- 'apply' or 'undo'.
    kind TEXT NOT NULL,
    -- The journal id of the repair an undo restored.
    undoes INTEGER,
    plan_hash TEXT NOT NULL,
    -- The detection run the plan was made from (`plan --from-run`), if it was.
    run_id INTEGER,
    -- JSON array of rule ids.
    rules TEXT NOT NULL,
    -- Unix milliseconds.
    started_at INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    -- 'complete', 'stopped', 'failed' or 'refused'.
    status TEXT NOT NULL,
    rows_changed INTEGER NOT NULL
);
