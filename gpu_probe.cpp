/*
 * gpu_probe.cpp — reading what probes say of the cards (gpu.h).
 */
#include "gpu.h"
