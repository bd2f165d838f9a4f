/* SPDX-License-Identifier: MIT */
/* model_format.h: the model file's layout (backprop/io.h), shared by the save (model_save.c) and
 * the load (model_load.c): offsets, section tags and lengths, the optimizer's fields in file order,
 * little-endian bytes whatever the host, and the message of a failed system call. */
#ifndef BP_MODEL_FORMAT_H
#define BP_MODEL_FORMAT_H

#include <float.h>
#include <stddef.h>
#include <stdint.h>

#include "core/internal.h"

/* Parameters are written as their IEEE bits; the layout assumes binary32 and binary64. */
_Static_assert(sizeof(float) == 4 && FLT_MANT_DIG == 24, "float must be IEEE binary32");
_Static_assert(sizeof(double) == 8 && DBL_MANT_DIG == 53, "double must be IEEE binary64");

enum {
    OFF_MAGIC = 0,
    OFF_VERSION = 8,
    OFF_BOM = 12,
    OFF_DTYPE = 16,
    OFF_LOSS = 20,
    OFF_N_IN = 24,
    OFF_N_LAYERS = 28,
    OFF_LAYERS = 32,    /* also the size of the fixed header */
    LAYER_BYTES = 16,
    N_PARAMS_BYTES = 8,
    N_SECTIONS_BYTES = 4,
    SECTION_HEAD_BYTES = 12,   /* tag, length */
    OPTM_HEAD_BYTES = 96,      /* kind, schedule, 8 doubles, 3 counts */
    TRST_BYTES = 40,
    CRC_BYTES = 4,
    CHUNK = 8192        /* I/O buffer: a multiple of 8, so values never straddle two chunks */
};

/* The optional sections of version 2, in the order a save writes them. */
typedef enum model_section { SEC_STDZ, SEC_OPTM, SEC_TRST, N_SECTION_KINDS } model_section;
static const char model_section_tag[N_SECTION_KINDS][5] = {"STDZ", "OPTM", "TRST"};

/* The length of each section's payload: STDZ holds n_in means then n_in deviations (doubles);
 * OPTM its head, then k moment buffers (0, 1 or 2, by the optimizer's kind) of n_params values of
 * esize bytes; TRST is TRST_BYTES. */
static inline uint64_t stdz_bytes(uint64_t n_in)
{
    return 16 * n_in;
}

static inline uint64_t optm_bytes(uint64_t k, uint64_t n_params, uint64_t esize)
{
    return OPTM_HEAD_BYTES + k * n_params * esize;
}

/* The OPTM head: kind (offset 0) and schedule (offset 4), 4 bytes each; from OPTM_DOUBLES_AT the
 * OPTM_N_DOUBLES doubles of bp_optim_config *c, in the order OPTM_DOUBLES(c) points to them; from
 * OPTM_COUNTS_AT step_size, t_max and the step count, 8 bytes each. */
enum { OPTM_DOUBLES_AT = 8, OPTM_N_DOUBLES = 8, OPTM_COUNTS_AT = OPTM_DOUBLES_AT + 8 * OPTM_N_DOUBLES };
_Static_assert(OPTM_COUNTS_AT + 3 * 8 == OPTM_HEAD_BYTES, "the OPTM head's fields fill OPTM_HEAD_BYTES");
#define OPTM_DOUBLES(c)                                                                                              \
    {&(c)->lr, &(c)->momentum, &(c)->beta1, &(c)->beta2, &(c)->eps, &(c)->weight_decay, &(c)->gamma, &(c)->lr_min}

static const unsigned char model_magic[8] = {'B', 'P', 'M', 'O', 'D', 'E', 'L', '\0'};
#define MODEL_BOM UINT32_C(0x01020304)

/* Bytes of the header up to the parameters: fixed part, layer table, n_params. */
static inline size_t header_bytes(uint32_t n_layers)
{
    return (size_t)OFF_LAYERS + (size_t)n_layers * LAYER_BYTES + N_PARAMS_BYTES;
}

static inline void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* A system call of the save or the load failed with errno e during `step`. */
static inline bp_status io_fail(const char *fn, const char *path, const char *step, int e)
{
    char eb[128];
    return bp__fail(BP_ERR_IO, fn, "'%s': %s failed: %s", path, step, bp__sys_error(e, eb, sizeof eb));
}

#endif
