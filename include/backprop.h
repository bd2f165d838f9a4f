/* SPDX-License-Identifier: MIT */
/** \file
 * backprop.h: the umbrella header of the backprop library: includes every header under backprop/. */
#ifndef BACKPROP_H
#define BACKPROP_H

#include "backprop/core.h"
#include "backprop/kernels.h"
#include "backprop/naive.h"
#include "backprop/net.h"
#include "backprop/optim.h"
#include "backprop/train.h"
#include "backprop/io.h"
#include "backprop/parallel.h"

#endif
