-- 009_linear_probe.sql — the linear probe's test top-1 per evaluated epoch
-- (spec eval.linear_probe; issue 18). Applied once as user_version 9.

-- Multinomial logistic regression on the frozen embedding, trained on the
-- train split, scored on the test split (a fraction); NULL where the epoch
-- ran no probe (eval.linear_probe false, no evaluation, unseen classes).
ALTER TABLE metrics ADD COLUMN probe_top1 REAL;

-- The same on the pooled backbone features (the embedding layer's input).
ALTER TABLE metrics ADD COLUMN probe_backbone_top1 REAL;
