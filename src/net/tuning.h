/* SPDX-License-Identifier: MIT */
/* tuning.h: every tuning threshold of the scheduler and its thread team, with the measurement
 * that set it. Scheduling reads only these and the shapes: never the backend, never the load.
 * Measured with OpenBLAS 0.3.21 (OPENBLAS_CORETYPE=Haswell) on the project's 2-core machine. */
#ifndef BP_NET_TUNING_H
#define BP_NET_TUNING_H

/* The fewest multiply-adds a chunk of a product must have before a step is cut into more than
 * one chunk. Below it, handing part of a product to another thread costs more than it saves
 * (a fork and join, a wake-up when the helper slept). `bench-train --batches 1,32 --precision s
 * --chunk-min M` on 784-512-512-10, step / the step's GEMMs on one BLAS thread:
 *   M = 2^16: batch 1 1.94 (its first layer cut in two), batch 32 0.84
 *   M = 2^18: batch 1 0.91 (nothing cut: the caller alone), batch 32 0.67
 *   M = 2^20: batch 1 0.93, batch 32 0.67 */
#define BP_CHUNK_MIN_MACS (1L << 18)

/* The fewest values an element-wise chunk (dZ, the loss, a gather, an optimizer update) must
 * have. A pass over 2^16 floats takes some 10-20 us, well above a fork and join; with 2^14,
 * logistic regression at batch 64 (its gather of 64 x 784 values cut in two) ran 1.10x slower
 * on two threads than on one (bench-contention, quiet), with 2^16 0.97x. */
#define BP_CHUNK_MIN_VALUES (1L << 16)

/* How long a thread of the team waits by spinning before it blocks: a helper for the next
 * step, the caller for a chunk a helper still computes. The steps of a pass follow each other
 * within microseconds, so a short spin catches them on an idle machine without a wake-up (a
 * futex wake-up costs tens of microseconds); on a machine whose cores are all busy (a host
 * code, MPI ranks), a waiter gives its core up after this long instead of spinning a
 * scheduler time slice away. With 20 us, bench-contention measured default / one thread 0.60
 * quiet and 0.76 under one busy loop per core for the 784-512-512-10 step at batch 256. */
#define BP_SPIN_NS 20000L

#endif
