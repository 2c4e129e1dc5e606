// The Two-Pass softmax row kernels (Dukhan & Ablavatski 2020, "The Two-Pass Softmax
// Algorithm"; docs/ensembles.md §4), written once for every instruction set. A level file
// (kernels_sse2.c, kernels_avx2.c, kernels_avx512.c) defines LEVEL (the name suffix), FL and
// DL (float and double lanes per vector), applies its target attribute and includes this
// file; dispatch.c picks one level at start-up. Not a public header.
#include <math.h>
#include <stdint.h>
#include <string.h>

// Contract a*b+c into a fused multiply-add where the level has one (AVX2+FMA, AVX-512).
// The reductions below are written so that contraction only improves accuracy.
#pragma clang fp contract(fast)
// The vector helpers are static inline and always inlined: their calling convention never
// crosses a boundary, so the wide-vector ABI warning of the SSE2 level does not apply.
#pragma clang diagnostic ignored "-Wpsabi"

#define GLUE2(a, b) a##_##b
#define GLUE(a, b) GLUE2(a, b)
#define NAME(base) GLUE(base, LEVEL)

typedef float vf __attribute__((ext_vector_type(FL)));
typedef int32_t vi __attribute__((ext_vector_type(FL)));
typedef double vd __attribute__((ext_vector_type(DL)));
typedef int64_t vl __attribute__((ext_vector_type(DL)));

#define BITCAST(to_type, value) __builtin_bit_cast(to_type, value)

static inline __attribute__((always_inline)) vf load_vf(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) vd load_vd(const double *p) {
    vd v;
    memcpy(&v, p, sizeof v);
    return v;
}

// A row's last, partial vector. A variable-length memcpy into a vector is a library call
// (spilling every live vector around it) followed by a wide load that misses store
// forwarding: a third of lossd_extsum_f64's time on rows of 10 classes. These load lane by
// lane, or with a masked load where the level has one, and never touch p[count] or beyond.
#if defined(LOSSD_MASKED_LOADS)
static inline __attribute__((always_inline)) vd load_partial_vd(const double *p, int64_t count) {
    return BITCAST(vd, _mm512_maskz_loadu_pd((__mmask8)((1u << count) - 1u), p));
}
static inline __attribute__((always_inline)) vf load_partial_vf(const float *p, int64_t count) {
    return BITCAST(vf, _mm512_maskz_loadu_ps((__mmask16)((1u << count) - 1u), p));
}
static inline __attribute__((always_inline)) void store_partial_vd(double *p, vd v, int64_t count) {
    _mm512_mask_storeu_pd(p, (__mmask8)((1u << count) - 1u), BITCAST(__m512d, v));
}
#else
static inline __attribute__((always_inline)) vd load_partial_vd(const double *p, int64_t count) {
    vd v = 0;
    for (int k = 0; k < DL; k++) if (k < count) v[k] = p[k];
    return v;
}
static inline __attribute__((always_inline)) vf load_partial_vf(const float *p, int64_t count) {
    vf v = 0;
    for (int k = 0; k < FL; k++) if (k < count) v[k] = p[k];
    return v;
}
static inline __attribute__((always_inline)) void store_partial_vd(double *p, vd v, int64_t count) {
    for (int k = 0; k < DL; k++) if (k < count) p[k] = v[k];
}
#endif

/// 0, 1, ..., lanes - 1 (folded to a constant).
static inline __attribute__((always_inline)) vi iota_vi(void) {
    vi v;
    for (int k = 0; k < FL; k++) v[k] = k;
    return v;
}

static inline __attribute__((always_inline)) vl iota_vl(void) {
    vl v;
    for (int k = 0; k < DL; k++) v[k] = k;
    return v;
}

/// The lanes' sum, pairwise (the same tree for every input of one level).
static inline __attribute__((always_inline)) double sum_vd(vd v) {
    double lanes[DL];
    memcpy(lanes, &v, sizeof lanes);
    for (int width = DL / 2; width >= 1; width /= 2)
        for (int k = 0; k < width; k++) lanes[k] = lanes[k] + lanes[k + width];
    return lanes[0];
}

// ---- float32 (XNNPACK's constants) ----

// exp(x) = p * 2^e: e = round(x log2 e) as an integer-valued float, p in [1/sqrt2, sqrt2].
static inline __attribute__((always_inline)) vf ext_exp_f32(vf x, vf *e_out) {
    const vf magic = 0x1.8p23f;
    vf e = (x * 0x1.715476p+0f + magic) - magic;
    vf t = x - e * 0x1.62E43p-1f;
    t = t - e * -0x1.05C61p-29f;
    vf p = t * 0x1.0F9F9Cp-7f + 0x1.573A1Ap-5f;
    p = p * t + 0x1.555A80p-3f;
    p = p * t + 0x1.FFFDC6p-2f;
    p = p * t + 0x1.FFFFF6p-1f;
    p = p * t + 1.0f;
    *e_out = e;
    return p;
}

// 2^d for integer-valued d <= 0; below -127 the result is +0 (the term underflows).
static inline __attribute__((always_inline)) vf exp2_f32(vf d) {
    d = d < -127.0f ? (vf)-127.0f : d;
    vi bits = BITCAST(vi, d + 0x1.8000FEp23f) << 23;  // magic bias holds d + 127
    return BITCAST(vf, bits);
}

int NAME(lossd_extsum_f32)(const float *x, int64_t n, float *v_out, float *e_out) {
    const vf limit = 2.9e6f;
    vf v0 = 0, v1 = 0, E0 = -INFINITY, E1 = -INFINITY;
    vi bad = 0;
    int64_t i = 0;
    for (; i + 2 * FL <= n; i += 2 * FL) {
        vf a = load_vf(x + i), b = load_vf(x + i + FL);
        bad |= (a > limit) | (a < -limit) | (b > limit) | (b < -limit);
        vf ea, eb;
        vf pa = ext_exp_f32(a, &ea), pb = ext_exp_f32(b, &eb);
        vf na = ea > E0 ? ea : E0, nb = eb > E1 ? eb : E1;
        v0 = v0 * exp2_f32(E0 - na) + pa * exp2_f32(ea - na);
        v1 = v1 * exp2_f32(E1 - nb) + pb * exp2_f32(eb - nb);
        E0 = na;
        E1 = nb;
    }
    for (; i < n; i += FL) {
        // Partial vector: missing lanes add p = 0 at the lane's current exponent.
        int64_t count = n - i < FL ? n - i : FL;
        vf a = load_partial_vf(x + i, count);
        vi present = iota_vi() < (int32_t)count;
        bad |= present & ((a > limit) | (a < -limit));
        vf ea;
        vf pa = ext_exp_f32(a, &ea);
        pa = present ? pa : (vf)0.0f;
        ea = present ? ea : E0;
        vf na = ea > E0 ? ea : E0;
        v0 = v0 * exp2_f32(E0 - na) + pa * exp2_f32(ea - na);
        E0 = na;
    }
    vf E = E1 > E0 ? E1 : E0;
    vf v = v0 * exp2_f32(E0 - E) + v1 * exp2_f32(E1 - E);
    float top = -INFINITY;
    for (int k = 0; k < FL; k++) top = E[k] > top ? E[k] : top;
    vf lanes = v * exp2_f32(E - top);
    float total = 0;
    for (int k = 0; k < FL; k++) total += lanes[k];
    *v_out = total;
    *e_out = top;
    // One reduction, not a lane loop: reading lanes back from a spilled vector stalls on
    // store forwarding every iteration (a quarter of the kernel's time on rows of 10).
    if (__builtin_reduce_or(bad) != 0) return -1;
    return 0;
}

// ---- float64 (fdlibm's ln 2 split, Taylor polynomial of degree 13) ----

static inline __attribute__((always_inline)) vd ext_exp_f64(vd x, vd *e_out) {
    const vd magic = 0x1.8p52;
    vd e = (x * 1.44269504088896338700e+00 + magic) - magic;
    vd t = x - e * 6.93147180369123816490e-01;
    t = t - e * 1.90821492927058770002e-10;
    vd p = t * (1.0 / 6227020800.0) + (1.0 / 479001600.0);
    p = p * t + (1.0 / 39916800.0);
    p = p * t + (1.0 / 3628800.0);
    p = p * t + (1.0 / 362880.0);
    p = p * t + (1.0 / 40320.0);
    p = p * t + (1.0 / 5040.0);
    p = p * t + (1.0 / 720.0);
    p = p * t + (1.0 / 120.0);
    p = p * t + (1.0 / 24.0);
    p = p * t + (1.0 / 6.0);
    p = p * t + 0.5;
    p = p * t + 1.0;
    p = p * t + 1.0;
    *e_out = e;
    return p;
}

static inline __attribute__((always_inline)) vd exp2_f64(vd d) {
    d = d < -1023.0 ? (vd)-1023.0 : d;
    vl bits = BITCAST(vl, d + (0x1.8p52 + 1023.0)) << 52;
    return BITCAST(vd, bits);
}

/// exp(z) for z <= 0 (0 for z below -746, where it underflows).
static inline __attribute__((always_inline)) vd exp_nonpositive_vd(vd z) {
    z = z < -746.0 ? (vd)-746.0 : z;
    vd e;
    vd p = ext_exp_f64(z, &e);
    return p * exp2_f64(e);
}

int NAME(lossd_extsum_f64)(const double *x, int64_t n, double *v_out, double *e_out, double *max_out) {
    const vd limit = 1e15;
    vd v0 = 0, v1 = 0, E0 = -INFINITY, E1 = -INFINITY, M = -INFINITY;
    vl bad = 0;
    int64_t i = 0;
    for (; i + 2 * DL <= n; i += 2 * DL) {
        vd a = load_vd(x + i), b = load_vd(x + i + DL);
        bad |= (a > limit) | (a < -limit) | (b > limit) | (b < -limit);
        M = a > M ? a : M;
        M = b > M ? b : M;
        vd ea, eb;
        vd pa = ext_exp_f64(a, &ea), pb = ext_exp_f64(b, &eb);
        vd na = ea > E0 ? ea : E0, nb = eb > E1 ? eb : E1;
        v0 = v0 * exp2_f64(E0 - na) + pa * exp2_f64(ea - na);
        v1 = v1 * exp2_f64(E1 - nb) + pb * exp2_f64(eb - nb);
        E0 = na;
        E1 = nb;
    }
    for (; i < n; i += DL) {
        int64_t count = n - i < DL ? n - i : DL;
        vd a = load_partial_vd(x + i, count);
        vl present = iota_vl() < (int64_t)count;
        bad |= present & ((a > limit) | (a < -limit));
        M = (present & (a > M)) ? a : M;
        vd ea;
        vd pa = ext_exp_f64(a, &ea);
        pa = present ? pa : (vd)0.0;
        ea = present ? ea : E0;
        vd na = ea > E0 ? ea : E0;
        v0 = v0 * exp2_f64(E0 - na) + pa * exp2_f64(ea - na);
        E0 = na;
    }
    vd E = E1 > E0 ? E1 : E0;
    vd v = v0 * exp2_f64(E0 - E) + v1 * exp2_f64(E1 - E);
    double top = -INFINITY;
    for (int k = 0; k < DL; k++) top = E[k] > top ? E[k] : top;
    vd lanes = v * exp2_f64(E - top);
    *v_out = sum_vd(lanes);
    *e_out = top;
    double m = -INFINITY;
    for (int k = 0; k < DL; k++) m = M[k] > m ? M[k] : m;
    *max_out = m;
    if (__builtin_reduce_or(bad) != 0) return -1;  // see lossd_extsum_f32
    return 0;
}

void NAME(lossd_exp_shifted_f64)(const double *x, int64_t n, double shift, double *y) {
    int64_t i = 0;
    for (; i + DL <= n; i += DL) {
        vd e;
        vd z = load_vd(x + i) - shift;
        z = z < -746.0 ? (vd)-746.0 : z;  // exp underflows to 0 below; keeps e in range
        vd p = ext_exp_f64(z, &e);
        vd out = p * exp2_f64(e);
        memcpy(y + i, &out, sizeof out);
    }
    for (; i < n; i++) y[i] = exp(x[i] - shift);
}

double NAME(lossd_exp_shifted_sum_f64)(const double *x, int64_t n, double shift, double *y) {
    vd s0 = 0, s1 = 0;
    int64_t i = 0;
    for (; i + 2 * DL <= n; i += 2 * DL) {
        vd ea, eb;
        vd a = load_vd(x + i) - shift, b = load_vd(x + i + DL) - shift;
        a = a < -746.0 ? (vd)-746.0 : a;
        b = b < -746.0 ? (vd)-746.0 : b;
        vd pa = ext_exp_f64(a, &ea), pb = ext_exp_f64(b, &eb);
        vd oa = pa * exp2_f64(ea), ob = pb * exp2_f64(eb);
        memcpy(y + i, &oa, sizeof oa);
        memcpy(y + i + DL, &ob, sizeof ob);
        s0 += oa;
        s1 += ob;
    }
    vd lanes = s0 + s1;
    double sum = sum_vd(lanes);
    for (; i < n; i++) {
        y[i] = exp(x[i] - shift);
        sum += y[i];
    }
    return sum;
}

double NAME(lossd_max_f64)(const double *x, int64_t n) {
    vd m0 = -INFINITY, m1 = -INFINITY;
    int64_t i = 0;
    for (; i + 2 * DL <= n; i += 2 * DL) {
        vd a = load_vd(x + i), b = load_vd(x + i + DL);
        m0 = a > m0 ? a : m0;
        m1 = b > m1 ? b : m1;
    }
    vd m = m1 > m0 ? m1 : m0;
    double top = -INFINITY;
    for (int k = 0; k < DL; k++) top = m[k] > top ? m[k] : top;
    for (; i < n; i++) top = x[i] > top ? x[i] : top;
    return top;
}

// ---- Sums of logistic sigmoids (soft top-k's threshold) ----
//
// sigma(v) = 1/(1 + e^-v) from one exponential of u = -|v| <= 0, which cannot overflow:
// with d = 1/(1 + e^u), sigma(v) = d for v >= 0 and e^u d for v < 0, and
// sigma'(v) = sigma(v) sigma(-v) = e^u d^2 (no cancellation in the tails).

static inline __attribute__((always_inline)) vd sigmoid_parts_vd(vd v, vd *derivative) {
    vd eu = exp_nonpositive_vd(v < 0.0 ? v : -v);
    vd d = 1.0 / (1.0 + eu);
    *derivative = eu * d * d;
    return v < 0.0 ? eu * d : d;
}

double NAME(lossd_sigmoid_sum_f64)(const double *x, int64_t n, double alpha, double t, double *slope) {
    vd s0 = 0, s1 = 0, g0 = 0, g1 = 0;
    int64_t i = 0;
    for (; i + 2 * DL <= n; i += 2 * DL) {
        vd da, db;
        vd a = sigmoid_parts_vd(alpha * (load_vd(x + i) + t), &da);
        vd b = sigmoid_parts_vd(alpha * (load_vd(x + i + DL) + t), &db);
        s0 += a;
        s1 += b;
        g0 += da;
        g1 += db;
    }
    double sum = sum_vd(s0 + s1), derivatives = sum_vd(g0 + g1);
    for (; i < n; i++) {
        double v = alpha * (x[i] + t);
        double eu = exp(v < 0 ? v : -v);
        double d = 1.0 / (1.0 + eu);
        sum += v < 0 ? eu * d : d;
        derivatives += eu * d * d;
    }
    if (slope) *slope = derivatives;
    return sum;
}

// ---- log1p on [0, 1] and binary cross-entropy with logits ----
//
// log1p(e) for e in [0, 1] (e = exp(-|x|) in the losses): u = 1 + e rounded, u = 2^k m with
// m in [sqrt(1/2), sqrt(2)], log m = 2 atanh(s) with s = (m - 1)/(m + 1), |s| <= 0.1716, as
// an odd series in s to s^21 (the next term is below 2^-55 of the sum); log1p(e) =
// k ln 2 + log m + (e - (u - 1))/u, the last term restoring what rounding u lost
// (Goldberg, "What every computer scientist should know about floating-point arithmetic",
// 1991, Theorem 4). At most two ulps from libm's log1p in the tests.

/// log m for m in [sqrt(1/2), sqrt(2)]: 2 atanh(s) with s = (m - 1)/(m + 1), m - 1 exact.
static inline __attribute__((always_inline)) vd log_reduced_vd(vd m) {
    vd f = m - 1.0;  // exact (Sterbenz)
    vd s = f / (2.0 + f);
    vd z = s * s;
    // atanh(s)/s - 1 = z (1/3 + z (1/5 + ... + z/21)), by Horner from the innermost term.
    vd r = 1.0 / 21.0;
    for (int j = 9; j >= 1; j--) r = r * z + 1.0 / (2 * j + 1);
    return 2.0 * s + 2.0 * s * (z * r);
}

/// k ln 2 + tail, with ln 2 split (fdlibm's ln2_hi, ln2_lo) so that k ln2_hi is exact.
static inline __attribute__((always_inline)) vd add_k_ln2_vd(vd k, vd tail) {
    return k * 6.93147180369123816490e-01 + (tail + k * 1.90821492927058770002e-10);
}

static inline __attribute__((always_inline)) vd log1p_unit_vd(vd e) {
    vd u = 1.0 + e;
    vl upper = u > 1.4142135623730951;
    vd m = upper ? u * 0.5 : u;
    vd k = upper ? (vd)1.0 : (vd)0.0;
    vd correction = (e - (u - 1.0)) / u;
    return add_k_ln2_vd(k, log_reduced_vd(m) + correction);
}

/// log x for positive, normal, finite x: x = 2^k m with m in [sqrt(1/2), sqrt(2)] read off
/// the bits (the exponent field becomes a double through the 2^52 trick, no integer
/// conversion instruction needed), then log_reduced_vd.
static inline __attribute__((always_inline)) vd log_normal_vd(vd x) {
    vl bits = BITCAST(vl, x);
    vd m = BITCAST(vd, (bits & 0x000FFFFFFFFFFFFFLL) | 0x3FF0000000000000LL);  // [1, 2)
    vd biased = BITCAST(vd, (bits >> 52) | 0x4330000000000000LL) - 0x1p52;   // exponent field
    vl upper = m > 1.4142135623730951;
    m = upper ? m * 0.5 : m;
    vd k = biased - 1023.0 + (upper ? (vd)1.0 : (vd)0.0);
    return add_k_ln2_vd(k, log_reduced_vd(m));
}

/// The shared start of softplus(+-x) and sigma(+-x): e = exp(-|x|) in [0, 1] (into *e_out)
/// and log1p(e), so that softplus(+-x) = max(+-x, 0) + log1p(e) neither overflows nor cancels.
static inline __attribute__((always_inline)) vd log1p_exp_neg_abs_vd(vd x, vd *e_out) {
    vd e = exp_nonpositive_vd(x < 0.0 ? x : -x);
    *e_out = e;
    return log1p_unit_vd(e);
}

void NAME(lossd_log1p_unit_f64)(const double *e, int64_t n, double *y) {
    int64_t i = 0;
    for (; i + DL <= n; i += DL) {
        vd out = log1p_unit_vd(load_vd(e + i));
        memcpy(y + i, &out, sizeof out);
    }
    if (i < n) {
        vd out = log1p_unit_vd(load_partial_vd(e + i, n - i));
        store_partial_vd(y + i, out, n - i);
    }
}

/// One row of sigmoid cross-entropy with logits: element j is
/// w_j (q_j t_j softplus(-x_j) + (1 - t_j) softplus(x_j)), softplus(+-x) = max(+-x, 0) +
/// log1p(e) with e = exp(-|x|) <= 1, so nothing overflows or cancels; the gradient is
/// w_j ((1 - t_j) sigma(x_j) - q_j t_j sigma(-x_j)) with sigma(|x|) = 1/(1 + e) and
/// sigma(-|x|) = e/(1 + e). A term whose target weight is 0 (t = 0 or t = 1) is left out, as
/// the scalar definition does. Writes the elements (and the gradient when grad is non-null);
/// returns their sum.
static inline __attribute__((always_inline)) vd bce_vd(vd x, vd t, vd w, vd q, vd *gradient, int want_gradient) {
    vd e;
    vd l = log1p_exp_neg_abs_vd(x, &e);
    vd softplus_plus = (x > 0.0 ? x : (vd)0.0) + l, softplus_minus = (x < 0.0 ? -x : (vd)0.0) + l;
    vd positive = t != 0.0 ? q * t * softplus_minus : (vd)0.0;
    vd negative = t != 1.0 ? (1.0 - t) * softplus_plus : (vd)0.0;
    if (want_gradient) {
        vd big = 1.0 / (1.0 + e), small = e / (1.0 + e);
        vd sigmoid_plus = x >= 0.0 ? big : small, sigmoid_minus = x >= 0.0 ? small : big;
        *gradient = w * ((1.0 - t) * sigmoid_plus - q * t * sigmoid_minus);
    }
    return (positive + negative) * w;
}

double NAME(lossd_bce_row_f64)(
    const double *x, const double *t, const double *w, const double *q, int64_t n, double *elements, double *grad) {
    vd sum = 0;
    int64_t i = 0;
    for (; i + DL <= n; i += DL) {
        vd g;
        vd value = bce_vd(load_vd(x + i), load_vd(t + i), load_vd(w + i), load_vd(q + i), &g, grad != 0);
        memcpy(elements + i, &value, sizeof value);
        if (grad) memcpy(grad + i, &g, sizeof g);
        sum += value;
    }
    if (i < n) {
        // The tail in full vectors: zero-padded lanes give finite values that are not kept.
        int64_t count = n - i;
        vd xs = load_partial_vd(x + i, count), ts = load_partial_vd(t + i, count);
        vd ws = load_partial_vd(w + i, count), qs = load_partial_vd(q + i, count), g;
        vd value = bce_vd(xs, ts, ws, qs, &g, grad != 0);
        store_partial_vd(elements + i, value, count);
        if (grad) store_partial_vd(grad + i, g, count);
        sum += value;  // padded lanes have w = 0: value 0
    }
    return sum_vd(sum);
}

/// For the ldr_kl score transform: log softplus(x) and sigma(x)/softplus(x) per element.
/// softplus(x) = max(x, 0) + log1p(e), e = exp(-|x|); below x = -20 softplus underflows
/// long before its logarithm does, so log softplus(x) = x + log1p(-e/2) = x - e/2 - e^2/8
/// (the next term is below 2^-80 of x there). log sigma(x) = -(max(-x, 0) + log1p(e)), and
/// the ratio is exp(log sigma - log softplus) <= 1.
void NAME(lossd_log_softplus_f64)(const double *x, int64_t n, double *log_softplus, double *sigmoid_ratio) {
    for (int64_t i = 0; i < n; i += DL) {
        int64_t count = n - i < DL ? n - i : DL;
        vd v = load_partial_vd(x + i, count);
        vd e;
        vd l = log1p_exp_neg_abs_vd(v, &e);
        vd softplus = (v > 0.0 ? v : (vd)0.0) + l;
        vl far_left = v < -20.0;
        // Lanes left of -20 take the series; keep their softplus normal for log_normal_vd.
        vd ls = far_left ? v - e * 0.5 - e * e * 0.125 : log_normal_vd(far_left ? (vd)1.0 : softplus);
        vd log_sigmoid = -((v < 0.0 ? -v : (vd)0.0) + l);
        vd ratio = exp_nonpositive_vd(log_sigmoid - ls);  // <= 0 up to rounding
        memcpy(log_softplus + i, &ls, (size_t)count * sizeof(double));
        memcpy(sigmoid_ratio + i, &ratio, (size_t)count * sizeof(double));
    }
}

// ---- Whole-row softmax, two-pass against three-pass (benchmark only) ----
//
// The comparison of Dukhan & Ablavatski's Table 1: the two-pass algorithm (pass 1 the
// extended-range sum, pass 2 y = p·2^(e − E)/v) against the three-pass algorithm with
// reloading (pass 1 the max, pass 2 y = exp(x − max) stored and summed, pass 3 y /= sum),
// both with the same exponential polynomial. lossd's service computes softmax the
// two-pass way; these exist so `lossd-bench` can measure the paper's claim.

void NAME(lossd_softmax_two_pass_f32)(const float *x, int64_t n, float *y) {
    float v, E;
    if (NAME(lossd_extsum_f32)(x, n, &v, &E) != 0) return;
    const vf scale = 1.0f / v;
    int64_t i = 0;
    for (; i + FL <= n; i += FL) {
        vf e;
        vf p = ext_exp_f32(load_vf(x + i), &e);
        vf out = p * exp2_f32(e - E) * scale;
        memcpy(y + i, &out, sizeof out);
    }
    for (; i < n; i++) y[i] = expf(x[i] - E * 0x1.62E43p-1f) / v;
}

void NAME(lossd_softmax_three_pass_f32)(const float *x, int64_t n, float *y) {
    vf m0 = -INFINITY;
    int64_t i = 0;
    for (; i + FL <= n; i += FL) {
        vf a = load_vf(x + i);
        m0 = a > m0 ? a : m0;
    }
    float m = -INFINITY;
    for (int k = 0; k < FL; k++) m = m0[k] > m ? m0[k] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    vf s0 = 0;
    i = 0;
    for (; i + FL <= n; i += FL) {
        vf e;
        vf p = ext_exp_f32(load_vf(x + i) - m, &e);
        vf out = p * exp2_f32(e);
        memcpy(y + i, &out, sizeof out);
        s0 += out;
    }
    float sum = 0;
    for (int k = 0; k < FL; k++) sum += s0[k];
    for (; i < n; i++) {
        y[i] = expf(x[i] - m);
        sum += y[i];
    }
    const vf scale = 1.0f / sum;
    i = 0;
    for (; i + FL <= n; i += FL) {
        vf out = load_vf(y + i) * scale;
        memcpy(y + i, &out, sizeof out);
    }
    for (; i < n; i++) y[i] *= 1.0f / sum;
}

void NAME(lossd_softmax_two_pass_f64)(const double *x, int64_t n, double *y) {
    double v, E, m;
    if (NAME(lossd_extsum_f64)(x, n, &v, &E, &m) != 0) return;
    const vd scale = 1.0 / v;
    int64_t i = 0;
    for (; i + DL <= n; i += DL) {
        vd e;
        vd p = ext_exp_f64(load_vd(x + i), &e);
        vd out = p * exp2_f64(e - E) * scale;
        memcpy(y + i, &out, sizeof out);
    }
    for (; i < n; i++) y[i] = exp(x[i] - E * 0.6931471805599453) / v;
}

void NAME(lossd_softmax_three_pass_f64)(const double *x, int64_t n, double *y) {
    const double m = NAME(lossd_max_f64)(x, n);
    const double sum = NAME(lossd_exp_shifted_sum_f64)(x, n, m, y);
    const vd scale = 1.0 / sum;
    int64_t i = 0;
    for (; i + DL <= n; i += DL) {
        vd out = load_vd(y + i) * scale;
        memcpy(y + i, &out, sizeof out);
    }
    for (; i < n; i++) y[i] *= 1.0 / sum;
}
