-- 004_dataset_preprocessing.sql — what GET /datasets shows of a dataset's
-- evaluation preprocessing and its class names, recorded when it is
-- registered or loaded (NULL until then). Applied once as user_version 4.

-- {"mean": [...], "std": [...]}: per channel of the train split, 0..1 scale.
ALTER TABLE datasets ADD COLUMN normalization TEXT;
-- ["T-shirt/top", ...]: the names of labels 0, 1, ...; NULL when it has none.
ALTER TABLE datasets ADD COLUMN class_names TEXT;

-- Debian's dataset-fashion-mnist, as isif_dataset_load computes it.
UPDATE datasets SET
    normalization = '{"mean":[0.286040604],"std":[0.353024244]}',
    class_names = '["T-shirt/top","Trouser","Pullover","Dress","Coat","Sandal","Shirt","Sneaker","Bag","Ankle boot"]'
 WHERE name = 'fashion-mnist' AND path = '/usr/share/datasets/fashion-mnist';
