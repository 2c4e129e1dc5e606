// Chooses the row kernels' instruction-set level once, at load time: the best the CPU and
// the operating system support (cpuid and xgetbv), or the level named by LOSSD_SIMD
// (sse2, avx2, avx512) when the CPU has it. The public entry points of CLossdKernels.h
// call through the chosen level's functions.
#include "CLossdKernels.h"

#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#define DECLARE_LEVEL(level)                                                                   \
    int lossd_extsum_f32_##level(const float *, int64_t, float *, float *);                     \
    int lossd_extsum_f64_##level(const double *, int64_t, double *, double *, double *);       \
    void lossd_exp_shifted_f64_##level(const double *, int64_t, double, double *);             \
    double lossd_exp_shifted_sum_f64_##level(const double *, int64_t, double, double *);       \
    double lossd_max_f64_##level(const double *, int64_t);                                     \
    double lossd_sigmoid_sum_f64_##level(const double *, int64_t, double, double, double *);   \
    void lossd_log1p_unit_f64_##level(const double *, int64_t, double *);                      \
    void lossd_log_softplus_f64_##level(const double *, int64_t, double *, double *);          \
    double lossd_bce_row_f64_##level(const double *, const double *, const double *, const double *, int64_t, \
                                     double *, double *);                                      \
    void lossd_softmax_two_pass_f32_##level(const float *, int64_t, float *);                  \
    void lossd_softmax_three_pass_f32_##level(const float *, int64_t, float *);                \
    void lossd_softmax_two_pass_f64_##level(const double *, int64_t, double *);                \
    void lossd_softmax_three_pass_f64_##level(const double *, int64_t, double *);

DECLARE_LEVEL(sse2)
#if defined(__x86_64__)
DECLARE_LEVEL(avx2)
DECLARE_LEVEL(avx512)
#endif

typedef struct {
    int (*extsum_f32)(const float *, int64_t, float *, float *);
    int (*extsum_f64)(const double *, int64_t, double *, double *, double *);
    void (*exp_shifted_f64)(const double *, int64_t, double, double *);
    double (*exp_shifted_sum_f64)(const double *, int64_t, double, double *);
    double (*max_f64)(const double *, int64_t);
    double (*sigmoid_sum_f64)(const double *, int64_t, double, double, double *);
    void (*log1p_unit_f64)(const double *, int64_t, double *);
    void (*log_softplus_f64)(const double *, int64_t, double *, double *);
    double (*bce_row_f64)(const double *, const double *, const double *, const double *, int64_t, double *, double *);
    void (*softmax_f32[2])(const float *, int64_t, float *);
    void (*softmax_f64[2])(const double *, int64_t, double *);
} kernel_table;

#define TABLE(level)                                                                           \
    {lossd_extsum_f32_##level, lossd_extsum_f64_##level, lossd_exp_shifted_f64_##level,         \
     lossd_exp_shifted_sum_f64_##level, lossd_max_f64_##level, lossd_sigmoid_sum_f64_##level,  \
     lossd_log1p_unit_f64_##level, lossd_log_softplus_f64_##level, lossd_bce_row_f64_##level,  \
     {lossd_softmax_two_pass_f32_##level, lossd_softmax_three_pass_f32_##level},                \
     {lossd_softmax_two_pass_f64_##level, lossd_softmax_three_pass_f64_##level}}

static const kernel_table tables[LOSSD_LEVEL_COUNT] = {
    TABLE(sse2),
#if defined(__x86_64__)
    TABLE(avx2),
    TABLE(avx512),
#endif
};

static int best_level = LOSSD_LEVEL_BASELINE;
static int current_level = LOSSD_LEVEL_BASELINE;
static int chosen_by_environment = 0;

#if defined(__x86_64__)
/// AVX2 + FMA, and AVX-512 F/DQ/VL, each only when the OS saves the wider registers
/// (XCR0: SSE and AVX state for AVX2; also opmask and ZMM state for AVX-512).
static int detect_best_level(void) {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return LOSSD_LEVEL_SSE2;
    const int fma = (ecx >> 12) & 1, osxsave = (ecx >> 27) & 1, avx = (ecx >> 28) & 1;
    if (!osxsave || !avx || !fma) return LOSSD_LEVEL_SSE2;
    unsigned xcr0_low, xcr0_high;
    __asm__("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
    if ((xcr0_low & 0x6) != 0x6) return LOSSD_LEVEL_SSE2;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return LOSSD_LEVEL_SSE2;
    const int avx2 = (ebx >> 5) & 1;
    if (!avx2) return LOSSD_LEVEL_SSE2;
    const int avx512 = ((ebx >> 16) & 1) && ((ebx >> 17) & 1) && ((ebx >> 31) & 1);
    if (avx512 && (xcr0_low & 0xE6) == 0xE6) return LOSSD_LEVEL_AVX512;
    return LOSSD_LEVEL_AVX2;
}
#else
static int detect_best_level(void) { return LOSSD_LEVEL_BASELINE; }
#endif

__attribute__((constructor)) static void choose_level(void) {
    best_level = detect_best_level();
    current_level = best_level;
    const char *requested = getenv("LOSSD_SIMD");
    if (requested == NULL || requested[0] == 0) return;
    for (int level = 0; level < LOSSD_LEVEL_COUNT; level++) {
        if (strcmp(requested, lossd_kernel_level_name(level)) == 0 && level <= best_level) {
            current_level = level;
            chosen_by_environment = 1;
        }
    }
}

// Written once, before main, and only read afterwards.
static inline const kernel_table *table(void) { return &tables[current_level]; }

int lossd_kernel_level(void) { return current_level; }
int lossd_kernel_best_level(void) { return best_level; }
int lossd_kernel_level_from_environment(void) { return chosen_by_environment; }

const char *lossd_kernel_level_name(int level) {
#if defined(__x86_64__)
    static const char *const names[LOSSD_LEVEL_COUNT] = {"sse2", "avx2", "avx512"};
#elif defined(__aarch64__)
    static const char *const names[LOSSD_LEVEL_COUNT] = {"neon"};
#else
    static const char *const names[LOSSD_LEVEL_COUNT] = {"generic"};
#endif
    return level >= 0 && level < LOSSD_LEVEL_COUNT ? names[level] : "unknown";
}

int lossd_extsum_f32(const float *x, int64_t n, float *v, float *e) { return table()->extsum_f32(x, n, v, e); }
int lossd_extsum_f64(const double *x, int64_t n, double *v, double *e, double *max) { return table()->extsum_f64(x, n, v, e, max); }
void lossd_exp_shifted_f64(const double *x, int64_t n, double shift, double *y) { table()->exp_shifted_f64(x, n, shift, y); }
double lossd_exp_shifted_sum_f64(const double *x, int64_t n, double shift, double *y) {
    return table()->exp_shifted_sum_f64(x, n, shift, y);
}
double lossd_max_f64(const double *x, int64_t n) { return table()->max_f64(x, n); }
double lossd_sigmoid_sum_f64(const double *x, int64_t n, double alpha, double t, double *slope) {
    return table()->sigmoid_sum_f64(x, n, alpha, t, slope);
}

void lossd_log1p_unit_f64(const double *e, int64_t n, double *y) { table()->log1p_unit_f64(e, n, y); }

void lossd_log_softplus_f64(const double *x, int64_t n, double *log_softplus, double *sigmoid_ratio) {
    table()->log_softplus_f64(x, n, log_softplus, sigmoid_ratio);
}

double lossd_bce_row_f64(
    const double *x, const double *t, const double *w, const double *q, int64_t n, double *elements, double *grad) {
    return table()->bce_row_f64(x, t, w, q, n, elements, grad);
}

int lossd_bench_softmax_f32(int level, int three_pass, const float *x, int64_t n, float *y) {
    if (level < 0 || level > best_level || n < 1) return -1;
    tables[level].softmax_f32[three_pass ? 1 : 0](x, n, y);
    return 0;
}

int lossd_bench_softmax_f64(int level, int three_pass, const double *x, int64_t n, double *y) {
    if (level < 0 || level > best_level || n < 1) return -1;
    tables[level].softmax_f64[three_pass ? 1 : 0](x, n, y);
    return 0;
}
