-- 001_init.sql — the first schema of isifd: datasets, jobs (the durable
-- queue), per-epoch metrics and embedding indexes. Applied once, in one
-- transaction, and recorded as PRAGMA user_version = 1.

CREATE TABLE datasets (
    name        TEXT PRIMARY KEY,
    format      TEXT NOT NULL,          -- idx, cifar10, cifar100, stl10, folder, auto
    path        TEXT NOT NULL,          -- directory on this machine
    url         TEXT,                   -- where it was fetched from, if it was
    created_at  TEXT NOT NULL
);

-- Debian's dataset-fashion-mnist, registered by default (DESIGN "Files").
INSERT INTO datasets (name, format, path, created_at)
VALUES ('fashion-mnist', 'idx', '/usr/share/datasets/fashion-mnist',
        strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));

CREATE TABLE jobs (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    status              TEXT NOT NULL DEFAULT 'queued'
                        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    priority            INTEGER NOT NULL DEFAULT 0,
    spec                TEXT NOT NULL,  -- canonical JSON (isif_spec_to_json)
    dataset             TEXT NOT NULL,
    epochs              INTEGER NOT NULL,
    epoch               INTEGER NOT NULL DEFAULT 0,  -- epochs completed (committed)
    checkpoint          TEXT,           -- checkpoint file of `epoch`, relative to the state dir
    resume_pending      INTEGER NOT NULL DEFAULT 0,  -- was running when the daemon stopped
    resumed_from_epoch  INTEGER,
    cancel_requested    INTEGER NOT NULL DEFAULT 0,
    error               TEXT,
    created_at          TEXT NOT NULL,
    started_at          TEXT,
    finished_at         TEXT
);

-- The queue order: resumed jobs first, then priority, then FIFO.
CREATE INDEX jobs_queue ON jobs (status, resume_pending DESC, priority DESC, id);

CREATE TABLE metrics (
    job_id          INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    epoch           INTEGER NOT NULL,
    loss            REAL NOT NULL,
    knn_top1        REAL,               -- NULL when evaluation did not run
    knn_top5        REAL,
    recall_at_1     REAL,               -- unseen-category protocol only
    recall_at_2     REAL,
    recall_at_4     REAL,
    recall_at_8     REAL,
    nmi             REAL,
    lr              REAL NOT NULL,
    seconds         REAL NOT NULL,
    images_per_sec  REAL NOT NULL,
    images          INTEGER NOT NULL DEFAULT 0,  -- source images trained this epoch
    PRIMARY KEY (job_id, epoch)
) WITHOUT ROWID;

CREATE TABLE embedding_indexes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    split       TEXT NOT NULL CHECK (split IN ('train', 'test')),
    epoch       INTEGER NOT NULL,
    path        TEXT NOT NULL,          -- .npy file, relative to the state dir
    rows        INTEGER NOT NULL,
    dim         INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (job_id, split)
);
