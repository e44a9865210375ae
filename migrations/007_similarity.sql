-- 011_similarity.sql — the similarity figure (issue 19): at each evaluation,
-- histograms of the cosine similarity of same-class and different-class
-- pairs of test images (core/eval/simhist.c), one row per job and epoch.
-- Applied once as user_version 11.

CREATE TABLE similarity (
    job_id       INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    epoch        INTEGER NOT NULL,
    bins         INTEGER NOT NULL,  -- equal bins over [-1, 1]
    same_pairs   INTEGER NOT NULL,  -- pairs taken (the counts' sum)
    same_sum     REAL NOT NULL,     -- sum of their similarities (mean = sum / pairs)
    same_counts  TEXT NOT NULL,     -- JSON array of `bins` integers
    diff_pairs   INTEGER NOT NULL,
    diff_sum     REAL NOT NULL,
    diff_counts  TEXT NOT NULL,
    PRIMARY KEY (job_id, epoch)
) WITHOUT ROWID;
