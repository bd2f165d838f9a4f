/* SPDX-License-Identifier: MIT */
/* act_info.c: facts about activations that do not depend on the precision. */
#include <math.h>
#include "core/internal.h"
#include "kernels/kernels_internal.h"

int bp_act_needs_z(bp_act act)
{
    return act == BP_ACT_GELU || act == BP_ACT_GELU_TANH;
}

const char *bp_act_name(bp_act act)
{
    static const char *const names[] = {"identity", "sigmoid", "tanh", "relu", "leaky_relu",
                                        "elu", "gelu", "gelu_tanh", "softplus", "softmax"};
    return (int)act >= (int)BP_ACT_IDENTITY && (int)act <= (int)BP_ACT_SOFTMAX ? names[act] : NULL;
}

bp_status bp__check_act(const char *fn, const char *prefix, bp_act act, double alpha)
{
    BP_REQUIRE(bp_act_name(act) != NULL, BP_ERR_ARG, "%sact (%d) is not a bp_act", prefix, (int)act);
    BP_REQUIRE(isfinite(alpha), BP_ERR_ARG, "%salpha is not finite", prefix);
    BP_REQUIRE(act != BP_ACT_LEAKY_RELU || alpha >= 0, BP_ERR_ARG,
               "%salpha (%g) < 0 for BP_ACT_LEAKY_RELU", prefix, alpha);
    BP_REQUIRE(act != BP_ACT_ELU || alpha > 0, BP_ERR_ARG, "%salpha (%g) <= 0 for BP_ACT_ELU", prefix, alpha);
    return BP_OK;
}
