#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""mpi-model.py: the paper model of data-parallel training on many nodes, from measured times.

Reads the per-layer backward times and parameter counts that bench-mpi measured (its --json
output; run it with -np 1 so that one rank has the machine's memory bus to itself), or takes
them as arguments, and prints for p = 2 .. 1024 nodes (one rank per node) the ring allreduce's
cost against the backward pass, with and without overlap, under

  strong scaling: the global batch (512) is fixed; a rank computes ceil(512 / p) rows, so its
                  backward pass shrinks with p (per-layer times at that many rows, interpolated
                  linearly between the measured local batches of the sweep);
  weak scaling:   512 rows per node; the backward pass stays the one measured at 512 rows.

The ring allreduce of a layer of B bytes over p nodes costs

  c(p) = 2 (p - 1) / p * B / bandwidth + 2 (p - 1) * latency

(reduce-scatter then allgather, each p - 1 steps of B / p bytes); --algorithm halving models
recursive halving and doubling (Rabenseifner) instead, 2 ceil(log2 p) latency terms for the same
bytes: what MPI libraries use for large messages on many nodes. One reduction per layer, in the
order the library issues them (the last layer first), one after another on the network.
Without overlap all start when the backward pass ends: exposed = sum of c. With overlap the
reduction of layer i starts when its gradient is final (ready(i): the backward of layers
L-1 .. i done) and hides behind the backward of the layers below it; layer 0's is never hidden.
exposed = when the last reduction ends - when the backward pass ends (>= 0).

Python 3, standard library only.
"""

import argparse
import json
import math
import sys


def parse_list(text, kind, what):
    try:
        vals = [kind(x) for x in text.split(",")]
    except ValueError:
        sys.exit(f"mpi-model.py: {what}: not a comma-separated list of numbers: {text!r}")
    if not vals or any(v < 0 for v in vals):
        sys.exit(f"mpi-model.py: {what}: needs non-negative numbers: {text!r}")
    return vals


class Measured:
    """Per-layer backward (and forward + loss) times at some local batches, in seconds."""

    def __init__(self, points, layer_params, bytes_per_value, global_batch, source):
        self.points = sorted(points)  # (rows, [layer 0 .. L-1 seconds], forward_loss seconds)
        self.layer_params = layer_params
        self.bytes_per_value = bytes_per_value
        self.global_batch = global_batch
        self.source = source

    def at(self, rows):
        """(per-layer backward seconds, forward + loss seconds) at `rows` rows per rank."""
        pts = self.points
        if rows <= pts[0][0]:
            return list(pts[0][1]), pts[0][2]   # below the least measured: its fixed costs
        if rows >= pts[-1][0]:
            s = rows / pts[-1][0]               # above the most measured: linear in rows
            return [t * s for t in pts[-1][1]], pts[-1][2] * s
        for (b0, l0, f0), (b1, l1, f1) in zip(pts, pts[1:]):
            if b0 <= rows <= b1:
                w = (rows - b0) / (b1 - b0) if b1 > b0 else 0.0
                return [a + w * (b - a) for a, b in zip(l0, l1)], f0 + w * (f1 - f0)
        raise AssertionError("unreachable")


def from_json(path, dtype):
    try:
        with (sys.stdin if path == "-" else open(path, encoding="utf-8")) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"mpi-model.py: cannot read {path}: {e}")
    results = doc.get("results") or []
    if dtype:
        results = [r for r in results if r.get("dtype") == dtype]
    if not results:
        sys.exit(f"mpi-model.py: {path}: no bench-mpi result" + (f" for dtype {dtype}" if dtype else ""))
    r = results[0]
    points = []
    for s in r.get("sweep") or [r["window"]]:
        points.append((s["batch"], [t / 1e3 for t in s["layer_backward_ms"]], s["forward_loss_ms"] / 1e3))
    ranks = doc.get("ranks", 1)
    source = (f"{path}: bench-mpi {r['dtype']}, {ranks} rank{'s' if ranks != 1 else ''} "
              f"(threads per rank {doc.get('threads_per_rank')}), {doc.get('date')}, {doc.get('blas')}")
    if ranks != 1:
        source += f"; note: measured with {ranks} ranks sharing this machine (use -np 1 for the model)"
    return Measured(points, doc["layer_params"], r["bytes_per_value"], doc["global_batch"], source)


def allreduce(p, nbytes, args):
    """Seconds of the allreduce of nbytes over p nodes: ring (or, --algorithm halving, halving-doubling)."""
    steps = p - 1 if args.algorithm == "ring" else math.ceil(math.log2(p)) if p > 1 else 0
    return 2.0 * (p - 1) / p * nbytes / (args.bandwidth * 1e9) + 2.0 * steps * (args.latency * 1e-6)


def model(m, p, rows, args):
    """One node count: backward, the reductions, what each mode exposes, and the step's compute."""
    seg, fwd = m.at(rows)
    seg = [t / args.compute_speedup for t in seg]
    fwd /= args.compute_speedup
    L = len(seg)
    backward = sum(seg)
    comm = [allreduce(p, n * m.bytes_per_value, args) for n in m.layer_params]
    total = sum(comm)
    # overlap: layer i is ready when the backward of layers L-1 .. i is done; FIFO on the network
    t_ready, end = 0.0, 0.0
    for i in range(L - 1, -1, -1):
        t_ready += seg[i]
        end = max(end, t_ready) + comm[i]
    exposed_overlap = max(0.0, end - backward)
    return {"p": p, "rows": rows, "backward": backward, "forward": fwd, "comm": total, "layers": comm,
            "exposed_serial": total, "exposed_overlap": exposed_overlap}


def first(rows, key):
    for r in rows:
        if key(r):
            return r["p"]
    return None


def table(m, args, scaling):
    B = m.global_batch
    all_rows = []
    for p in range(2, args.max_nodes + 1):
        rows = math.ceil(B / p) if scaling == "strong" else B
        all_rows.append(model(m, p, rows, args))
    one = model(m, 1, B, args)
    t1 = one["forward"] + one["backward"]
    show = []
    p = 2
    while p <= args.max_nodes:
        show.append(p)
        p *= 2
    cross = first(all_rows, lambda r: r["comm"] > r["backward"])
    cross_ovl = first(all_rows, lambda r: r["exposed_overlap"] > r["backward"])
    for c in (cross, cross_ovl):
        if c is not None and c not in show:
            show.append(c)
    show.sort()

    if scaling == "strong":
        print(f"\n## Strong scaling: global batch {B} fixed, ceil({B}/p) rows per node")
    else:
        print(f"\n## Weak scaling: {B} rows per node (global batch {B} x p)")
    print()
    last = "speed-up (ovl)" if scaling == "strong" else "efficiency (ovl)"
    print(f"| nodes | rows/node | backward ms | allreduce ms | comm / backward | exposed ms, no overlap "
          f"| exposed ms, overlap | step ms, no overlap | step ms, overlap | {last} |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in all_rows:
        if r["p"] not in show:
            continue
        step_s = r["forward"] + r["backward"] + r["exposed_serial"]
        step_o = r["forward"] + r["backward"] + r["exposed_overlap"]
        gain = t1 / step_o
        mark = " *" if r["p"] in (cross, cross_ovl) else ""
        print(f"| {r['p']}{mark} | {r['rows']} | {r['backward'] * 1e3:.3f} | {r['comm'] * 1e3:.3f} | "
              f"{r['comm'] / r['backward']:.2f} | {r['exposed_serial'] * 1e3:.3f} | {r['exposed_overlap'] * 1e3:.3f} | "
              f"{step_s * 1e3:.3f} | {step_o * 1e3:.3f} | {gain:.2f}{'x' if scaling == 'strong' else ''} |")
    print("\n(* the node counts where communication first exceeds the backward pass, without and with overlap)")
    if cross is None:
        print(f"communication (the sum of the layers' {args.algorithm} allreduces) stays below the backward pass up to "
              f"{args.max_nodes} nodes")
    else:
        r = all_rows[cross - 2]
        print(f"communication exceeds the backward pass from p = {cross} nodes on ({r['rows']} rows per node: "
              f"allreduce {r['comm'] * 1e3:.3f} ms > backward {r['backward'] * 1e3:.3f} ms)")
    if cross_ovl is None:
        print(f"with overlap, the exposed communication stays below the backward pass up to {args.max_nodes} nodes")
    else:
        print(f"with overlap, the exposed communication exceeds the backward pass from p = {cross_ovl} nodes on")
    return cross, cross_ovl


def arg_parser():
    ap = argparse.ArgumentParser(
        description="Ring-allreduce cost against the measured backward pass of bench-mpi's network "
                    "for 2 .. 1024 nodes, strong and weak scaling, with and without overlap.",
        epilog="e.g.  mpiexec --allow-run-as-root -np 1 build/bench/bench-mpi --json > mpi.json && "
               "python3 build/bench/mpi-model.py mpi.json")
    ap.add_argument("json", nargs="?", help="bench-mpi --json output ('-': stdin)")
    ap.add_argument("--dtype", help="the result to use: float or double (default: the first in the file)")
    ap.add_argument("--layer-params", help="without JSON: parameters per layer, layer 0 first, e.g. "
                                           "401920,262656,5130")
    ap.add_argument("--layer-ms", help="without JSON: backward ms per layer at --rows rows, layer 0 first "
                                       "(scaled linearly in rows)")
    ap.add_argument("--forward-ms", type=float, default=0.0,
                    help="without JSON: forward + loss ms at --rows rows (default 0)")
    ap.add_argument("--rows", type=int, default=512, help="without JSON: the rows of --layer-ms (default 512)")
    ap.add_argument("--global-batch", type=int, default=None, help="the global batch (default: the JSON's, or 512)")
    ap.add_argument("--bytes-per-value", type=int, default=None, help="4 for float, 8 for double (default: the "
                                                                      "JSON's, or 4)")
    ap.add_argument("--bandwidth", type=float, default=12.5, help="GB/s per link (default 12.5: 100 Gb/s)")
    ap.add_argument("--latency", type=float, default=2.0, help="microseconds per message step (default 2)")
    ap.add_argument("--max-nodes", type=int, default=1024, help="the most nodes (default 1024)")
    ap.add_argument("--algorithm", choices=["ring", "halving"], default="ring",
                    help="ring (default): 2(p-1) latency terms; halving: recursive halving-doubling, "
                         "2 ceil(log2 p) latency terms")
    ap.add_argument("--compute-speedup", type=float, default=1.0,
                    help="a node computes this many times faster than the measured rank (default 1: the "
                         "measured times, one rank's threads)")
    return ap


def measured(ap, args):
    """The measured times: from bench-mpi's JSON, or from the arguments."""
    if args.json:
        m = from_json(args.json, args.dtype)
        if args.global_batch:
            m.global_batch = args.global_batch
        if args.bytes_per_value:
            m.bytes_per_value = args.bytes_per_value
        return m
    if args.layer_params and args.layer_ms:
        params = parse_list(args.layer_params, int, "--layer-params")
        ms = parse_list(args.layer_ms, float, "--layer-ms")
        if len(params) != len(ms):
            ap.error("--layer-params and --layer-ms need as many values")
        if args.rows < 1:
            ap.error("--rows >= 1")
        # linear in rows: two points, 1 row and --rows rows
        pts = [(args.rows, [t / 1e3 for t in ms], args.forward_ms / 1e3)]
        if args.rows > 1:
            pts.append((1, [t / 1e3 / args.rows for t in ms], args.forward_ms / 1e3 / args.rows))
        return Measured(pts, params, args.bytes_per_value or 4, args.global_batch or 512,
                        f"arguments: {ms} ms per layer at {args.rows} rows, linear in rows")
    ap.error("give bench-mpi's JSON output, or --layer-params and --layer-ms")


def window_table(m, args):
    """The model's inputs, then the overlap window per layer at the global batch's rows."""
    n = sum(m.layer_params)
    print(f"# data from {m.source}")
    print(f"# network: {len(m.layer_params)} layers, parameters {m.layer_params} = {n}; "
          f"{m.bytes_per_value} bytes a value: {n * m.bytes_per_value} bytes reduced per step")
    lat = "2(p-1)" if args.algorithm == "ring" else "2 ceil(log2 p)"
    print(f"# {args.algorithm} allreduce per layer: 2(p-1)/p x bytes / {args.bandwidth:g} GB/s + {lat} x {args.latency:g} us; "
          f"layers reduced one after another; compute speed-up over the measured rank: {args.compute_speedup:g}")
    print("# backward: the per-layer backward times measured (bench-mpi's reducer timestamps); step = forward + "
          "loss + backward + exposed communication (the optimizer update is left out)")
    seg, _ = m.at(m.global_batch)
    ready = 0.0
    print(f"\n## The overlap window at {m.global_batch} rows per node (weak scaling; strong scaling at p = 1)\n")
    print(f"| layer | params | bytes | backward ms | ready at ms | window ms (backward below) | its allreduce ms at "
          f"p = 2 / {args.max_nodes} |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    L = len(seg)
    total_bwd = sum(seg)
    for i in range(L - 1, -1, -1):
        ready += seg[i]
        b = m.layer_params[i] * m.bytes_per_value
        c2 = allreduce(2, b, args)
        cmax = allreduce(args.max_nodes, b, args)
        print(f"| {i} | {m.layer_params[i]} | {b} | {seg[i] / args.compute_speedup * 1e3:.3f} | "
              f"{ready / args.compute_speedup * 1e3:.3f} | {(total_bwd - ready) / args.compute_speedup * 1e3:.3f} | "
              f"{c2 * 1e3:.3f} / {cmax * 1e3:.3f} |")


def main():
    ap = arg_parser()
    args = ap.parse_args()
    if args.max_nodes < 2 or args.bandwidth <= 0 or args.latency < 0 or args.compute_speedup <= 0:
        ap.error("--max-nodes >= 2, --bandwidth > 0, --latency >= 0, --compute-speedup > 0")
    m = measured(ap, args)
    window_table(m, args)
    results = {}
    for scaling in ("strong", "weak"):
        results[scaling] = table(m, args, scaling)
    print("\n# summary: communication > backward from p =",
          ", ".join(f"{s}: {c if c is not None else 'beyond ' + str(args.max_nodes)}"
                    for s, (c, _) in results.items()),
          f"({args.algorithm}, {args.bandwidth:g} GB/s, latency {args.latency:g} us)")


if __name__ == "__main__":
    main()
