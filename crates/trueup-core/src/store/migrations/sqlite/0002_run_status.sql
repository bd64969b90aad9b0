-- How a run that did not finish ended: 'interrupted' (stopped by a signal, what finished
-- recorded); NULL otherwise. A run with neither `finished_at` nor a status past its
-- `deadline_at` (Unix milliseconds: its start plus every rule's timeout) was abandoned.
ALTER TABLE runs ADD COLUMN status TEXT;
ALTER TABLE runs ADD COLUMN deadline_at INTEGER;
-- Who to ask about each rule and where its runbook is, for whoever reads the run later.
ALTER TABLE run_rules ADD COLUMN owner TEXT;
ALTER TABLE run_rules ADD COLUMN runbook TEXT;
-- The rule's detector kind: findings of table-level kinds (freshness, row-count) are never
-- accepted into a baseline.
ALTER TABLE run_rules ADD COLUMN kind TEXT;
-- What the run selected (`--rule … --tag … --source …`), NULL for every rule: `diff` tells a
-- rule that was not selected from one that was added or removed.
ALTER TABLE runs ADD COLUMN selection TEXT;
