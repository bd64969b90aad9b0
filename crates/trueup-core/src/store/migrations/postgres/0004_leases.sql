-- Scheduled audits (`trueup serve`). `leases`: one row per schedule, the occurrence (its
-- due time) a replica has claimed and until when; replicas sharing the store run each
-- occurrence once and never two of one schedule at a time (docs/design/serve.md).
CREATE TABLE leases (
    schedule TEXT PRIMARY KEY,
    -- The occurrence claimed: its due time, Unix milliseconds.
    due_at BIGINT NOT NULL,
    -- The replica holding it (host, process id and a start stamp).
    holder TEXT NOT NULL,
    -- Unix milliseconds; renewed while the run goes. Past it, another replica may take over.
    expires_at BIGINT NOT NULL,
    -- 1 once the occurrence's run ended (complete, failed or interrupted and handed back).
    done BIGINT NOT NULL DEFAULT 0
);
-- Every scheduled run a replica started, for `/runs` and for whoever asks which replica
-- ran what.
CREATE TABLE schedule_runs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schedule TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    replica TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    -- The detection run it recorded, once it has one.
    run_id BIGINT,
    -- 'running', 'complete', 'interrupted', 'failed', or 'abandoned' (its replica died and
    -- another one took the occurrence over).
    status TEXT NOT NULL,
    findings BIGINT,
    errors BIGINT,
    -- Why a failed run failed.
    error TEXT
);
CREATE INDEX schedule_runs_schedule ON schedule_runs (schedule, due_at);
