# SPDX-License-Identifier: MIT
"""compare_pytorch_worker.py: the child processes of bench/compare-pytorch.

Not meant to be run by hand; bench/compare-pytorch starts it in a fresh
process for every measurement and reads one JSON object from its stdout.

  python3 compare_pytorch_worker.py torch --layers 784-512-512-10 --batch 256 \
      --dtype float|double --threads one|default [--min-time SEC] [--min-repeats N]
      Times a PyTorch training step (zero_grad + forward + loss + backward +
      optimizer.step) of an MLP with ReLU hidden layers, softmax cross-entropy
      (mean) and plain SGD lr 0.01 on synthetic data; the median over repeats
      after a warm-up. --threads one calls torch.set_num_threads(1) (the caller
      sets OPENBLAS_NUM_THREADS); default leaves torch's threading alone.

  python3 compare_pytorch_worker.py plan --lib PATH --layers 784-512-512-10 \
      --batch 256 --dtype float|double
      Loads libbackprop through ctypes, creates and plans the same network, and
      prints bp_net_describe_plan's text with the parameter and arena bytes.
      Needs only the standard library.
"""

import argparse
import ctypes
import json
import math
import os
import re
import resource
import statistics
import sys
import time

LEARNING_RATE = 0.01
N_CLASSES = 10


def parse_layers(text):
    widths = [int(w) for w in text.split("-")]
    if len(widths) < 2 or min(widths) < 1:
        raise SystemExit("compare_pytorch_worker: bad --layers '%s'" % text)
    return widths


def mapped_blas_libraries():
    """Shared objects mapped into this process whose names say BLAS/LAPACK/OpenMP."""
    found = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 6 and re.search(r"blas|lapack|gomp|omp\.so|mkl", os.path.basename(parts[5])):
                    if parts[5] not in found:
                        found.append(parts[5])
    except OSError:
        pass
    return found


def openblas_runtime(libs):
    """openblas_get_config() and openblas_get_num_threads() of the OpenBLAS this
    process has loaded (dlopen of an already-mapped object returns it)."""
    for path in libs:
        if "blas" not in os.path.basename(path):
            continue
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_config.restype = ctypes.c_char_p
            return {"library": path,
                    "config": lib.openblas_get_config().decode(errors="replace"),
                    "threads": int(lib.openblas_get_num_threads())}
        except (OSError, AttributeError):
            continue
    return None


def run_torch(args):
    import torch
    import torch.nn as nn

    widths = parse_layers(args.layers)
    dtype = torch.float64 if args.dtype == "double" else torch.float32
    if args.threads == "one":
        torch.set_num_threads(1)

    torch.manual_seed(42)
    layers = []
    for i in range(len(widths) - 1):
        lin = nn.Linear(widths[i], widths[i + 1])
        # The same scheme as backprop's bench (He-uniform weights, zero biases);
        # the timing does not depend on it, the data flowing through does a little.
        nn.init.kaiming_uniform_(lin.weight, nonlinearity="relu")
        nn.init.zeros_(lin.bias)
        layers.append(lin)
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    if dtype == torch.float64:
        model = model.double()
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)

    gen = torch.Generator().manual_seed(0xDA7A + args.batch)
    x = torch.rand(args.batch, widths[0], generator=gen, dtype=dtype)
    y = torch.randint(0, N_CLASSES, (args.batch,), generator=gen)

    def step():
        # set_to_none=True: PyTorch 2's default and its cheaper form (no memset
        # of the gradients; backward writes them instead of adding to zeros).
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    clock = time.perf_counter
    loss_first = float(step().detach())
    for _ in range(args.warmup):
        step()
    t0 = clock()
    for _ in range(2):
        step()
    t_est = (clock() - t0) / 2
    reps = args.min_repeats
    if t_est > 0:
        reps = max(reps, int(math.ceil(args.min_time / t_est)))
    reps = min(reps, 200000)
    samples = []
    loss = None
    for _ in range(reps):
        t0 = clock()
        loss = step()
        samples.append(clock() - t0)
    median = statistics.median(samples)
    loss_last = float(loss.detach())

    libs = mapped_blas_libraries()
    config = torch.__config__.show()
    out = {
        "torch_version": torch.__version__,
        "python": sys.executable,
        "threads_setting": args.threads,
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                              "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
        "blas_build_info": [s.strip() for s in re.findall(r"(BLAS_INFO=[^,]*|LAPACK_INFO=[^,]*)", config)],
        "config_show": config,
        "mapped_libraries": libs,
        "openblas": openblas_runtime(libs),
        "layers": widths,
        "batch": args.batch,
        "dtype": args.dtype,
        "repeats": reps,
        "step_ms": median * 1e3,
        "step_min_ms": min(samples) * 1e3,
        "loss_first": loss_first,
        "loss_last": loss_last,
        "ok": math.isfinite(loss_first) and math.isfinite(loss_last),
        "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


class LayerSpec(ctypes.Structure):
    _fields_ = [("n_out", ctypes.c_int), ("act", ctypes.c_int), ("alpha", ctypes.c_double)]


BP_F32, BP_F64 = 1, 2
BP_ACT_IDENTITY, BP_ACT_RELU = 0, 3
BP_LOSS_SOFTMAX_XENT = 1


def run_plan(args):
    widths = parse_layers(args.layers)
    lib = ctypes.CDLL(args.lib)
    lib.bp_net_create.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                  ctypes.POINTER(LayerSpec), ctypes.c_int, ctypes.c_void_p]
    lib.bp_net_plan.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.bp_net_describe_plan.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                         ctypes.POINTER(ctypes.c_size_t)]
    lib.bp_net_destroy.argtypes = [ctypes.c_void_p]
    lib.bp_last_error.restype = ctypes.c_char_p
    lib.bp_version.restype = ctypes.c_char_p
    nl = len(widths) - 1
    specs = (LayerSpec * nl)()
    for i in range(nl):
        specs[i].n_out = widths[i + 1]
        specs[i].act = BP_ACT_IDENTITY if i == nl - 1 else BP_ACT_RELU
        specs[i].alpha = 0.0
    net = ctypes.c_void_p()
    dt = BP_F64 if args.dtype == "double" else BP_F32

    def check(st, what):
        if st != 0:
            raise SystemExit("compare_pytorch_worker: %s failed: %s" % (what, lib.bp_last_error().decode()))

    check(lib.bp_net_create(ctypes.byref(net), dt, widths[0], nl, specs, BP_LOSS_SOFTMAX_XENT, None),
          "bp_net_create")
    check(lib.bp_net_plan(net, args.batch), "bp_net_plan")
    need = ctypes.c_size_t(0)
    check(lib.bp_net_describe_plan(net, None, 0, ctypes.byref(need)), "bp_net_describe_plan")
    buf = ctypes.create_string_buffer(need.value + 1)
    check(lib.bp_net_describe_plan(net, buf, need.value + 1, None), "bp_net_describe_plan")
    lib.bp_net_destroy(net)
    text = buf.value.decode()
    m_params = re.search(r"(\d+) parameters \((\d+) bytes", text)
    m_arena = re.search(r"arena (\d+) bytes", text)
    if not m_params or not m_arena:
        raise SystemExit("compare_pytorch_worker: cannot read the plan description:\n" + text)
    json.dump({"backprop_version": lib.bp_version().decode(), "n_params": int(m_params.group(1)),
               "param_bytes": int(m_params.group(2)), "arena_bytes": int(m_arena.group(1)),
               "describe_plan": text}, sys.stdout)
    sys.stdout.write("\n")


def main():
    ap = argparse.ArgumentParser(prog="compare_pytorch_worker")
    sub = ap.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("torch")
    t.add_argument("--layers", required=True)
    t.add_argument("--batch", type=int, required=True)
    t.add_argument("--dtype", choices=("float", "double"), required=True)
    t.add_argument("--threads", choices=("one", "default"), required=True)
    t.add_argument("--min-time", type=float, default=0.25)
    t.add_argument("--min-repeats", type=int, default=5)
    t.add_argument("--warmup", type=int, default=3)
    p = sub.add_parser("plan")
    p.add_argument("--lib", required=True)
    p.add_argument("--layers", required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--dtype", choices=("float", "double"), required=True)
    args = ap.parse_args()
    if args.mode == "torch":
        run_torch(args)
    else:
        run_plan(args)


if __name__ == "__main__":
    main()
