-- Recurring (cron) jobs, fired once per schedule across the cluster (src/jobs/schedule.rs).
--
-- One row per registered schedule. A node's scheduler claims a due schedule
-- by moving next_run_at forward with a compare-and-set
-- (UPDATE ... WHERE name = $1 AND next_run_at = $old) and enqueues the job in
-- the same transaction; the node that loses the race updates nothing.
-- Times are unix epoch milliseconds, like jobs.run_at.
CREATE TABLE job_schedules (
    name        TEXT PRIMARY KEY NOT NULL,
    expression  TEXT NOT NULL,
    next_run_at INTEGER NOT NULL,
    last_run_at INTEGER,
    updated_at  TEXT NOT NULL
);

-- The job a schedule enqueued carries a key made of the schedule's name and
-- the scheduled time; the unique index makes a second job for the same run
-- impossible, whatever races the scheduler loses. Ordinary jobs have no key
-- (NULL) and are not in the index. Expand-only: older builds never set it.
ALTER TABLE jobs ADD COLUMN dedup_key TEXT;
CREATE UNIQUE INDEX jobs_dedup_key_idx ON jobs (dedup_key) WHERE dedup_key IS NOT NULL;
