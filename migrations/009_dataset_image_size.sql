-- The side folder datasets are resized to when loaded (POST /datasets
-- "image_size"); NULL: the reader's default (32). Other formats keep theirs.
ALTER TABLE datasets ADD COLUMN image_size INTEGER;
