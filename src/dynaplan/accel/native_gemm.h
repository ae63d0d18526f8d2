/* What the native kernels share (native_kernel.c: planning rollouts; native_fit.c: model
 * fitting): a 6 x 16 register-blocked AVX2 micro-kernel over a weight panel [K][16], and
 * the activations it applies in registers. */
#ifndef DYNAPLAN_NATIVE_GEMM_H
#define DYNAPLAN_NATIVE_GEMM_H
#include <immintrin.h>

#define MR 6  /* rows of the micro-kernel: 12 accumulators + 2 weight + 1 input register */
#define NR 16 /* columns: two 8-float vectors */

enum { ACT_NONE = 0, ACT_RELU = 1, ACT_SILU = 2 };

/* e^x, |relative error| about 2e-7: x = n ln2 + r, |r| <= ln2 / 2, e^r by Cephes' expf
 * polynomial, 2^n built in the exponent bits; x clamped to [-87.3, 88.3] (finite, normal) */
static inline __m256 exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
    p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static inline __m256 activate(__m256 v, int act) {
    if (act == ACT_RELU) return _mm256_max_ps(v, _mm256_setzero_ps());
    if (act == ACT_SILU)  /* x / (1 + e^-x), as torch computes it */
        return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f),
                                              exp256(_mm256_sub_ps(_mm256_setzero_ps(), v))));
    return v;
}

/* acc[r] += a[r x K] @ panel [K][NR] for the MR rows r, a(r, k) at a[r * rs + k * ks]:
 * rows in place (rs the row stride, ks 1) or a packed block [K][MR] (rs 1, ks MR) */
static inline __attribute__((always_inline)) void micro_acc(int K, const float *a, long rs,
                                                            long ks, const float *panel,
                                                            __m256 acc[MR][2]) {
#pragma GCC unroll 4
    for (int k = 0; k < K; k++) {
        const __m256 w0 = _mm256_loadu_ps(panel + k * NR), w1 = _mm256_loadu_ps(panel + k * NR + 8);
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            const __m256 x = _mm256_broadcast_ss(a + r * rs + k * ks);
            acc[r][0] = _mm256_fmadd_ps(x, w0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(x, w1, acc[r][1]);
        }
    }
}

/* c[MR x NR] = act(a[MR x K] (row stride lda) @ panel [K][NR] + bias[NR]) */
static inline __attribute__((always_inline)) void micro(int K, const float *a, long lda,
                                                        const float *panel, const float *bias,
                                                        float *c, long ldc, int act) {
    __m256 acc[MR][2];
    const __m256 b0 = _mm256_loadu_ps(bias), b1 = _mm256_loadu_ps(bias + 8);
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) { acc[r][0] = b0; acc[r][1] = b1; }
    micro_acc(K, a, lda, 1, panel, acc);
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
        _mm256_storeu_ps(c + r * ldc, activate(acc[r][0], act));
        _mm256_storeu_ps(c + r * ldc + 8, activate(acc[r][1], act));
    }
}

#endif
