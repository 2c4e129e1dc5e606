// The AVX-512 level (AVX-512 F, DQ, VL; Skylake-SP, 2017, and later): 512-bit vectors,
// 16 float / 8 double lanes.
#if defined(__x86_64__)
#include <immintrin.h>
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma"))), apply_to = function)
#define LEVEL avx512
#define FL 16
#define DL 8
#define LOSSD_MASKED_LOADS 1
#include "softmax_rows.h"
#pragma clang attribute pop
#endif
