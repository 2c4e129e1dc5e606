#ifndef CLOSSD_KERNELS_H
#define CLOSSD_KERNELS_H
// Row kernels of the Two-Pass softmax algorithm (Dukhan & Ablavatski 2020;
// docs/ensembles.md §4), written with clang vector types so that the polynomial uses
// fused multiply-adds: Swift's SIMD.addingProduct compiles to one scalar FMA per lane.
// Pure functions on contiguous rows; LossdKernels wraps them with Swift types.
//
// One binary runs on every CPU of its architecture: the kernels are compiled for each
// instruction-set level (x86-64: SSE2, AVX2+FMA, AVX-512; elsewhere one level) and the
// best one the CPU supports is chosen when the library loads (LOSSD_SIMD=sse2|avx2|avx512
// picks a lower one, e.g. to test it).
#include <stdint.h>

#if defined(__x86_64__)
enum { LOSSD_LEVEL_SSE2 = 0, LOSSD_LEVEL_AVX2 = 1, LOSSD_LEVEL_AVX512 = 2, LOSSD_LEVEL_COUNT = 3 };
#define LOSSD_LEVEL_BASELINE LOSSD_LEVEL_SSE2
#else
enum { LOSSD_LEVEL_COUNT = 1 };
#define LOSSD_LEVEL_BASELINE 0
#endif

/// The level the kernels run at now, the best the CPU supports, and whether LOSSD_SIMD
/// chose the current one.
int lossd_kernel_level(void);
int lossd_kernel_best_level(void);
int lossd_kernel_level_from_environment(void);
/// "sse2", "avx2", "avx512" (x86-64), "neon" (aarch64); "unknown" out of range.
const char *lossd_kernel_level_name(int level);
/// Benchmarks and tests only (the service uses the two-pass kernels below, at the chosen
/// level): the softmax of a row at an explicit level, by the two-pass algorithm (three_pass 0) or the three-pass one with
/// reloading (three_pass 1). Returns -1 for an unsupported level or n < 1.
int lossd_bench_softmax_f32(int level, int three_pass, const float *x, int64_t n, float *y);
int lossd_bench_softmax_f64(int level, int three_pass, const double *x, int64_t n, double *y);

/// Pass 1 on a float32 row: sum(exp(x)) = *v * 2^*e, in one read, with 8 lanes x 2
/// accumulators. Returns 0, or -1 when some |x| >= 2.9e6 (outside the float32 reduction's
/// exact range: use the float64 kernel). Requires n >= 1 and finite x.
int lossd_extsum_f32(const float *x, int64_t n, float *v, float *e);

/// Pass 1 on a float64 row: sum(exp(x)) = *v * 2^*e, and *max = max(x) (so that callers
/// can form log-sum-exp minus the max without cancellation). Returns 0, or -1 when some
/// |x| >= 1e15 (use a max-shifted scalar sum). Requires n >= 1 and finite x.
int lossd_extsum_f64(const double *x, int64_t n, double *v, double *e, double *max);

/// Pass 2 on a float64 row: y[i] = exp(x[i] - shift), for shift >= max(x) (for instance
/// the row's log-sum-exp, giving the softmax). Terms below 2^-1022 become 0.
void lossd_exp_shifted_f64(const double *x, int64_t n, double shift, double *y);

/// One pass on a float64 row: y[i] = exp(x[i] - shift) and the sum of the y, for
/// shift >= max(x) (with shift = max(x) the sum is in [1, n], and y / sum is the softmax
/// from one exponential an element). Terms below 2^-1022 become 0.
double lossd_exp_shifted_sum_f64(const double *x, int64_t n, double shift, double *y);

/// max(x) of a float64 row (-inf for n = 0); x finite.
double lossd_max_f64(const double *x, int64_t n);

/// sum_i sigma(alpha (x[i] + t)) of a float64 row, the logistic sigmoid from one exponential
/// of -|v| (no overflow for any finite argument); with slope non-null, *slope =
/// sum_i sigma'(alpha (x[i] + t)) = sum_i sigma(v) sigma(-v) (without the factor alpha).
double lossd_sigmoid_sum_f64(const double *x, int64_t n, double alpha, double t, double *slope);

/// y[i] = log1p(e[i]) for e[i] in [0, 1] (at most two ulps from libm's in the tests; the losses' log1p(exp(-|x|))).
void lossd_log1p_unit_f64(const double *e, int64_t n, double *y);

/// log_softplus[i] = log softplus(x[i]) and sigmoid_ratio[i] = sigma(x[i]) / softplus(x[i])
/// (ldr_kl's softplus_mean score transform), for finite x; neither overflows nor underflows
/// to -inf (below x = -20 the logarithm comes from a series).
void lossd_log_softplus_f64(const double *x, int64_t n, double *log_softplus, double *sigmoid_ratio);

/// One row of sigmoid cross-entropy with logits (BCEWithLogits): elements[j] =
/// w[j] (q[j] t[j] softplus(-x[j]) + (1 - t[j]) softplus(x[j])), and with grad non-null
/// grad[j] = w[j] ((1 - t[j]) sigma(x[j]) - q[j] t[j] sigma(-x[j])); returns the elements' sum.
/// x finite, t in [0, 1].
double lossd_bce_row_f64(
    const double *x, const double *t, const double *w, const double *q, int64_t n, double *elements, double *grad);

#endif
