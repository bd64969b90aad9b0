-- Each `apply` and `undo`, beside the detection runs: the repaired database's own journal
-- holds the rows; this says when, what and how it ended, for history and reports.
CREATE TABLE repairs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The source repaired, and the repair's id in that source's journal.
    source TEXT NOT NULL,
    journal_id BIGINT NOT NULL,
    -- 'apply' or 'undo'.
    kind TEXT NOT NULL,
    -- The journal id of the repair an undo restored.
    undoes BIGINT,
    plan_hash TEXT NOT NULL,
    -- The detection run the plan was made from (`plan --from-run`), if it was.
    run_id BIGINT,
    -- JSON array of rule ids.
    rules TEXT NOT NULL,
    -- Unix milliseconds.
    started_at BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    -- 'complete', 'stopped', 'failed' or 'refused'.
    status TEXT NOT NULL,
    rows_changed BIGINT NOT NULL
);
