#!/usr/bin/env python3
"""make_corpus.py: writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

The seeds are committed; this script only documents how they were made and remakes them the same
way (deterministic: gzip with mtime 0). Python 3 standard library only. Run from anywhere:
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


# --- Models: the layout of include/backprop/io.h (fuzz_model.c loads the file as it is).
F32, F64 = 1, 2
SOFTMAX_XENT, SIGMOID_BCE, MSE = 1, 2, 3
IDENTITY, RELU, LEAKY_RELU, ELU = 0, 3, 4, 5


def model(dtype, loss, n_in, layers, version=1, n_params=None, fix_crc=True):
    """layers: (n_out, act, alpha) each; parameters (k - 10) / 8, exact in float and double."""
    implied, prev = 0, n_in
    for n_out, _, _ in layers:
        implied, prev = implied + n_out * (prev + 1), n_out
    body = b"BPMODEL\0" + struct.pack("<6I", version, 0x01020304, dtype, loss, n_in, len(layers))
    body += b"".join(struct.pack("<IId", n_out, act, alpha) for n_out, act, alpha in layers)
    body += struct.pack("<Q", implied if n_params is None else n_params)
    code = "<f" if dtype == F32 else "<d"
    body += b"".join(struct.pack(code, (k - 10) / 8) for k in range(implied if implied < 1000 else 0))
    crc = zlib.crc32(body) if fix_crc else zlib.crc32(body) ^ 1
    return body + struct.pack("<I", crc)


def model_seeds():
    mlp = model(F32, SOFTMAX_XENT, 3, [(4, RELU, 0.0), (2, IDENTITY, 0.0)])
    write("model", "f32-softmax-mlp", mlp)
    write("model", "f64-bce-leaky", model(F64, SIGMOID_BCE, 2, [(3, LEAKY_RELU, 0.01), (1, IDENTITY, 0.0)]))
    write("model", "f64-mse-elu", model(F64, MSE, 1, [(1, ELU, 1.0)]))
    write("model", "bad-crc", model(F32, MSE, 2, [(2, IDENTITY, 0.0)], fix_crc=False))
    write("model", "truncated", mlp[:-10])
    write("model", "version-2", model(F32, MSE, 2, [(1, IDENTITY, 0.0)], version=2))
    write("model", "n-params-wrong", model(F32, MSE, 2, [(1, IDENTITY, 0.0)], n_params=4))
    write("model", "softmax-last-relu", model(F32, SOFTMAX_XENT, 2, [(2, RELU, 0.0)]))
    write("model", "too-many-params", model(F32, MSE, 0x7FFFFFFF, [(0x7FFFFFFF, IDENTITY, 0.0)]))


if __name__ == "__main__":
    idx_seeds()
    csv_seeds()
    model_seeds()
