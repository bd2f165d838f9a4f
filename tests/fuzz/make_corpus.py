#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""make_corpus.py: writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

The seeds are committed; this script only documents how they were made and remakes them the same
way (deterministic: gzip with mtime 0). Each target's directory is emptied first, so a seed renamed
or dropped here leaves no stale file behind. Python 3 standard library only. Run from anywhere:
    python3 tests/fuzz/make_corpus.py
"""
import gzip
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def clear(target):
    d = os.path.join(HERE, "corpus", target)
    if os.path.isdir(d):
        for name in os.listdir(d):
            os.remove(os.path.join(d, name))


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


# --- IDX: byte 0 flags, bytes 1-2 the split (little-endian), then images, then labels (fuzz_idx.c).
GZ_IMAGES, GZ_LABELS, NO_LABELS, AS_F64, SCALE_UNIT, USE_LIMIT = 1, 2, 4, 8, 16, 32


def idx(elem, dims, payload):
    return bytes([0, 0, elem, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(payload)


def idx_input(flags, images, labels=b""):
    return struct.pack("<BH", flags, len(images)) + images + labels


PIXELS = [0, 17, 34, 51, 68, 85, 102, 119, 136, 153, 170, 187, 204, 221, 238, 255, 1, 254]
IMAGES = idx(0x08, [3, 2, 3], PIXELS)          # 3 images of 2 x 3 pixels
LABELS = idx(0x08, [3], [0, 2, 1])


def idx_seeds():
    clear("idx")
    write("idx", "pair-plain", idx_input(0, IMAGES, LABELS))
    write("idx", "pair-gzip-by-target", idx_input(GZ_IMAGES | GZ_LABELS | AS_F64 | SCALE_UNIT, IMAGES, LABELS))
    write("idx", "pair-gzip-files", idx_input(SCALE_UNIT, gz(IMAGES), gz(LABELS)))
    write("idx", "features-2d-no-labels", idx_input(NO_LABELS | AS_F64, idx(0x08, [3, 6], PIXELS)))
    write("idx", "limit-18-ok", idx_input(USE_LIMIT | 2 << 6, IMAGES, LABELS))
    write("idx", "limit-6-overflow", idx_input(USE_LIMIT | 1 << 6, IMAGES, LABELS))
    write("idx", "images-truncated", idx_input(0, IMAGES[:-1], LABELS))
    write("idx", "labels-trailing-byte", idx_input(GZ_LABELS, IMAGES, LABELS + b"\x00"))
    write("idx", "count-mismatch", idx_input(0, IMAGES, idx(0x08, [2], [0, 1])))
    write("idx", "signed-bytes", idx_input(0, idx(0x09, [3, 2, 3], PIXELS), LABELS))
    write("idx", "gzip-cut", idx_input(0, gz(IMAGES)[:-6], LABELS))
    write("idx", "zero-dimension", idx_input(NO_LABELS, idx(0x08, [3, 0, 3], [])))


# --- CSV: byte 0 = (header + 1) + 3 (label_col + 1) + 9 (dtype is F64), then the file (fuzz_csv.c).
def csv_input(header, label_col, f64, text):
    return bytes([(header + 1) + 3 * (label_col + 1) + 9 * f64]) + text


def csv_seeds():
    clear("csv")
    write("csv", "plain", csv_input(0, -1, 0, b"1,2,3\n4,5,6\n7,8,9\n"))
    write("csv", "header-label0", csv_input(1, 0, 1, b"label,x,y\n0,0.5,1.5\n2,-1e3,0x1p-3\n1,3,4\n"))
    write("csv", "detect-bom-crlf-blank",
          csv_input(-1, 1, 0, b"\xef\xbb\xbfa,b,c\r\n\r\n 1 ,\t2,3\r\n4,0,6\r\n  \n7,1,9"))
    write("csv", "nan", csv_input(0, -1, 0, b"1,2\nnan,3\n"))
    write("csv", "ragged", csv_input(-1, -1, 1, b"1,2,3\n4,5\n"))
    write("csv", "bad-labels", csv_input(0, 1, 0, b"1,3e0\n2,0.5\n3,-1\n"))
    write("csv", "float-range", csv_input(0, -1, 0, b"1e39,1\n"))
    write("csv", "only-label-column", csv_input(0, 0, 0, b"5\n6\n"))
    write("csv", "header-only", csv_input(1, -1, 1, b"a,b\n"))


# --- Models: the layout of include/backprop/io.h (fuzz_model.c loads the file as it is, with
# bp_model_load_state and bp_model_load). Format 1: no sections; format 2: n_sections, then tagged
# sections (STDZ, OPTM, TRST), then the CRC.
F32, F64 = 1, 2
SOFTMAX_XENT, SIGMOID_BCE, MSE = 1, 2, 3
IDENTITY, RELU, LEAKY_RELU, ELU = 0, 3, 4, 5
SGD, MOMENTUM, NESTEROV, ADAM, ADAMW = 1, 2, 3, 4, 5
CONSTANT, STEP, COSINE = 0, 1, 2


def n_params_of(n_in, layers):
    implied, prev = 0, n_in
    for n_out, _, _ in layers:
        implied, prev = implied + n_out * (prev + 1), n_out
    return implied


def model(dtype, loss, n_in, layers, version=1, n_params=None, fix_crc=True, sections=None, n_sections=None,
          tail=b""):
    """layers: (n_out, act, alpha) each; parameters (k - 10) / 8, exact in float and double.
    sections (format 2): (tag, payload) each, written as tag, 8-byte length, payload; n_sections
    defaults to their count (format 2) and is left out when None for format 1. tail: bytes between
    the last section and the CRC."""
    implied = n_params_of(n_in, layers)
    body = b"BPMODEL\0" + struct.pack("<6I", version, 0x01020304, dtype, loss, n_in, len(layers))
    body += b"".join(struct.pack("<IId", n_out, act, alpha) for n_out, act, alpha in layers)
    body += struct.pack("<Q", implied if n_params is None else n_params)
    code = "<f" if dtype == F32 else "<d"
    body += b"".join(struct.pack(code, (k - 10) / 8) for k in range(implied if implied < 1000 else 0))
    if sections is not None or n_sections is not None:
        sections = sections or []
        body += struct.pack("<I", len(sections) if n_sections is None else n_sections)
        body += b"".join(tag + struct.pack("<Q", len(payload)) + payload for tag, payload in sections)
    body += tail
    crc = zlib.crc32(body) if fix_crc else zlib.crc32(body) ^ 1
    return body + struct.pack("<I", crc)


def stdz(means, stds):
    return b"STDZ", struct.pack("<%dd" % (2 * len(means)), *means, *stds)


def optm(dtype, n_params, kind, schedule=CONSTANT, lr=0.01, momentum=0.9, beta1=0.9, beta2=0.999, eps=1e-8,
         weight_decay=0.0, gamma=0.5, lr_min=0.0, step_size=1, t_max=1, steps=0, buffers=None):
    """buffers: how many moment buffers to write (default: as many as the kind keeps), each of
    n_params values (k - 5) / 16 of the dtype."""
    if buffers is None:
        buffers = {SGD: 0, MOMENTUM: 1, NESTEROV: 1, ADAM: 2, ADAMW: 2}.get(kind, 0)
    head = struct.pack("<II8d3Q", kind, schedule, lr, momentum, beta1, beta2, eps, weight_decay, gamma, lr_min,
                       step_size, t_max, steps)
    code = "<f" if dtype == F32 else "<d"
    moments = b"".join(struct.pack(code, (k - 5) / 16) for k in range(n_params))
    return b"OPTM", head + moments * buffers


def trst(epochs_done, rng):
    return b"TRST", struct.pack("<Q4Q", epochs_done, *rng)


def model_seeds():
    clear("model")
    # Format 1: what earlier versions wrote, still loaded.
    mlp = model(F32, SOFTMAX_XENT, 3, [(4, RELU, 0.0), (2, IDENTITY, 0.0)])
    write("model", "f32-softmax-mlp", mlp)
    write("model", "f64-bce-leaky", model(F64, SIGMOID_BCE, 2, [(3, LEAKY_RELU, 0.01), (1, IDENTITY, 0.0)]))
    write("model", "f64-mse-elu", model(F64, MSE, 1, [(1, ELU, 1.0)]))
    write("model", "bad-crc", model(F32, MSE, 2, [(2, IDENTITY, 0.0)], fix_crc=False))
    write("model", "truncated", mlp[:-10])
    write("model", "version-3", model(F32, MSE, 2, [(1, IDENTITY, 0.0)], version=3))
    write("model", "n-params-wrong", model(F32, MSE, 2, [(1, IDENTITY, 0.0)], n_params=4))
    write("model", "softmax-last-relu", model(F32, SOFTMAX_XENT, 2, [(2, RELU, 0.0)]))
    write("model", "too-many-params", model(F32, MSE, 0x7FFFFFFF, [(0x7FFFFFFF, IDENTITY, 0.0)]))

    # Format 2: the network 3-4-2 (26 parameters) with each section, all of them, and bad ones.
    layers = [(4, RELU, 0.0), (2, IDENTITY, 0.0)]
    npar = n_params_of(3, layers)

    def v2(dtype, sections=None, **kw):
        return model(dtype, SOFTMAX_XENT, 3, layers, version=2, sections=sections or [], **kw)

    s = stdz([0.5, -1.0, 2.0], [1.0, 0.0, 3.5])
    t = trst(2, [1, 2, 3, 0xFFFFFFFFFFFFFFFF])
    o_sgd = optm(F32, npar, SGD, steps=3)
    o_mom = optm(F32, npar, MOMENTUM, schedule=STEP, gamma=0.5, step_size=4, steps=10)
    o_nes = optm(F64, npar, NESTEROV, momentum=0.5, weight_decay=1e-4, steps=1)
    o_adam = optm(F32, npar, ADAM, schedule=COSINE, t_max=100, lr_min=1e-5, steps=7)
    o_adamw = optm(F64, npar, ADAMW, weight_decay=0.01, schedule=STEP, step_size=3, steps=12)
    write("model", "v2-plain", v2(F32))
    write("model", "v2-stdz", v2(F32, [s]))
    write("model", "v2-optm-sgd", v2(F32, [o_sgd]))
    write("model", "v2-optm-momentum-step", v2(F32, [o_mom]))
    write("model", "v2-optm-nesterov-f64", v2(F64, [o_nes]))
    write("model", "v2-optm-adam-cosine", v2(F32, [o_adam]))
    write("model", "v2-trst", v2(F32, [t]))
    write("model", "v2-stdz-trst", v2(F64, [s, t]))
    write("model", "v2-all-f64-adamw", v2(F64, [s, o_adamw, t]))
    write("model", "v2-all-reordered", v2(F32, [t, o_adam, s]))
    write("model", "v2-unknown-tag", v2(F32, [(b"XTRA", b"\0" * 8)]))
    write("model", "v2-duplicate-stdz", v2(F32, [s, s]))
    write("model", "v2-stdz-negative-std", v2(F32, [stdz([0.0, 0.0, 0.0], [1.0, -1.0, 1.0])]))
    write("model", "v2-stdz-nan-mean", v2(F32, [stdz([float("nan"), 0.0, 0.0], [1.0, 1.0, 1.0])]))
    write("model", "v2-stdz-wrong-length", v2(F32, [(b"STDZ", s[1][:-8])]))
    write("model", "v2-optm-kind-99", v2(F32, [optm(F32, npar, 99)]))
    write("model", "v2-optm-lr-nan", v2(F32, [optm(F32, npar, SGD, lr=float("nan"))]))
    write("model", "v2-optm-short-moments", v2(F32, [optm(F32, npar, ADAM, buffers=1)]))
    write("model", "v2-optm-steps-huge", v2(F32, [optm(F32, npar, SGD, steps=1 << 63)]))
    write("model", "v2-trst-wrong-length", v2(F32, [(b"TRST", t[1] + b"\0" * 8)]))
    write("model", "v2-n-sections-4", v2(F32, [s, o_sgd, t], n_sections=4))
    write("model", "v2-no-n-sections", model(F32, SOFTMAX_XENT, 3, layers, version=2))
    write("model", "v2-trailing-byte", v2(F32, [t], tail=b"\0"))
    long_trst = (b"TRST", t[1])
    past = v2(F32, [long_trst])
    at = len(past) - 4 - len(t[1]) - 8           # the TRST length field
    past = past[:at] + struct.pack("<Q", 1 << 40) + past[at + 8:-4]
    write("model", "v2-length-past-crc", past + struct.pack("<I", zlib.crc32(past)))
    write("model", "v1-with-sections", model(F32, SOFTMAX_XENT, 3, layers, version=1, sections=[s]))


if __name__ == "__main__":
    idx_seeds()
    csv_seeds()
    model_seeds()
