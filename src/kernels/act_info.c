/* act_info.c: facts about activations that do not depend on the precision. */
#include "backprop/kernels.h"

int bp_act_needs_z(bp_act act)
{
    return act == BP_ACT_GELU || act == BP_ACT_GELU_TANH;
}
