-- The job ledger: one row per job, one per recorded batch (so a redelivered result is counted
-- once), one per failed item with its reason.
CREATE TABLE imagegen_jobs (
    job_id        text PRIMARY KEY,
    source        text        NOT NULL CHECK (source IN ('csv', 'db')),
    status        text        NOT NULL,
    attempt       integer     NOT NULL DEFAULT 1,
    request       jsonb       NOT NULL,
    total_items   integer,
    total_batches integer,
    done_items    integer     NOT NULL DEFAULT 0,
    failed_items  integer     NOT NULL DEFAULT 0,
    output        text,
    error         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX imagegen_jobs_status_created ON imagegen_jobs (status, created_at DESC);
CREATE INDEX imagegen_jobs_created ON imagegen_jobs (created_at DESC);

CREATE TABLE imagegen_job_batches (
    job_id      text        NOT NULL REFERENCES imagegen_jobs (job_id) ON DELETE CASCADE,
    attempt     integer     NOT NULL,
    batch       integer     NOT NULL,
    done_items  integer     NOT NULL,
    failed_items integer    NOT NULL,
    renderer    text        NOT NULL DEFAULT '',
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, attempt, batch)
);

CREATE TABLE imagegen_item_failures (
    job_id     text        NOT NULL REFERENCES imagegen_jobs (job_id) ON DELETE CASCADE,
    attempt    integer     NOT NULL,
    item_index integer     NOT NULL,
    reason     text        NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, attempt, item_index)
);
