/* The CPU kernels behind models/native_fit.py: a fitting step's first two layers of the
 * seed's networks, Linear -> BatchNorm -> ReLU -> Linear, with the first block's BatchNorm
 * computed from its input's statistics (models/input_batchnorm.py has the algebra).
 *
 *   dp_fit_input_relu:  y = relu(z @ F^T), z = [x - mean(x), 1] [M, D] and F [N, D] the
 *                       folded first layer: one pass that writes y.
 *   dp_fit_linear:      C = A @ W^T + b, the second layer's forward product.
 *   dp_fit_masked_sums: S = z^T ((G @ W) * (y > 0)) [D, N], everything the first block's
 *                       backward pass needs from the second layer's input gradient G W,
 *                       without writing that [M, N] gradient: each 6 x 16 tile of G W is
 *                       masked and reduced in registers, straight after the micro-kernel.
 *
 * Products run native_gemm.h's micro-kernel over the weight, packed into 16-column panels
 * at the start of each call (by the whole team), and rows in chunks of MC (a chunk's
 * inputs stay in L2 while every panel passes over them). Rows are split in `threads`
 * contiguous parts, as in native_kernel.c, and S is summed part by part in order: results
 * depend on the thread count, never on timing. Every call runs one OpenMP region of
 * torch's own threads (native_build.py). */
#include "native_gemm.h"
#include <omp.h>
#include <string.h>

#define MC 96 /* rows per chunk: 96 x K floats of input stay in L2 */

static long ceil_to(long n, long m) { return (n + m - 1) / m * m; }

/* W(k, j) = W[k * sr + j * sc] for k < K, j < N into ceil(N / NR) panels of [K][NR], zero
 * beyond N; the panels are shared out among the team (call from every thread, then sync) */
static void pack_panels(long K, long N, const float *W, long sr, long sc, float *dst) {
#pragma omp for schedule(static)
    for (long j = 0; j < N; j += NR) {
        float *p = dst + j * K;
        const long w = N - j < NR ? N - j : NR;
        if (sc == 1)  /* rows of W hold the panel's columns: read them in order */
            for (long k = 0; k < K; k++)
                for (long c = 0; c < NR; c++) p[k * NR + c] = c < w ? W[k * sr + j + c] : 0.0f;
        else
            for (long c = 0; c < NR; c++)
                for (long k = 0; k < K; k++)
                    p[k * NR + c] = c < w ? W[k * sr + (j + c) * sc] : 0.0f;
    }
}

/* the rows [r0, r1) of part `part` of `parts` of M rows, in whole micro-kernel blocks */
static void part_rows(long M, long part, long parts, long *r0, long *r1) {
    const long blocks = (M + MR - 1) / MR;
    *r0 = blocks * part / parts * MR;
    *r1 = blocks * (part + 1) / parts * MR;
    if (*r1 > M) *r1 = M;
}

/* the MR rows of A from row i (row stride lda): A itself, or where fewer than MR rows are
 * left, a zero-padded copy in pad [MR][K] */
static const float *rows_at(const float *A, long lda, long i, long M, long K, float *pad,
                            long *lda_out) {
    if (M - i >= MR) { *lda_out = lda; return A + i * lda; }
    memset(pad, 0, sizeof(float) * MR * K);
    for (long r = 0; r < M - i; r++) memcpy(pad + r * K, A + (i + r) * lda, sizeof(float) * K);
    *lda_out = K;
    return pad;
}

/* y [M, N] = relu(z [M, D] @ Ft [D, N]) */
void dp_fit_input_relu(long M, long D, long N, const float *z, const float *Ft, float *y,
                       long threads) {
#pragma omp parallel for num_threads((int)threads) schedule(static)
    for (long i = 0; i < M; i++) {
        const float *zi = z + i * D;
        float *yi = y + i * N;
        long j = 0;
        for (; j + 8 <= N; j += 8) {
            __m256 acc = _mm256_setzero_ps();
            for (long k = 0; k < D; k++)
                acc = _mm256_fmadd_ps(_mm256_broadcast_ss(zi + k), _mm256_loadu_ps(Ft + k * N + j), acc);
            _mm256_storeu_ps(yi + j, _mm256_max_ps(acc, _mm256_setzero_ps()));
        }
        for (; j < N; j++) {
            float acc = 0.0f;
            for (long k = 0; k < D; k++) acc += zi[k] * Ft[k * N + j];
            yi[j] = acc > 0.0f ? acc : 0.0f;
        }
    }
}

/* C [M, N] = A [M, K] @ W [N, K]^T + b [N]. scratch: ceil(N / NR) * NR * K + threads * MR *
 * (K + NR) floats. */
void dp_fit_linear(long M, long K, long N, const float *A, const float *W, const float *b,
                   float *C, float *scratch, long threads) {
    const long Np = ceil_to(N, NR);
    float *panels = scratch;
#pragma omp parallel num_threads((int)threads)
    {
        pack_panels(K, N, W, 1, K, panels);  /* W^T(k, j) = W[j, k]; ends in a barrier */
        for (long part = omp_get_thread_num(); part < threads; part += omp_get_num_threads()) {
            float *pad = scratch + Np * K + part * MR * (K + NR), *tile = pad + MR * K;
            long r0, r1;
            part_rows(M, part, threads, &r0, &r1);
            for (long ic = r0; ic < r1; ic += MC) {
                const long ie = ic + MC < r1 ? ic + MC : r1;
                for (long j = 0; j < N; j += NR) {
                    float bias[NR] = {0};
                    memcpy(bias, b + j, sizeof(float) * (N - j < NR ? N - j : NR));
                    for (long i = ic; i < ie; i += MR) {
                        long lda;
                        const float *a = rows_at(A, K, i, M, K, pad, &lda);
                        if (M - i >= MR && N - j >= NR) {
                            micro((int)K, a, lda, panels + j * K, bias, C + i * N + j, N, ACT_NONE);
                            continue;
                        }
                        micro((int)K, a, lda, panels + j * K, bias, tile, NR, ACT_NONE);
                        for (long r = 0; r < MR && i + r < M; r++)
                            for (long c = 0; c < NR && j + c < N; c++)
                                C[(i + r) * N + j + c] = tile[r * NR + c];
                    }
                }
            }
        }
    }
}

/* S [D, N] = z [M, D]^T ((G [M, K] @ W [K, N]) * (y [M, N] > 0)). scratch: ceil(N / NR) * NR
 * * K + threads * (MR * (K + NR) + D * ceil(N / NR) * NR) floats. */
void dp_fit_masked_sums(long M, long K, long N, const float *G, const float *W, const float *y,
                        const float *z, long D, float *S, float *scratch, long threads) {
    const long Np = ceil_to(N, NR), per_part = MR * (K + NR) + D * Np;
    float *panels = scratch;
#pragma omp parallel num_threads((int)threads)
    {
        pack_panels(K, N, W, N, 1, panels);
        for (long part = omp_get_thread_num(); part < threads; part += omp_get_num_threads()) {
            float *pad = scratch + Np * K + part * per_part, *tile = pad + MR * K;
            float *sums = tile + MR * NR;  /* [D][Np], this part's */
            long r0, r1;
            part_rows(M, part, threads, &r0, &r1);
            memset(sums, 0, sizeof(float) * D * Np);
            for (long ic = r0; ic < r1; ic += MC) {
                const long ie = ic + MC < r1 ? ic + MC : r1;
                for (long j = 0; j < N; j += NR) {
                    for (long i = ic; i < ie; i += MR) {
                        long lda;
                        const float *a = rows_at(G, K, i, M, K, pad, &lda);
                        __m256 acc[MR][2];
#pragma GCC unroll 6
                        for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
                        micro_acc((int)K, a, lda, panels + j * K, acc);
                        const long rows = M - i < MR ? M - i : MR;
                        if (N - j >= NR) {
                            /* a constant trip count keeps acc in registers */
#pragma GCC unroll 6
                            for (int r = 0; r < MR; r++) {
                                if (r >= rows) break;
                                const float *yr = y + (i + r) * N + j;
                                const __m256 v0 = _mm256_and_ps(acc[r][0], _mm256_cmp_ps(
                                    _mm256_loadu_ps(yr), _mm256_setzero_ps(), _CMP_GT_OQ));
                                const __m256 v1 = _mm256_and_ps(acc[r][1], _mm256_cmp_ps(
                                    _mm256_loadu_ps(yr + 8), _mm256_setzero_ps(), _CMP_GT_OQ));
                                for (long d = 0; d < D; d++) {
                                    const __m256 zd = _mm256_broadcast_ss(z + (i + r) * D + d);
                                    float *s = sums + d * Np + j;
                                    _mm256_storeu_ps(s, _mm256_fmadd_ps(zd, v0, _mm256_loadu_ps(s)));
                                    _mm256_storeu_ps(s + 8, _mm256_fmadd_ps(zd, v1, _mm256_loadu_ps(s + 8)));
                                }
                            }
                            continue;
                        }
#pragma GCC unroll 6
                        for (int r = 0; r < MR; r++) {
                            _mm256_storeu_ps(tile + r * NR, acc[r][0]);
                            _mm256_storeu_ps(tile + r * NR + 8, acc[r][1]);
                        }
                        for (long r = 0; r < rows; r++)
                            for (long c = 0; c < NR && j + c < N; c++) {
                                if (!(y[(i + r) * N + j + c] > 0.0f)) continue;
                                for (long d = 0; d < D; d++)
                                    sums[d * Np + j + c] += z[(i + r) * D + d] * tile[r * NR + c];
                            }
                    }
                }
            }
        }
#pragma omp barrier
#pragma omp for schedule(static)
        for (long c = 0; c < D * N; c++) {  /* the parts' sums, in part order */
            const long d = c / N, j = c % N;
            float s = 0.0f;
            for (long part = 0; part < threads; part++)
                s += scratch[Np * K + part * per_part + MR * (K + NR) + d * Np + j];
            S[c] = s;
        }
    }
}
