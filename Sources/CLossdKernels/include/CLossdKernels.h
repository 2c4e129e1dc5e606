#ifndef CLOSSD_KERNELS_H
#define CLOSSD_KERNELS_H
// Row kernels of the Two-Pass softmax algorithm (Dukhan & Ablavatski 2020;
// docs/ensembles.md §4), written with clang vector types so that the polynomial uses
// fused multiply-adds: Swift's SIMD.addingProduct compiles to one scalar FMA per lane.
// Pure functions on contiguous rows; LossdKernels wraps them with Swift types.
#include <stdint.h>

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

#endif
