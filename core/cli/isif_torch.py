#!/usr/bin/python3
"""isif_torch — isifd checkpoints as ready PyTorch modules, and back.

What it is for: a PyTorch user with a checkpoint from `isif train` or from
the daemon (`GET /jobs/{id}/checkpoint`) gets the trained network as a
torch.nn.Module in eval mode, the preprocessing that reproduces our
embeddings, and the class names; and can write a state_dict back as a
checkpoint that `isif embed --checkpoint` and `isif train --resume`'s model
loader accept.

    import isif_torch
    ck = isif_torch.load("job-1-epoch-5.safetensors")
    emb = ck.embed(images)          # uint8 H×W×C images → N×D, L2-normalised
    ck.classes                      # ["T-shirt/top", ...] or None
    isif_torch.save("mine.safetensors", ck.model, metadata=ck.metadata)

A torchvision resnet18 (ImageNet weights you have) becomes a checkpoint a
job's init.checkpoint names (its backbone initialises "resnet18_imagenet";
the classifier fc is left out, the 128-d embedding layer is new):

    python3 isif_torch.py from-torchvision resnet18.safetensors [--weights resnet18.pth]
    isif_torch.from_torchvision(torchvision.models.resnet18(weights=...), "out.safetensors")

Only Debian's python3-torch (and the numpy it depends on) is needed: the
safetensors files are read and written here with struct and json (8-byte
little-endian header length, JSON header, raw little-endian data), so the
`safetensors` package, which Debian 12 does not have, is not.

The four networks (convnet, resnet20, resnet18, resnet18_imagenet) are the PyTorch modules
DESIGN.md describes, with the engine's state_dict names; bench/
torch_crosscheck.py checks them against the engine tensor by tensor.

What it is not: a training loop or a copy of the training augmentations.
Checkpoints from before "preprocessing" was recorded, and those of
`isif init`, load fine but have ck.preprocessing None (pass mean/std yourself).

Installed by `make install` to $(PREFIX)/share/isifd/python/; run it as a
script to print what a checkpoint holds: python3 isif_torch.py CK.safetensors
"""
import json
import os
import pickle
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Checkpoint", "build", "load", "save", "preprocess", "read_safetensors",
           "write_safetensors", "from_torchvision", "MODELS"]

MODELS = ("convnet", "resnet20", "resnet18", "resnet18_imagenet")
MAX_HEADER = 64 << 20  # as the engine (ISIF_ST_MAX_HEADER): refuse larger JSON headers
_DTYPES = {"F32": torch.float32, "I64": torch.int64}
_NAMES = {v: k for k, v in _DTYPES.items()}


# ---- the networks ------------------------------------------------------------

class BasicBlock(nn.Module):
    """ResNet basic block; a 1×1 conv + BN shortcut where the shape changes,
    named `shortcut` (CIFAR layout) or `downsample` (torchvision's)."""

    def __init__(self, in_planes, planes, stride=1, proj="shortcut"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.proj = proj
        sc = nn.Sequential()
        if stride != 1 or in_planes != planes:
            sc = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        setattr(self, proj, sc)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + getattr(self, self.proj)(x))


class ResNet(nn.Module):
    """CIFAR-style ResNet: 3×3 stem, no max-pool, stages of basic blocks,
    global average pool, linear embedding, L2 normalisation. imagenet:
    torchvision's stem instead (7×7/2 conv, BN, ReLU, 3×3/2 max-pool) and
    `downsample` shortcuts, so its state_dict names are torchvision's."""

    def __init__(self, widths, blocks, stem, in_ch, dim=128, imagenet=False):
        super().__init__()
        self.imagenet = imagenet
        if imagenet:
            self.conv1 = nn.Conv2d(in_ch, stem, 7, 2, 3, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_ch, stem, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        in_planes = stem
        proj = "downsample" if imagenet else "shortcut"
        for s, (w, n) in enumerate(zip(widths, blocks)):
            layers = []
            for b in range(n):
                layers.append(BasicBlock(in_planes, w, 2 if s > 0 and b == 0 else 1, proj))
                in_planes = w
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*layers))
        self.n_stages = len(widths)
        self.linear = nn.Linear(in_planes, dim)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        if self.imagenet:
            out = F.max_pool2d(out, 3, 2, 1)
        for s in range(self.n_stages):
            out = getattr(self, "layer%d" % (s + 1))(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return F.normalize(self.linear(out), dim=1)


class ConvNet(nn.Module):
    """Three conv-BN-ReLU stages (32, 64, 128; max-pool after the first two),
    global average pool, linear embedding, L2 normalisation."""

    def __init__(self, in_ch, dim=128):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_ch, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, 1, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1))
        self.linear = nn.Linear(128, dim)

    def forward(self, x):
        return F.normalize(self.linear(self.features(x).flatten(1)), dim=1)


def build(name, in_channels, embedding_dim=128):
    """A freshly initialised network of the engine's model `name`."""
    if name == "resnet18":
        return ResNet([64, 128, 256, 512], [2, 2, 2, 2], 64, in_channels, embedding_dim)
    if name == "resnet18_imagenet":
        return ResNet([64, 128, 256, 512], [2, 2, 2, 2], 64, in_channels, embedding_dim, True)
    if name == "resnet20":
        return ResNet([16, 32, 64], [3, 3, 3], 16, in_channels, embedding_dim)
    if name == "convnet":
        return ConvNet(in_channels, embedding_dim)
    raise ValueError("unknown model %r (known: %s)" % (name, ", ".join(MODELS)))


def _shape_of(state, name):
    """(in_channels, embedding_dim) of a state_dict of model `name`."""
    first = "features.0.weight" if name == "convnet" else "conv1.weight"
    if first not in state or "linear.weight" not in state:
        raise ValueError("not a %s state_dict: %s or linear.weight missing" % (name, first))
    return int(state[first].shape[1]), int(state["linear.weight"].shape[0])


# ---- safetensors ---------------------------------------------------------------

def _check_little_endian():
    if sys.byteorder != "little":
        raise NotImplementedError("safetensors data is little-endian; this host is not")


def read_safetensors(path):
    """(tensors, metadata) of a safetensors file: an ordered {name: tensor}
    (F32 and I64, copied out of the file) and the {str: str} __metadata__.
    Raises ValueError on anything malformed (sizes, offsets, overlaps)."""
    _check_little_endian()
    with open(path, "rb") as f:
        data = bytearray(f.read())
    if len(data) < 8:
        raise ValueError("%s: shorter than the 8-byte header length" % path)
    n = struct.unpack("<Q", data[:8])[0]
    if n > MAX_HEADER or 8 + n > len(data):
        raise ValueError("%s: header length %d out of range" % (path, n))
    header = json.loads(data[8:8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError("%s: the header is not a JSON object" % path)
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError("%s: __metadata__ is not a map of strings" % path)
    base, size = 8 + n, len(data) - 8 - n
    tensors, spans = {}, []
    for name, e in header.items():
        dtype, shape, (b, end) = _parse_entry(path, name, e, size)
        spans.append((b, end, name))
        count = end - b
        t = torch.empty(shape, dtype=dtype)
        if count:
            t = torch.frombuffer(data, dtype=dtype, count=t.numel(), offset=base + b)
            t = t.reshape(shape).clone()  # own, aligned memory; the file buffer can go
        tensors[name] = t
    _check_tiling(path, spans, size)
    return tensors, metadata


def _parse_entry(path, name, e, size):
    """dtype, shape and [begin, end) of one header entry, checked against size."""
    ok = (isinstance(e, dict) and set(e) == {"dtype", "shape", "data_offsets"} and
          e["dtype"] in _DTYPES and isinstance(e["shape"], list) and
          all(isinstance(d, int) and d >= 0 for d in e["shape"]) and
          isinstance(e["data_offsets"], list) and len(e["data_offsets"]) == 2 and
          all(isinstance(o, int) for o in e["data_offsets"]))
    if not ok:
        raise ValueError("%s: tensor %r: bad entry %r" % (path, name, e))
    dtype, shape = _DTYPES[e["dtype"]], e["shape"]
    b, end = e["data_offsets"]
    numel = 1
    for d in shape:
        numel *= d
    itemsize = torch.empty((), dtype=dtype).element_size()
    if not 0 <= b <= end <= size or end - b != numel * itemsize:
        raise ValueError("%s: tensor %r: data_offsets %r do not fit shape %r in %d bytes"
                         % (path, name, e["data_offsets"], shape, size))
    return dtype, shape, (b, end)


def _check_tiling(path, spans, size):
    """The tensors' data must tile the data section: no gap, no overlap."""
    at = 0
    for b, end, name in sorted(spans):
        if b != at:
            raise ValueError("%s: tensor %r starts at %d, expected %d" % (path, name, b, at))
        at = end
    if at != size:
        raise ValueError("%s: %d data bytes, the tensors use %d" % (path, size, at))


def _header_bytes(tensors, metadata):
    """The padded JSON header the engine writes for these tensors: compact,
    escaped as serde_json (json.dumps with ensure_ascii=False does the same),
    "__metadata__" first when not empty, spaces up to a multiple of 8."""
    header, offset = {}, 0
    if metadata:
        header["__metadata__"] = dict(metadata)
    for name, t in tensors.items():
        nbytes = t.numel() * t.element_size()
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return text + b" " * (-len(text) % 8)


def write_safetensors(path, tensors, metadata=None):
    """Writes an ordered {name: tensor} (F32 or I64 only: what the engine reads)
    and a {str: str} metadata map as safetensors, atomically: a temporary file,
    fsync, rename, fsync of the directory (a crash leaves the old file or the new)."""
    _check_little_endian()
    for name, t in tensors.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise ValueError("bad tensor name %r" % (name,))
        if t.dtype not in _NAMES:
            raise ValueError("%s: dtype %s; the engine reads float32 and int64 only"
                             % (name, t.dtype))
    if metadata and not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise ValueError("metadata must map strings to strings")
    tensors = {k: t.detach().cpu().contiguous() for k, t in tensors.items()}
    head = _header_bytes(tensors, metadata)
    tmp = "%s.tmp-%d" % (path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(head)))
            f.write(head)
            for t in tensors.values():
                f.write(t.numpy().tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---- preprocessing -------------------------------------------------------------

def _to_chw_uint8(image, channels_last):
    """One image (2-D gray, or 3-D H×W×C / C×H×W) as a uint8 C×H×W tensor."""
    # torch.tensor copies: numpy arrays may be read-only (np.frombuffer)
    x = image if isinstance(image, torch.Tensor) else torch.tensor(image)
    if x.dtype != torch.uint8:
        raise TypeError("images must be uint8 (0..255), not %s" % x.dtype)
    if x.dim() == 2:
        x = x.unsqueeze(0)
    elif x.dim() == 3 and channels_last:
        x = x.permute(2, 0, 1)
    elif x.dim() != 3:
        raise ValueError("an image must be H×W or H×W×C, not shape %s" % (tuple(x.shape),))
    if x.shape[0] not in (1, 3):
        raise ValueError("an image needs 1 or 3 channels, not %d" % x.shape[0])
    return x.contiguous()


def _resize_u8(x, h, w):
    """Bilinear resize of a uint8 C×H×W image as the engine (and torchvision's
    tensor resize with antialias=False) does it: float32 interpolation with
    half-pixel centres, rounded half to even, clamped to 0..255."""
    if tuple(x.shape[1:]) == (h, w):
        return x
    y = F.interpolate(x.unsqueeze(0).float(), size=(h, w), mode="bilinear",
                      align_corners=False, antialias=False)
    return y.round().clamp(0, 255).to(torch.uint8).squeeze(0)


def _convert_u8(x, channels):
    """1→3 replicates; 3→1 is ITU-R 601 luma in PIL's fixed point, as the engine."""
    if x.shape[0] == channels:
        return x
    if x.shape[0] == 1:
        return x.expand(3, -1, -1).contiguous()
    r, g, b = x.to(torch.int64)
    return ((19595 * r + 38470 * g + 7471 * b + 32768) >> 16).to(torch.uint8).unsqueeze(0)


def preprocess(images, preprocessing, channels_last=True):
    """The model input for uint8 images, exactly as `isif embed --dataset` and
    the daemon's image queries compute it: resize to the checkpoint's size,
    convert channels, the centre crop when the preprocessing has "crop":
    {"center": [h, w]} (a job trained with augment.random_crop), x/255,
    (x − mean)/std per channel. Returns float32 N×C×H×W.

    images: one image (H×W, or H×W×C with channels_last, C×H×W without), a
    batch (N×H×W×C, or N×C×H×W without channels_last), or a list of images
    of any sizes; numpy arrays or torch tensors of dtype uint8.
    preprocessing: the checkpoint's dict (Checkpoint.preprocessing), or any
    dict with "channels", "height", "width", "mean" and "std"."""
    p = preprocessing
    if not p:
        raise ValueError("no preprocessing: this checkpoint does not record it "
                         "(isif init, or written before it was recorded); pass a dict "
                         "with channels, height, width, mean and std")
    c, h, w = int(p["channels"]), int(p["height"]), int(p["width"])
    mean = torch.tensor(p["mean"], dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(p["std"], dtype=torch.float32).view(-1, 1, 1)
    if mean.shape[0] != c or std.shape[0] != c:
        raise ValueError("preprocessing: %d channels but %d means, %d stds"
                         % (c, mean.shape[0], std.shape[0]))
    if isinstance(images, (list, tuple)):
        batch = list(images)
    else:
        x = images if isinstance(images, torch.Tensor) else torch.tensor(images)
        batch = list(x) if x.dim() == 4 else [x]
    crop = (p.get("crop") or {}).get("center")
    oh, ow = (int(crop[0]), int(crop[1])) if crop else (h, w)
    top, left = round((h - oh) / 2), round((w - ow) / 2)  # CenterCrop: half to even
    out = torch.empty(len(batch), c, oh, ow, dtype=torch.float32)
    for i, image in enumerate(batch):
        x = _convert_u8(_resize_u8(_to_chw_uint8(image, channels_last), h, w), c)
        x = x[:, top:top + oh, left:left + ow]
        out[i] = (x.to(torch.float32) / 255 - mean) / std
    return out


# ---- checkpoints ---------------------------------------------------------------

class Checkpoint:
    """A loaded checkpoint.

    model          the network, eval mode (BatchNorm uses its running statistics)
    name           "convnet", "resnet20" or "resnet18"
    metadata       the file's __metadata__, {str: str}, as stored
    preprocessing  dict parsed from metadata "preprocessing", or None
    classes        list of class names from metadata "classes", or None
    """

    def __init__(self, model, name, metadata):
        self.model, self.name, self.metadata = model, name, metadata
        self.preprocessing = _json_or_none(metadata.get("preprocessing"))
        self.classes = _json_or_none(metadata.get("classes"))

    def preprocess(self, images, channels_last=True):
        """preprocess(images, self.preprocessing, channels_last)."""
        return preprocess(images, self.preprocessing, channels_last)

    @torch.no_grad()
    def embed(self, images, channels_last=True):
        """N×D L2-normalised embeddings of uint8 images (see preprocess)."""
        return self.model(self.preprocess(images, channels_last))


def _json_or_none(text):
    return None if text is None else json.loads(text)


def load(path, model=None):
    """Reads a checkpoint and returns a Checkpoint whose network holds its
    weights (load_state_dict strict=True: every tensor present with its
    shape, nothing extra). model overrides the name stored in the file."""
    state, metadata = read_safetensors(path)
    name = model or metadata.get("model")
    if name not in MODELS:
        raise ValueError("%s: model %r unknown; pass model= one of %s"
                         % (path, name, ", ".join(MODELS)))
    net = build(name, *_shape_of(state, name))
    net.load_state_dict(state, strict=True)
    net.eval()
    return Checkpoint(net, name, metadata)


def save(path, model, name=None, metadata=None):
    """Writes a module's (or a state_dict's) tensors as our checkpoint:
    floating tensors as float32, integer ones as int64, metadata "model"
    first then `metadata` (values that are not strings are stored as compact
    JSON). name: the model's name, else metadata["model"]; required for a
    bare state_dict. save(path, ck.model, metadata=ck.metadata) of an
    unchanged checkpoint rewrites it byte for byte."""
    state = model.state_dict() if isinstance(model, nn.Module) else model
    metadata = dict(metadata or {})
    name = name or metadata.get("model")
    if name not in MODELS:
        raise ValueError("save: model name %r unknown; pass name= one of %s"
                         % (name, ", ".join(MODELS)))
    meta = {"model": name}
    for k, v in metadata.items():
        if k != "model":
            meta[k] = v if isinstance(v, str) else json.dumps(v, separators=(",", ":"),
                                                               ensure_ascii=False)
    tensors = {}
    for k, t in state.items():
        if t.is_floating_point():
            tensors[k] = t.detach().to(torch.float32)
        else:
            tensors[k] = t.detach().to(torch.int64)
    write_safetensors(path, tensors, meta)


def from_torchvision(model, path, metadata=None):
    """Writes a torchvision resnet18's weights (a module or its state_dict)
    as a backbone checkpoint of "resnet18_imagenet" for a job's
    init.checkpoint: every tensor but the classifier fc.*, floats as
    float32, counters as int64, metadata "model" and "source". Checks the
    names and shapes against our resnet18_imagenet first (ValueError naming
    the tensor), so a file that isifd would refuse is never written."""
    state = model.state_dict() if isinstance(model, nn.Module) else model
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    want = {k: v for k, v in build("resnet18_imagenet", 3).state_dict().items()
            if not k.startswith("linear.")}
    for k, v in want.items():
        if k not in state:
            raise ValueError("from_torchvision: missing tensor %s" % k)
        if tuple(state[k].shape) != tuple(v.shape):
            raise ValueError("from_torchvision: %s: shape %s, %s expected"
                             % (k, list(state[k].shape), list(v.shape)))
    for k in state:
        if k not in want:
            raise ValueError("from_torchvision: unexpected tensor %s" % k)
    meta = {"source": "torchvision resnet18 (fc left out)"}
    meta.update(metadata or {})
    save(path, {k: state[k] for k in want}, name="resnet18_imagenet", metadata=meta)


def _from_torchvision_main(argv):
    """from-torchvision OUT [--weights FILE.pth]: without --weights, a
    torchvision resnet18 with its default random initialisation (seed 0)."""
    if len(argv) not in (1, 3) or (len(argv) == 3 and argv[1] != "--weights"):
        print("usage: isif_torch.py from-torchvision OUT.safetensors [--weights RESNET18.pth]")
        return 2
    if len(argv) == 3:
        try:
            state = torch.load(argv[2], map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, KeyError) as e:
            raise ValueError("%s: not a PyTorch state_dict file (%s: %s)"
                             % (argv[2], type(e).__name__, e)) from e
        if not isinstance(state, dict):
            raise ValueError("%s: holds a %s, not a state_dict" % (argv[2], type(state).__name__))
    else:
        try:
            import torchvision  # only this path needs it
        except ImportError as e:
            raise RuntimeError("from-torchvision without --weights needs torchvision "
                               "(Debian: python3-torchvision): %s" % e) from e
        torch.manual_seed(0)
        state = torchvision.models.resnet18().state_dict()
    from_torchvision(state, argv[0])
    print("wrote %s (resnet18_imagenet backbone)" % argv[0])
    return 0


def _main(argv):
    if len(argv) >= 2 and argv[1] == "from-torchvision":
        return _from_torchvision_main(argv[2:])
    if len(argv) != 2 or argv[1].startswith("-"):
        print("usage: isif_torch.py CHECKPOINT.safetensors   (prints what it holds)")
        print("       isif_torch.py from-torchvision OUT.safetensors [--weights RESNET18.pth]")
        return 2
    ck = load(argv[1])
    params = sum(p.numel() for p in ck.model.parameters())
    print("model %s, %d parameters, epoch %s" % (ck.name, params, ck.metadata.get("epoch", "-")))
    print("preprocessing %s" % json.dumps(ck.preprocessing))
    print("classes %s" % json.dumps(ck.classes))
    return 0


def _cli(argv):
    """The command line: a bad path or file is a one-line message and exit
    status 1, not a traceback."""
    try:
        return _main(argv)
    except (OSError, ValueError, RuntimeError, KeyError, EOFError,
            pickle.UnpicklingError) as e:
        print("isif_torch.py: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(_cli(sys.argv))
