#!/usr/bin/python3
"""tests/cli/torch_module.py ISIF TMPDIR — core/cli/isif_torch.py against the engine.

Trains tiny models with `isif train` (Fashion-MNIST: gray 28×28, convnet;
an image folder of PNGs of several sizes, colour and gray: resnet20 at
the folder default of 32×32, so resizing and channel conversion matter),
then checks that
  * the checkpoint's "preprocessing" and "classes" are right (mean/std
    recomputed here from the images, class names from the dataset);
  * isif_torch.load + Checkpoint.embed on the raw uint8 images gives what
    `isif embed --dataset` gives, within 1e-5;
  * isif_torch.save of an unchanged checkpoint rewrites it byte for byte,
    and of changed weights gives a file whose `isif embed` matches PyTorch;
  * `isif init` checkpoints of every model load strictly and round-trip;
  * malformed files are refused.
Prints one PASS/FAIL line per case; exits 1 when any failed. Run by
tests/cli/torch.sh (needs python3-torch).
"""
import filecmp
import gzip
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "core", "cli"))
import isif_torch  # noqa: E402

ISIF, TMP = sys.argv[1], sys.argv[2]
FM = "/usr/share/datasets/fashion-mnist"
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot"]
TOL = 1e-5
failed = []


def check(name, ok, detail=""):
    print("PASS %s" % name if ok else "FAIL %s: %s" % (name, detail))
    if not ok:
        failed.append(name)


def isif(*args):
    r = subprocess.run([ISIF] + [str(a) for a in args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("FAIL torch_module_isif_%s: %s" % (args[0], r.stderr.strip()[-300:]))
    return r.stdout


def idx_images(name, n=None):
    """uint8 N×28×28 from an IDX file of Debian's Fashion-MNIST."""
    with gzip.open(os.path.join(FM, name)) as f:
        data = f.read()
    count, h, w = struct.unpack(">III", data[4:16])
    count = count if n is None else n
    return np.frombuffer(data, np.uint8, count * h * w, 16).reshape(count, h, w)


def write_png(path, img):
    """An 8-bit gray (H×W) or RGB (H×W×3) PNG, with zlib only."""
    h, w = img.shape[:2]
    kind = 0 if img.ndim == 2 else 2
    raw = b"".join(b"\0" + img[y].tobytes() for y in range(h))

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" +
                chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, kind, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def make_folder(root):
    """train/ and test/ with three classes (one named in UTF-8) of PNGs of
    several sizes, one in four gray. Returns {split: [image in load order]}."""
    rng = np.random.default_rng(5)
    sizes = [(20, 24), (13, 17), (32, 32), (40, 31)]
    images = {}
    for split, per_class in (("train", 8), ("test", 2)):
        images[split] = []
        for cls in sorted(["cat", "dog", "\u00e9meu"]):  # the loader's order: sorted names
            os.makedirs(os.path.join(root, split, cls))
            for i in range(per_class):
                h, w = sizes[i % len(sizes)]
                shape = (h, w) if i % 4 == 3 else (h, w, 3)
                img = rng.integers(0, 256, shape, dtype=np.uint8)
                write_png(os.path.join(root, split, cls, "%02d.png" % i), img)
                images[split].append(img)
    return images


def max_err(a, b):
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


def channel_stats(images, prep):
    """Mean and std (ddof 0) per channel of images after resize and convert,
    on the 0..1 scale, as the engine computes them for the train split."""
    c, h, w = prep["channels"], prep["height"], prep["width"]
    xs = [isif_torch._convert_u8(isif_torch._resize_u8(isif_torch._to_chw_uint8(i, True), h, w), c)
          for i in images]
    x = torch.stack(xs).to(torch.float64) / 255
    return x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3), unbiased=False).tolist()


def fashion():
    out = os.path.join(TMP, "fm")
    isif("train", "--dataset", "fashion-mnist", "--model", "convnet", "--train-subset", 256,
         "--batch-size", 32, "--epochs", 1, "--eval-every", 0, "--threads", 2, "--quiet",
         "--out", out)
    path = os.path.join(out, "checkpoint-latest.safetensors")
    ck = isif_torch.load(path)
    p = ck.preprocessing
    check("torch_fashion_classes", ck.classes == FASHION, ck.classes)
    mean, std = channel_stats(idx_images("train-images-idx3-ubyte.gz"), p)
    check("torch_fashion_preprocessing",
          (p["channels"], p["height"], p["width"]) == (1, 28, 28) and p["crop"] is None and
          max_err(p["mean"], mean) < 1e-6 and max_err(p["std"], std) < 1e-6,
          "%s vs mean %s std %s" % (p, mean, std))
    emb = os.path.join(TMP, "fm-emb.npy")
    isif("embed", "--checkpoint", path, "--dataset", "fashion-mnist", "--split", "test",
         "--out", emb)
    images = idx_images("t10k-images-idx3-ubyte.gz", 300)
    ours = np.load(emb)[:300]
    theirs = ck.embed(images[:, :, :, None]).numpy()
    err = max_err(ours, theirs)
    check("torch_fashion_embed_matches_isif_embed", err <= TOL, "max abs error %.3g" % err)
    print("    convnet on Fashion-MNIST: max abs error %.3g over 300 test images" % err)
    return path, emb, images[:, :, :, None]


def random_crop():
    """A job trained on random 24x24 crops: its checkpoint records the centre
    crop, and isif embed and isif_torch both apply it."""
    out = os.path.join(TMP, "rc")
    isif("train", "--dataset", "fashion-mnist", "--model", "convnet", "--train-subset", 64,
         "--batch-size", 32, "--epochs", 1, "--eval-every", 0, "--threads", 2, "--quiet",
         "--random-crop", 24, "--out", out)
    path = os.path.join(out, "checkpoint-latest.safetensors")
    ck = isif_torch.load(path)
    check("torch_random_crop_preprocessing", ck.preprocessing["crop"] == {"center": [24, 24]},
          ck.preprocessing["crop"])
    emb = os.path.join(TMP, "rc-emb.npy")
    isif("embed", "--checkpoint", path, "--dataset", "fashion-mnist", "--split", "test",
         "--out", emb)
    images = idx_images("t10k-images-idx3-ubyte.gz", 100)
    err = max_err(np.load(emb)[:100], ck.embed(images[:, :, :, None]).numpy())
    check("torch_random_crop_embed_matches_isif_embed", err <= TOL, "max abs error %.3g" % err)


def folder():
    root, out = os.path.join(TMP, "folder"), os.path.join(TMP, "folder-run")
    images = make_folder(root)
    # the default --image-size: `isif embed --dataset` has no such option
    isif("train", "--dataset", root, "--model", "resnet20", "--batch-size", 8,
         "--epochs", 1, "--eval-every", 0, "--threads", 2, "--quiet", "--out", out)
    path = os.path.join(out, "checkpoint-latest.safetensors")
    ck = isif_torch.load(path)
    p = ck.preprocessing
    check("torch_folder_classes", ck.classes == ["cat", "dog", "\u00e9meu"], ck.classes)
    mean, std = channel_stats(images["train"], p)
    check("torch_folder_preprocessing",
          (p["channels"], p["height"], p["width"]) == (3, 32, 32) and
          p["resize"]["interpolation"] == "bilinear" and
          max_err(p["mean"], mean) < 1e-6 and max_err(p["std"], std) < 1e-6,
          "%s vs mean %s std %s" % (p, mean, std))
    emb = os.path.join(TMP, "folder-emb.npy")
    isif("embed", "--checkpoint", path, "--dataset", root, "--split", "test", "--out", emb)
    err = max_err(np.load(emb), ck.embed(images["test"]).numpy())
    check("torch_folder_embed_matches_isif_embed", err <= TOL, "max abs error %.3g" % err)
    print("    resnet20 on PNGs of 4 sizes resized to 32x32: max abs error %.3g" % err)
    return path, emb, root, images["test"]


def roundtrip(path, emb, dataset, name, images):
    """save unchanged: the same file; save changed: the engine embeds the
    first len(images) test images as PyTorch does."""
    ck = isif_torch.load(path)
    same = os.path.join(TMP, name + "-same.safetensors")
    isif_torch.save(same, ck.model, metadata=ck.metadata)
    check("torch_%s_save_unchanged_is_byte_identical" % name,
          filecmp.cmp(path, same, shallow=False))
    emb2 = os.path.join(TMP, name + "-same.npy")
    isif("embed", "--checkpoint", same, "--dataset", dataset, "--split", "test", "--out", emb2)
    check("torch_%s_saved_embeds_equal" % name, filecmp.cmp(emb, emb2, shallow=False))

    # changed weights: what PyTorch computes is what the engine reads back
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for t in ck.model.parameters():
            t.add_(0.05 * torch.randn(t.shape, generator=gen))
    changed = os.path.join(TMP, name + "-changed.safetensors")
    isif_torch.save(changed, ck.model.state_dict(), name=ck.name, metadata=ck.metadata)
    emb3 = os.path.join(TMP, name + "-changed.npy")
    isif("embed", "--checkpoint", changed, "--dataset", dataset, "--split", "test", "--out", emb3)
    ours, before = np.load(emb3)[:len(images)], np.load(emb)[:len(images)]
    err = max_err(ours, ck.embed(images).numpy())
    moved = max_err(ours, before)
    check("torch_%s_changed_weights_reach_the_engine" % name, err <= TOL and moved > 1e-3,
          "torch vs engine %.3g, change %.3g" % (err, moved))


def init_checkpoints():
    ok, detail = True, ""
    for model, ch in (("convnet", 1), ("resnet20", 3), ("resnet18", 3), ("resnet18", 1)):
        path = os.path.join(TMP, "init-%s-%d.safetensors" % (model, ch))
        isif("init", "--model", model, "--in-channels", ch, "--seed", 4, "--embedding-dim", 64,
             "--out", path)
        ck = isif_torch.load(path)
        again = path + ".again"
        isif_torch.save(again, ck.model, metadata=ck.metadata)
        good = (ck.name == model and ck.preprocessing is None and ck.classes is None and
                ck.model.linear.out_features == 64 and filecmp.cmp(path, again, shallow=False))
        try:
            ck.preprocess(np.zeros((8, 8), np.uint8))
            good = False
        except ValueError:
            pass
        if not good:
            ok, detail = False, "%s with %d channels" % (model, ch)
    check("torch_init_checkpoints_load_strictly_and_roundtrip", ok, detail)


def refusals(path):
    data = open(path, "rb").read()
    bad = os.path.join(TMP, "bad.safetensors")

    def refused(blob, exc):
        with open(bad, "wb") as f:
            f.write(blob)
        try:
            isif_torch.load(bad)
        except exc:
            return True
        return False
    n = struct.unpack("<Q", data[:8])[0]
    state, meta = isif_torch.read_safetensors(path)
    state["extra"] = torch.zeros(2)
    isif_torch.write_safetensors(bad, state, meta)
    with open(bad, "rb") as f:
        extra = f.read()
    check("torch_refuses_malformed_files",
          refused(data[:-4], ValueError) and refused(data[:8 + n - 8], ValueError) and
          refused(struct.pack("<Q", 1 << 40) + data[8:], ValueError) and
          refused(extra, RuntimeError))
    r = subprocess.run([sys.executable, isif_torch.__file__, path], capture_output=True, text=True)
    check("torch_module_prints_a_checkpoint", r.returncode == 0 and "model resnet20" in r.stdout,
          r.stdout + r.stderr)
    garbage = os.path.join(TMP, "garbage.pth")
    with open(garbage, "wb") as f:
        f.write(b"not a pickle at all")
    cases = ([isif_torch.__file__, os.path.join(TMP, "missing.safetensors")],
             [isif_torch.__file__, "from-torchvision", os.path.join(TMP, "no/dir/o.safetensors"),
              "--weights", garbage],
             [isif_torch.__file__, "from-torchvision", os.path.join(TMP, "no/dir/o.safetensors")])
    bad = []
    for argv in cases:
        r = subprocess.run([sys.executable] + argv, capture_output=True, text=True)
        if r.returncode != 1 or "Traceback" in r.stderr or "isif_torch.py: " not in r.stderr:
            bad.append("%s: %d %s" % (argv[1:], r.returncode, r.stderr[-300:]))
    check("torch_module_cli_errors_are_one_line", not bad, "; ".join(bad))


torch.set_num_threads(2)
fm_path, fm_emb, fm_images = fashion()
random_crop()
folder_path, folder_emb, folder_root, folder_images = folder()
roundtrip(fm_path, fm_emb, "fashion-mnist", "fashion", fm_images)
roundtrip(folder_path, folder_emb, folder_root, "folder", folder_images)
init_checkpoints()
refusals(folder_path)
sys.exit(1 if failed else 0)
