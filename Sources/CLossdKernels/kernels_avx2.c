// The AVX2 + FMA level (Haswell, 2013, and later): 256-bit vectors, fused multiply-adds.
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#define LEVEL avx2
#define FL 8
#define DL 4
#include "softmax_rows.h"
#pragma clang attribute pop
#endif
