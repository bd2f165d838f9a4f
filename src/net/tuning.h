/* tuning.h: every tuning threshold of the scheduler and its thread team, with the measurement
 * that set it. Scheduling reads only these and the shapes: never the backend, never the load.
 * Measured with OpenBLAS 0.3.21 (OPENBLAS_CORETYPE=Haswell) on the project's 2-core machine. */
#ifndef BP_NET_TUNING_H
#define BP_NET_TUNING_H

/* The fewest multiply-adds a chunk of a product must have before a step is cut into more
 * than one chunk. Below it, handing half of a product to another thread costs more than it
 * saves: the fork and join of a step cost about 2 us with a spinning helper, the time of some
 * 10^5 multiply-adds on one core. bench-train, 784-512-512-10 float: at 2^18 the batch-1 step
 * runs on the caller alone (as fast as one thread) while batch 32 is cut (0.76 of the
 * one-thread step); at 2^16 batch 1 took 1.2x longer than on one thread. */
#define BP_CHUNK_MIN_MACS (1L << 18)

/* The fewest values an element-wise chunk (dZ, the loss, a gather, an optimizer update) must
 * have. A pass over 2^16 floats takes some 10-20 us, well above a fork and join; with 2^14,
 * logistic regression at batch 64 (its gather of 64 x 784 values cut in two) ran 1.10x slower
 * on two threads than on one (bench-contention, quiet), with 2^16 0.97x. */
#define BP_CHUNK_MIN_VALUES (1L << 16)

/* How long a thread of the team waits by spinning before it blocks: a helper for the next
 * step, the caller for a chunk a helper still computes. Steps of a pass follow each other
 * within microseconds, so a short spin catches them on an idle machine; on a machine whose
 * cores are all busy (a host code, MPI ranks), a waiter gives its core up after this long
 * instead of spinning a scheduler time slice away. 784-512-512-10 at batch 256 was as fast
 * with 20 us as with 200 us; under two busy loops 20 us kept the step within 1.1x of one
 * thread where OpenBLAS's own spinning threads took 20x. */
#define BP_SPIN_NS 20000L

#endif
