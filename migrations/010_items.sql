-- 010_items.sql — collections that grow (issue 13): images added to a
-- job's index after training (POST /jobs/{id}/items), each embedded by the
-- job's model. The bulk train/test matrices stay in index.bin (mmap'd);
-- these rows are few, change one at a time and must survive kill -9, so
-- they live here, committed before the answer. `seq` is the item's place in
-- the order of the exact search (ties after every dataset row, then by seq):
-- AUTOINCREMENT never reuses one.
CREATE TABLE job_items (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    item_id     TEXT NOT NULL,
    label       INTEGER,                -- NULL: none
    metadata    TEXT,                   -- a JSON object's text; NULL: none
    embedding   BLOB NOT NULL,          -- float32 little-endian, the index's dim
    created_at  TEXT NOT NULL,
    UNIQUE (job_id, item_id)
);
