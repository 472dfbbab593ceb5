/*
 * gpu.cpp — the GPU policy and allocator (gpu.h).
 */
#include "gpu.h"
