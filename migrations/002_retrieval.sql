-- 002_retrieval.sql — embedding indexes and the dataset registry's shape
-- columns (issue 5). Applied once, in one transaction, as user_version 2.

-- One current embedding index per job: a directory in the state dir
-- (jobs/<id>/index-<epoch>-<nonce>/) holding index.bin (train and test
-- embeddings with their dataset indices and labels) and model.safetensors
-- (the checkpoint that produced them). A newer evaluation replaces the row
-- in one statement; the old directory is removed after the commit.
CREATE TABLE job_indexes (
    job_id      INTEGER PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    epoch       INTEGER NOT NULL,
    path        TEXT NOT NULL,          -- the index directory, relative to the state dir
    n_train     INTEGER NOT NULL,
    n_test      INTEGER NOT NULL,
    dim         INTEGER NOT NULL,
    bytes       INTEGER NOT NULL,       -- size of index.bin
    created_at  TEXT NOT NULL
);

-- 001's per-split table was a placeholder that nothing ever wrote; the
-- one-row-per-job table above replaces it (both splits swap together).
DROP TABLE embedding_indexes;

-- What a registered dataset holds, filled when it is registered (POST
-- /datasets loads it to check it) or first loaded; NULL while unknown.
ALTER TABLE datasets ADD COLUMN train_images INTEGER;
ALTER TABLE datasets ADD COLUMN test_images INTEGER;
ALTER TABLE datasets ADD COLUMN channels INTEGER;
ALTER TABLE datasets ADD COLUMN height INTEGER;
ALTER TABLE datasets ADD COLUMN width INTEGER;
ALTER TABLE datasets ADD COLUMN classes INTEGER;

-- Debian's dataset-fashion-mnist: 60000 + 10000 gray 28×28 images, 10 classes.
UPDATE datasets SET train_images = 60000, test_images = 10000, channels = 1,
                    height = 28, width = 28, classes = 10
 WHERE name = 'fashion-mnist' AND path = '/usr/share/datasets/fashion-mnist';
