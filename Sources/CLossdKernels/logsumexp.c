#include "CLossdKernels.h"
#include <math.h>
#include <string.h>

// Contract a*b+c into a fused multiply-add where the target has one (-mfma in release
// builds). The reductions below are written so that contraction only improves accuracy.
#pragma clang fp contract(fast)
// The vector helpers are static inline and always inlined: their calling convention never
// crosses a boundary, so the AVX-without-AVX ABI warning of generic builds does not apply.
#pragma clang diagnostic ignored "-Wpsabi"

typedef float f8 __attribute__((ext_vector_type(8)));
typedef int32_t i8 __attribute__((ext_vector_type(8)));
typedef double d4 __attribute__((ext_vector_type(4)));
typedef int64_t l4 __attribute__((ext_vector_type(4)));

#define BITCAST(to_type, value) __builtin_bit_cast(to_type, value)

static inline f8 load_f8(const float *p) {
    f8 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline d4 load_d4(const double *p) {
    d4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

// ---- float32 (XNNPACK's constants) ----

// exp(x) = p * 2^e: e = round(x log2 e) as an integer-valued float, p in [1/sqrt2, sqrt2].
static inline f8 ext_exp_f32(f8 x, f8 *e_out) {
    const f8 magic = 0x1.8p23f;
    f8 e = (x * 0x1.715476p+0f + magic) - magic;
    f8 t = x - e * 0x1.62E43p-1f;
    t = t - e * -0x1.05C61p-29f;
    f8 p = t * 0x1.0F9F9Cp-7f + 0x1.573A1Ap-5f;
    p = p * t + 0x1.555A80p-3f;
    p = p * t + 0x1.FFFDC6p-2f;
    p = p * t + 0x1.FFFFF6p-1f;
    p = p * t + 1.0f;
    *e_out = e;
    return p;
}

// 2^d for integer-valued d <= 0; below -127 the result is +0 (the term underflows).
static inline f8 exp2_f32(f8 d) {
    d = d < -127.0f ? (f8)-127.0f : d;
    i8 bits = BITCAST(i8, d + 0x1.8000FEp23f) << 23;  // magic bias holds d + 127
    return BITCAST(f8, bits);
}

int lossd_extsum_f32(const float *x, int64_t n, float *v_out, float *e_out) {
    const f8 limit = 2.9e6f;
    f8 v0 = 0, v1 = 0, E0 = -INFINITY, E1 = -INFINITY;
    i8 bad = 0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        f8 a = load_f8(x + i), b = load_f8(x + i + 8);
        bad |= (a > limit) | (a < -limit) | (b > limit) | (b < -limit);
        f8 ea, eb;
        f8 pa = ext_exp_f32(a, &ea), pb = ext_exp_f32(b, &eb);
        f8 na = ea > E0 ? ea : E0, nb = eb > E1 ? eb : E1;
        v0 = v0 * exp2_f32(E0 - na) + pa * exp2_f32(ea - na);
        v1 = v1 * exp2_f32(E1 - nb) + pb * exp2_f32(eb - nb);
        E0 = na;
        E1 = nb;
    }
    for (; i < n; i += 8) {
        // Partial vector: missing lanes add p = 0 at the lane's current exponent.
        f8 a = 0;
        int64_t count = n - i < 8 ? n - i : 8;
        memcpy(&a, x + i, (size_t)count * sizeof(float));
        i8 present = (i8){0, 1, 2, 3, 4, 5, 6, 7} < (int32_t)count;
        bad |= present & ((a > limit) | (a < -limit));
        f8 ea;
        f8 pa = ext_exp_f32(a, &ea);
        pa = present ? pa : (f8)0.0f;
        ea = present ? ea : E0;
        f8 na = ea > E0 ? ea : E0;
        v0 = v0 * exp2_f32(E0 - na) + pa * exp2_f32(ea - na);
        E0 = na;
    }
    f8 E = E1 > E0 ? E1 : E0;
    f8 v = v0 * exp2_f32(E0 - E) + v1 * exp2_f32(E1 - E);
    float top = -INFINITY;
    for (int k = 0; k < 8; k++) top = E[k] > top ? E[k] : top;
    f8 lanes = v * exp2_f32(E - top);
    float total = 0;
    for (int k = 0; k < 8; k++) total += lanes[k];
    *v_out = total;
    *e_out = top;
    for (int k = 0; k < 8; k++) if (bad[k]) return -1;
    return 0;
}

// ---- float64 (fdlibm's ln 2 split, Taylor polynomial of degree 13) ----

static inline d4 ext_exp_f64(d4 x, d4 *e_out) {
    const d4 magic = 0x1.8p52;
    d4 e = (x * 1.44269504088896338700e+00 + magic) - magic;
    d4 t = x - e * 6.93147180369123816490e-01;
    t = t - e * 1.90821492927058770002e-10;
    d4 p = t * (1.0 / 6227020800.0) + (1.0 / 479001600.0);
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

static inline d4 exp2_f64(d4 d) {
    d = d < -1023.0 ? (d4)-1023.0 : d;
    l4 bits = BITCAST(l4, d + (0x1.8p52 + 1023.0)) << 52;
    return BITCAST(d4, bits);
}

int lossd_extsum_f64(const double *x, int64_t n, double *v_out, double *e_out, double *max_out) {
    const d4 limit = 1e15;
    d4 v0 = 0, v1 = 0, E0 = -INFINITY, E1 = -INFINITY, M = -INFINITY;
    l4 bad = 0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        d4 a = load_d4(x + i), b = load_d4(x + i + 4);
        bad |= (a > limit) | (a < -limit) | (b > limit) | (b < -limit);
        M = a > M ? a : M;
        M = b > M ? b : M;
        d4 ea, eb;
        d4 pa = ext_exp_f64(a, &ea), pb = ext_exp_f64(b, &eb);
        d4 na = ea > E0 ? ea : E0, nb = eb > E1 ? eb : E1;
        v0 = v0 * exp2_f64(E0 - na) + pa * exp2_f64(ea - na);
        v1 = v1 * exp2_f64(E1 - nb) + pb * exp2_f64(eb - nb);
        E0 = na;
        E1 = nb;
    }
    for (; i < n; i += 4) {
        d4 a = 0;
        int64_t count = n - i < 4 ? n - i : 4;
        memcpy(&a, x + i, (size_t)count * sizeof(double));
        l4 present = (l4){0, 1, 2, 3} < (int64_t)count;
        bad |= present & ((a > limit) | (a < -limit));
        M = (present & (a > M)) ? a : M;
        d4 ea;
        d4 pa = ext_exp_f64(a, &ea);
        pa = present ? pa : (d4)0.0;
        ea = present ? ea : E0;
        d4 na = ea > E0 ? ea : E0;
        v0 = v0 * exp2_f64(E0 - na) + pa * exp2_f64(ea - na);
        E0 = na;
    }
    d4 E = E1 > E0 ? E1 : E0;
    d4 v = v0 * exp2_f64(E0 - E) + v1 * exp2_f64(E1 - E);
    double top = -INFINITY;
    for (int k = 0; k < 4; k++) top = E[k] > top ? E[k] : top;
    d4 lanes = v * exp2_f64(E - top);
    *v_out = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    *e_out = top;
    double m = -INFINITY;
    for (int k = 0; k < 4; k++) m = M[k] > m ? M[k] : m;
    *max_out = m;
    for (int k = 0; k < 4; k++) if (bad[k]) return -1;
    return 0;
}

void lossd_exp_shifted_f64(const double *x, int64_t n, double shift, double *y) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        d4 e;
        d4 z = load_d4(x + i) - shift;
        z = z < -746.0 ? (d4)-746.0 : z;  // exp underflows to 0 below; keeps e in range
        d4 p = ext_exp_f64(z, &e);
        d4 out = p * exp2_f64(e);
        memcpy(y + i, &out, sizeof out);
    }
    for (; i < n; i++) y[i] = exp(x[i] - shift);
}

double lossd_exp_shifted_sum_f64(const double *x, int64_t n, double shift, double *y) {
    d4 s0 = 0, s1 = 0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        d4 ea, eb;
        d4 a = load_d4(x + i) - shift, b = load_d4(x + i + 4) - shift;
        a = a < -746.0 ? (d4)-746.0 : a;
        b = b < -746.0 ? (d4)-746.0 : b;
        d4 pa = ext_exp_f64(a, &ea), pb = ext_exp_f64(b, &eb);
        d4 oa = pa * exp2_f64(ea), ob = pb * exp2_f64(eb);
        memcpy(y + i, &oa, sizeof oa);
        memcpy(y + i + 4, &ob, sizeof ob);
        s0 += oa;
        s1 += ob;
    }
    d4 lanes = s0 + s1;
    double sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (; i < n; i++) {
        y[i] = exp(x[i] - shift);
        sum += y[i];
    }
    return sum;
}

double lossd_max_f64(const double *x, int64_t n) {
    d4 m0 = -INFINITY, m1 = -INFINITY;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        d4 a = load_d4(x + i), b = load_d4(x + i + 4);
        m0 = a > m0 ? a : m0;
        m1 = b > m1 ? b : m1;
    }
    d4 m = m1 > m0 ? m1 : m0;
    double top = -INFINITY;
    for (int k = 0; k < 4; k++) top = m[k] > top ? m[k] : top;
    for (; i < n; i++) top = x[i] > top ? x[i] : top;
    return top;
}
