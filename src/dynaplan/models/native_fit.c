/* The CPU kernels behind models/native_fit.py: a fitting step of a BatchNorm ReLU network,
 * with the first block's BatchNorm computed from its input's statistics
 * (models/input_batchnorm.py has the algebra).
 *
 *   dp_fit_input_block: the first block's batch statistics, z = [x - mean(x), 1] [M, D]
 *                       and y = relu(z @ F^T), F [N, D] the folded first layer: one pass
 *                       that writes y.
 *   dp_fit_linear:      C = A @ W^T + b, the second layer's forward product, with C's
 *                       column statistics where the seed's second BatchNorm follows.
 *   dp_fit_bn_relu_head, dp_fit_bn_relu_head_backward: the seed's second BatchNorm, its
 *                       ReLU and the head, one pass forward and two back.
 *   dp_fit_input_block_backward: the first block's gradients from S = z^T ((G @ W) *
 *                       (y > 0)) [D, N], all its backward pass needs of the second layer's
 *                       input gradient G W, without writing that [M, N] gradient: each
 *                       6 x 16 tile of G W is masked and reduced in registers, straight
 *                       after the micro-kernel.
 *
 * Products run native_gemm.h's micro-kernel over the weight, packed into 16-column panels
 * at the start of each call (by the whole team), and rows in chunks of MC, packed in
 * blocks of MR rows (a chunk stays in L2 while every panel passes over it; packed, the
 * rows' inputs of one k share a cache line: 7-8% faster than reading them in place).
 * Rows are split in `threads` contiguous parts, as in native_kernel.c, and sums are
 * added part by part in order: results depend on the thread count, never on timing.
 * Every call runs one OpenMP region of torch's own threads (native_build.py). */
#include "native_gemm.h"
#include <math.h>
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

/* rows [i0, i1) of A [M, K] into blocks of MR rows, each [K][MR] (the micro-kernel reads
 * a block's MR inputs of one k from one cache line), zero past row M */
static void pack_rows(long i0, long i1, long M, long K, const float *A, float *dst) {
    for (long i = i0; i < i1; i += MR)
        for (long k = 0; k < K; k++)
            for (long r = 0; r < MR; r++)
                dst[(i - i0) * K + k * MR + r] = i + r < M ? A[(i + r) * K + k] : 0.0f;
}

/* The first block's forward pass: from x [M, d] (data) and the first Linear (W [N, d], b)
 * and BatchNorm (gamma, beta, eps), its batch statistics and
 *   z [M, d + 1] = [x - mean(x), 1],  y [M, N] = relu(z @ Ft),
 * Ft [d + 1, N] the folded layer (W * scale, beta)^T. mean(x) and the covariance C of x
 * are summed in double (work: d + d * d doubles), as are, per output j, mean [N] = W_j .
 * mean(x) + b_j, wc [N, d] = C W_j, var [N] = W_j . C W_j (biased), invstd [N] and scale
 * [N] = gamma * invstd. */
void dp_fit_input_block(long M, long d, long N, const float *x, const float *W, const float *b,
                        const float *gamma, const float *beta, double eps, float *z, float *y,
                        float *mean, float *var, float *invstd, float *scale, float *wc,
                        float *Ft, double *work, long threads) {
    double *xm = work, *cov = work + d;
    const long D = d + 1;
    for (long k = 0; k < d; k++) xm[k] = 0.0;
    for (long i = 0; i < M; i++)
        for (long k = 0; k < d; k++) xm[k] += x[i * d + k];
    for (long k = 0; k < d; k++) xm[k] /= (double)M;
    for (long k = 0; k < d * d; k++) cov[k] = 0.0;
    for (long i = 0; i < M; i++)
        for (long k = 0; k < d; k++) {
            const double ck = x[i * d + k] - xm[k];
            for (long l = 0; l <= k; l++) cov[k * d + l] += ck * (x[i * d + l] - xm[l]);
        }
    for (long k = 0; k < d; k++)
        for (long l = 0; l <= k; l++) cov[l * d + k] = cov[k * d + l] /= (double)M;
    for (long j = 0; j < N; j++) {
        const float *w = W + j * d;
        double mu = b[j], v = 0.0;
        for (long k = 0; k < d; k++) {
            double c = 0.0;
            for (long l = 0; l < d; l++) c += cov[k * d + l] * w[l];
            wc[j * d + k] = (float)c;
            v += c * w[k];
            mu += xm[k] * w[k];
        }
        const double is = 1.0 / sqrt(v + eps), s = gamma[j] * is;
        mean[j] = (float)mu, var[j] = (float)v, invstd[j] = (float)is, scale[j] = (float)s;
        for (long k = 0; k < d; k++) Ft[k * N + j] = (float)(w[k] * s);
        Ft[d * N + j] = beta[j];
    }
#pragma omp parallel for num_threads((int)threads) schedule(static)
    for (long i = 0; i < M; i++) {
        float *zi = z + i * D, *yi = y + i * N;
        for (long k = 0; k < d; k++) zi[k] = (float)(x[i * d + k] - xm[k]);
        zi[d] = 1.0f;
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

/* C [M, N] = A [M, K] @ W [N, K]^T + b [N], and where mean is not NULL, C's column means
 * and biased variances mean, var [N] (summed in double from the stored tiles, per part,
 * then part by part in order; colwork: threads * 2 * ceil(N / NR) * NR doubles). scratch:
 * ceil(N / NR) * NR * K + threads * (MC * K + MR * NR) floats. */
void dp_fit_linear(long M, long K, long N, const float *A, const float *W, const float *b,
                   float *C, float *mean, float *var, double *colwork, float *scratch,
                   long threads) {
    const long Np = ceil_to(N, NR);
    float *panels = scratch;
#pragma omp parallel num_threads((int)threads)
    {
        pack_panels(K, N, W, 1, K, panels);  /* W^T(k, j) = W[j, k]; ends in a barrier */
        for (long part = omp_get_thread_num(); part < threads; part += omp_get_num_threads()) {
            float *rows = scratch + Np * K + part * (MC * K + MR * NR), *tile = rows + MC * K;
            double *csum = colwork + part * 2 * Np, *csq = csum + Np;
            long r0, r1;
            part_rows(M, part, threads, &r0, &r1);
            if (mean)
                for (long j = 0; j < 2 * Np; j++) csum[j] = 0.0;
            for (long ic = r0; ic < r1; ic += MC) {
                const long ie = ic + MC < r1 ? ic + MC : r1;
                pack_rows(ic, ie, M, K, A, rows);
                for (long j = 0; j < N; j += NR) {
                    float bias[NR] = {0};
                    memcpy(bias, b + j, sizeof(float) * (N - j < NR ? N - j : NR));
                    const __m256 b0 = _mm256_loadu_ps(bias), b1 = _mm256_loadu_ps(bias + 8);
                    for (long i = ic; i < ie; i += MR) {
                        __m256 acc[MR][2];
#pragma GCC unroll 6
                        for (int r = 0; r < MR; r++) { acc[r][0] = b0; acc[r][1] = b1; }
                        micro_acc((int)K, rows + (i - ic) * K, 1, MR, panels + j * K, acc);
                        const int full = M - i >= MR && N - j >= NR;
                        float *c = full ? C + i * N + j : tile;
                        const long ldc = full ? N : NR;
#pragma GCC unroll 6
                        for (int r = 0; r < MR; r++) {
                            _mm256_storeu_ps(c + r * ldc, acc[r][0]);
                            _mm256_storeu_ps(c + r * ldc + 8, acc[r][1]);
                        }
                        if (full) {
                            if (mean)  /* the tile's column sums, from L1, in double */
                                for (long q = 0; q < NR; q += 4) {
                                    __m256d s1 = _mm256_setzero_pd(), s2 = _mm256_setzero_pd();
#pragma GCC unroll 6
                                    for (int r = 0; r < MR; r++) {
                                        const __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(c + r * ldc + q));
                                        s1 = _mm256_add_pd(s1, v);
                                        s2 = _mm256_fmadd_pd(v, v, s2);
                                    }
                                    _mm256_storeu_pd(csum + j + q, _mm256_add_pd(_mm256_loadu_pd(csum + j + q), s1));
                                    _mm256_storeu_pd(csq + j + q, _mm256_add_pd(_mm256_loadu_pd(csq + j + q), s2));
                                }
                            continue;
                        }
                        for (long r = 0; r < MR && i + r < M; r++)
                            for (long q = 0; q < NR && j + q < N; q++) {
                                const float v = tile[r * NR + q];
                                C[(i + r) * N + j + q] = v;
                                if (mean) csum[j + q] += v, csq[j + q] += (double)v * v;
                            }
                    }
                }
            }
        }
        if (mean) {
#pragma omp barrier
#pragma omp for schedule(static)
            for (long j = 0; j < N; j++) {
                double s1 = 0.0, s2 = 0.0;
                for (long part = 0; part < threads; part++)
                    s1 += colwork[part * 2 * Np + j], s2 += colwork[part * 2 * Np + Np + j];
                const double mu = s1 / M, v = s2 / M - mu * mu;
                mean[j] = (float)mu, var[j] = (float)(v > 0.0 ? v : 0.0);
            }
        }
    }
}

/* The tail of the seed's network going forward: with BatchNorm's statistics of h [M, N]
 * (mean, scale = gamma * invstd, beta), y [M, N] = relu((h - mean) * scale + beta) and the
 * head out [M, O] = y @ Wh [O, N]^T + bh, each row's y read back from L1. */
void dp_fit_bn_relu_head(long M, long N, long O, const float *h, const float *mean,
                         const float *scale, const float *beta, const float *Wh,
                         const float *bh, float *y, float *out, long threads) {
#pragma omp parallel for num_threads((int)threads) schedule(static)
    for (long i = 0; i < M; i++) {
        const float *hi = h + i * N;
        float *yi = y + i * N;
        for (long j = 0; j < N; j++) {
            const float v = (hi[j] - mean[j]) * scale[j] + beta[j];
            yi[j] = v > 0.0f ? v : 0.0f;
        }
        for (long o = 0; o < O; o++) {
            const float *w = Wh + o * N;
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (long j = 0; j < N; j++) acc += yi[j] * w[j];
            out[i * O + o] = acc + bh[o];
        }
    }
}

/* One row's masked head gradient at columns j .. j + 7: (gout [1, O] @ Wh [O, N]) * (y > 0) */
static inline __m256 masked_head_grad8(long N, long O, const float *restrict gout,
                                       const float *restrict Wh, const float *restrict y,
                                       long j) {
    __m256 g = _mm256_setzero_ps();
    for (long o = 0; o < O; o++)
        g = _mm256_fmadd_ps(_mm256_broadcast_ss(gout + o), _mm256_loadu_ps(Wh + o * N + j), g);
    return _mm256_and_ps(g, _mm256_cmp_ps(_mm256_loadu_ps(y + j), _mm256_setzero_ps(), _CMP_GT_OQ));
}

/* the same for column j alone */
static inline float masked_head_grad1(long N, long O, const float *restrict gout,
                                      const float *restrict Wh, const float *restrict y, long j) {
    float g = 0.0f;
    for (long o = 0; o < O; o++) g += gout[o] * Wh[o * N + j];
    return y[j] > 0.0f ? g : 0.0f;
}

/* one row's share of the tail's sums, eight columns a vector: with g the masked head
 * gradient, sb += g, sg += g xhat, gw [O, N] += gout^T y, gb += gout */
static inline void head_sums(long N, long O, const float *restrict gout, const float *restrict Wh,
                             const float *restrict y, const float *restrict h,
                             const float *restrict mean, const float *restrict invstd,
                             float *restrict sb, float *restrict sg, float *restrict gw,
                             float *restrict gb) {
    long j = 0;
    for (; j + 8 <= N; j += 8) {
        const __m256 g = masked_head_grad8(N, O, gout, Wh, y, j), yj = _mm256_loadu_ps(y + j);
        const __m256 xhat = _mm256_mul_ps(
            _mm256_sub_ps(_mm256_loadu_ps(h + j), _mm256_loadu_ps(mean + j)),
            _mm256_loadu_ps(invstd + j));
        _mm256_storeu_ps(sb + j, _mm256_add_ps(_mm256_loadu_ps(sb + j), g));
        _mm256_storeu_ps(sg + j, _mm256_fmadd_ps(g, xhat, _mm256_loadu_ps(sg + j)));
        for (long o = 0; o < O; o++) {
            float *gwo = gw + o * N + j;
            _mm256_storeu_ps(gwo, _mm256_fmadd_ps(_mm256_broadcast_ss(gout + o), yj,
                                                  _mm256_loadu_ps(gwo)));
        }
    }
    for (; j < N; j++) {
        const float g = masked_head_grad1(N, O, gout, Wh, y, j);
        sb[j] += g;
        sg[j] = fmaf(g, (h[j] - mean[j]) * invstd[j], sg[j]);
        for (long o = 0; o < O; o++) gw[o * N + j] = fmaf(gout[o], y[j], gw[o * N + j]);
    }
    for (long o = 0; o < O; o++) gb[o] += gout[o];
}

/* one row of BatchNorm's input gradient, eight columns a vector: dh = scale (g - xhat
 * sum g xhat / M - sum g / M), with cg = sum g / M and cx = sum g xhat / M */
static inline void bn_input_grad(long N, long O, const float *restrict gout,
                                 const float *restrict Wh, const float *restrict y,
                                 const float *restrict h, const float *restrict mean,
                                 const float *restrict invstd, const float *restrict scale,
                                 const float *restrict cg, const float *restrict cx,
                                 float *restrict dh) {
    long j = 0;
    for (; j + 8 <= N; j += 8) {
        const __m256 g = masked_head_grad8(N, O, gout, Wh, y, j);
        const __m256 xhat = _mm256_mul_ps(
            _mm256_sub_ps(_mm256_loadu_ps(h + j), _mm256_loadu_ps(mean + j)),
            _mm256_loadu_ps(invstd + j));
        const __m256 t = _mm256_fnmadd_ps(xhat, _mm256_loadu_ps(cx + j),
                                          _mm256_sub_ps(g, _mm256_loadu_ps(cg + j)));
        _mm256_storeu_ps(dh + j, _mm256_mul_ps(_mm256_loadu_ps(scale + j), t));
    }
    for (; j < N; j++) {
        const float g = masked_head_grad1(N, O, gout, Wh, y, j);
        const float xhat = (h[j] - mean[j]) * invstd[j];
        dh[j] = scale[j] * fmaf(-xhat, cx[j], g - cg[j]);
    }
}

/* The tail going back, given gout [M, O] at the head's output: per row g = (gout @ Wh) *
 * (y > 0) and xhat = (h - mean) * invstd; first the sums grad_beta = sum g, grad_gamma =
 * sum g xhat, grad_Wh = gout^T y, grad_bh = sum gout (per part, then part by part in order),
 * then BatchNorm's input gradient dh = scale (g - grad_beta / M - xhat grad_gamma / M).
 * work: threads * ((2 + O) * N + O) + 2 * N floats. */
void dp_fit_bn_relu_head_backward(long M, long N, long O, const float *gout, const float *Wh,
                                  const float *y, const float *h, const float *mean,
                                  const float *invstd, const float *scale, float *dh,
                                  float *grad_gamma, float *grad_beta, float *grad_Wh,
                                  float *grad_bh, float *work, long threads) {
    const long per_part = (2 + O) * N + O;
    float *cg = work + threads * per_part, *cx = cg + N;  /* grad_beta / M, grad_gamma / M */
#pragma omp parallel num_threads((int)threads)
    {
        for (long part = omp_get_thread_num(); part < threads; part += omp_get_num_threads()) {
            float *sb = work + part * per_part, *sg = sb + N, *gw = sg + N, *gb = gw + O * N;
            long r0, r1;
            part_rows(M, part, threads, &r0, &r1);
            memset(sb, 0, sizeof(float) * per_part);
            for (long i = r0; i < r1; i++)
                head_sums(N, O, gout + i * O, Wh, y + i * N, h + i * N, mean, invstd, sb, sg,
                          gw, gb);
        }
#pragma omp barrier
#pragma omp for schedule(static)
        for (long c = 0; c < per_part; c++) {  /* the parts' sums, in part order */
            float total = 0.0f;
            for (long part = 0; part < threads; part++) total += work[part * per_part + c];
            if (c < N) grad_beta[c] = total, cg[c] = total / (float)M;
            else if (c < 2 * N) grad_gamma[c - N] = total, cx[c - N] = total / (float)M;
            else if (c < (2 + O) * N) grad_Wh[c - 2 * N] = total;
            else grad_bh[c - (2 + O) * N] = total;
        }
        for (long part = omp_get_thread_num(); part < threads; part += omp_get_num_threads()) {
            long r0, r1;
            part_rows(M, part, threads, &r0, &r1);
            for (long i = r0; i < r1; i++)
                bn_input_grad(N, O, gout + i * O, Wh, y + i * N, h + i * N, mean, invstd, scale,
                              cg, cx, dh + i * N);
        }
    }
}

/* The first block's backward pass, given G [M, K], the gradient at the output of the Linear
 * after it (W [K, N]): with S [D, N] = z^T ((G @ W) * (y > 0)) (z, y, D = d + 1 as in the
 * forward pass), per output j, grad_beta_j = S[d, j], grad_gamma_j = invstd_j S[:d, j] .
 * W1_j and grad_w1 [N, d] = scale_j (S[:d, j] - grad_gamma_j invstd_j wc_j)
 * (input_batchnorm.py). G @ W is reduced tile by tile, never stored. scratch: ceil(N / NR)
 * * NR * K + threads * (MC * K + MR * NR + D * ceil(N / NR) * NR) floats. */
void dp_fit_input_block_backward(long M, long K, long N, const float *G, const float *W,
                                 const float *y, const float *z, long D, const float *W1,
                                 const float *invstd, const float *scale, const float *wc,
                                 float *grad_w1, float *grad_gamma, float *grad_beta,
                                 float *scratch, long threads) {
    const long Np = ceil_to(N, NR), per_part = MC * K + MR * NR + D * Np;
    float *panels = scratch;
#pragma omp parallel num_threads((int)threads)
    {
        pack_panels(K, N, W, N, 1, panels);
        for (long part = omp_get_thread_num(); part < threads; part += omp_get_num_threads()) {
            float *rows = scratch + Np * K + part * per_part, *tile = rows + MC * K;
            float *sums = tile + MR * NR;  /* [D][Np], this part's */
            long r0, r1;
            part_rows(M, part, threads, &r0, &r1);
            memset(sums, 0, sizeof(float) * D * Np);
            for (long ic = r0; ic < r1; ic += MC) {
                const long ie = ic + MC < r1 ? ic + MC : r1;
                pack_rows(ic, ie, M, K, G, rows);
                for (long j = 0; j < N; j += NR) {
                    for (long i = ic; i < ie; i += MR) {
                        __m256 acc[MR][2];
#pragma GCC unroll 6
                        for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
                        micro_acc((int)K, rows + (i - ic) * K, 1, MR, panels + j * K, acc);
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
        for (long j = 0; j < N; j++) {  /* the parts' sums, in part order, then the grads */
            const long d = D - 1;
            float gg = 0.0f, S[D];
            for (long k = 0; k < D; k++) {
                S[k] = 0.0f;
                for (long part = 0; part < threads; part++)
                    S[k] += scratch[Np * K + part * per_part + MC * K + MR * NR + k * Np + j];
            }
            for (long k = 0; k < d; k++) gg += S[k] * W1[j * d + k];
            gg *= invstd[j];
            for (long k = 0; k < d; k++)
                grad_w1[j * d + k] = scale[j] * (S[k] - gg * invstd[j] * wc[j * d + k]);
            grad_gamma[j] = gg;
            grad_beta[j] = S[d];
        }
    }
}
