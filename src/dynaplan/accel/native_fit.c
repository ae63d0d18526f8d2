/* The CPU kernels behind accel/native_fit.py: a fitting step of a BatchNorm ReLU network,
 * with the first block's BatchNorm computed from its input's statistics
 * (accel/input_batchnorm.py has the algebra).
 *
 *   dp_fit_input_block: the first block's batch statistics, z = [x - mean(x), 1] [M, D]
 *                       and y = relu(z @ F^T), F [N, D] the folded first layer: one pass
 *                       that writes y and the bits of y > 0.
 *   dp_fit_linear:      C = A @ W^T + b, the second layer's forward product, with C's
 *                       column statistics where the seed's second BatchNorm follows.
 *   dp_fit_bn_relu_head, dp_fit_bn_relu_head_backward: the seed's second BatchNorm, its
 *                       ReLU and the head, one pass forward (with the mean squared error
 *                       and its gradient where a target is given) and two back.
 *   dp_fit_input_block_backward: the first block's gradients from S = z^T ((G @ W) *
 *                       (y > 0)) [D, N] (y > 0 read from its bits), all its backward pass
 *                       needs of the second layer's
 *                       input gradient G W, without writing that [M, N] gradient: each
 *                       6 x 16 tile of G W is masked and reduced in registers, straight
 *                       after the micro-kernel.
 *   dp_fit_running_stats: a BatchNorm's running statistics from its batch's.
 *   dp_fit_seed_mse:    a whole step of the seed's network under the mean squared error,
 *                       the kernels above in turn in one call (dp_fit_seed_mse_work: the
 *                       bytes of its workspace).
 *
 * Products run native_gemm.h's micro-kernel over the weight, packed into 16-column panels
 * at the start of each call (by the whole team), and rows in chunks of MC, packed in
 * blocks of MR rows (a chunk stays in L2 while every panel passes over it; packed, the
 * rows' inputs of one k share a cache line: 7-8% faster than reading them in place).
 * Rows are split in `threads` contiguous parts, as in native_kernel.c, and sums are
 * added part by part in order: results depend on the thread count, never on timing.
 * Every kernel runs one OpenMP region of torch's own threads (native_build.py). */
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
 *   z [M, d + 1] = [x - mean(x), 1],  y [M, N] = relu(z @ Ft),  mask = the bits of y > 0
 * ([M, ceil(N / 8)] bytes, bit c of byte j / 8 for column j = 8 (j / 8) + c),
 * Ft [d + 1, N] the folded layer (W * scale, beta)^T. mean(x) and the covariance C of x
 * are summed in double (work: d + d * d doubles), as are, per output j, mean [N] = W_j .
 * mean(x) + b_j, wc [N, d] = C W_j, var [N] = W_j . C W_j (biased), invstd [N] and scale
 * [N] = gamma * invstd. */
void dp_fit_input_block(long M, long d, long N, const float *x, const float *W, const float *b,
                        const float *gamma, const float *beta, double eps, float *z, float *y,
                        unsigned char *mask,
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
        unsigned char *mi = mask + i * ((N + 7) / 8);
        for (long k = 0; k < d; k++) zi[k] = (float)(x[i * d + k] - xm[k]);
        zi[d] = 1.0f;
        long j = 0;
        for (; j + 8 <= N; j += 8) {
            __m256 acc = _mm256_setzero_ps();
            for (long k = 0; k < D; k++)
                acc = _mm256_fmadd_ps(_mm256_broadcast_ss(zi + k), _mm256_loadu_ps(Ft + k * N + j), acc);
            _mm256_storeu_ps(yi + j, _mm256_max_ps(acc, _mm256_setzero_ps()));
            mi[j / 8] = (unsigned char)_mm256_movemask_ps(
                _mm256_cmp_ps(acc, _mm256_setzero_ps(), _CMP_GT_OQ));
        }
        if (j < N) mi[j / 8] = 0;
        for (; j < N; j++) {
            float acc = 0.0f;
            for (long k = 0; k < D; k++) acc += zi[k] * Ft[k * N + j];
            yi[j] = acc > 0.0f ? acc : 0.0f;
            if (acc > 0.0f) mi[j / 8] |= (unsigned char)(1u << (j % 8));
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

/* The second BatchNorm folded, in double as the first block's: invstd = 1 / sqrt(var + eps),
 * scale = gamma * invstd */
static void bn_fold(long N, const float *var, const float *gamma, double eps, float *invstd,
                    float *scale) {
    for (long j = 0; j < N; j++) {
        const double is = 1.0 / sqrt((double)var[j] + eps);
        invstd[j] = (float)is, scale[j] = (float)(gamma[j] * is);
    }
}

/* y = relu((h - mean) * scale + beta) at columns j .. j + 7 of one row, and at column j
 * alone: the same rounding (one fused multiply-add), so the same y going forward and back */
static inline __m256 bn_relu8(const float *restrict h, const float *restrict mean,
                              const float *restrict scale, const float *restrict beta, long j) {
    const __m256 v = _mm256_fmadd_ps(_mm256_sub_ps(_mm256_loadu_ps(h + j), _mm256_loadu_ps(mean + j)),
                                     _mm256_loadu_ps(scale + j), _mm256_loadu_ps(beta + j));
    return _mm256_max_ps(v, _mm256_setzero_ps());
}

static inline float bn_relu1(const float *restrict h, const float *restrict mean,
                             const float *restrict scale, const float *restrict beta, long j) {
    const float v = fmaf(h[j] - mean[j], scale[j], beta[j]);
    return v > 0.0f ? v : 0.0f;
}

/* The tail of the seed's network going forward, from the second product h [M, N] and its
 * batch statistics (mean, var): the second BatchNorm folded (bn_fold: invstd, scale [N]);
 * per row y = relu((h - mean) * scale + beta) into a row buffer (y is never stored: the
 * backward pass recomputes it from h) and the head's output o = y @ Wh [O, N]^T + bh. out
 * [M, O] gets o where not NULL; where target [M, O] is not NULL, gout [M, O] gets the
 * gradient of the mean squared error, (o - target) * 2 / (M O), and the error is returned
 * (squares summed in double per part, then part by part in order), else 0.
 * work: threads * (1 + ceil(N / 2)) doubles. */
double dp_fit_bn_relu_head(long M, long N, long O, const float *h, const float *mean,
                           const float *var, const float *gamma, const float *beta, double eps,
                           const float *Wh, const float *bh, float *invstd, float *scale,
                           float *out, const float *target, float *gout, double *work,
                           long threads) {
    const long stride = 1 + (N + 1) / 2;
    const float c = (float)(2.0 / (double)(M * O));
    bn_fold(N, var, gamma, eps, invstd, scale);
#pragma omp parallel num_threads((int)threads)
    for (long part = omp_get_thread_num(); part < threads; part += omp_get_num_threads()) {
        double squares = 0.0;
        float *y = (float *)(work + part * stride + 1);
        long r0, r1;
        part_rows(M, part, threads, &r0, &r1);
        for (long i = r0; i < r1; i++) {
            const float *hi = h + i * N;
            long j = 0;
            for (; j + 8 <= N; j += 8) _mm256_storeu_ps(y + j, bn_relu8(hi, mean, scale, beta, j));
            for (; j < N; j++) y[j] = bn_relu1(hi, mean, scale, beta, j);
            for (long o = 0; o < O; o++) {
                const float *w = Wh + o * N;
                float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
                for (long k = 0; k < N; k++) acc += y[k] * w[k];
                const float v = acc + bh[o];
                if (out) out[i * O + o] = v;
                if (target) {
                    const float diff = v - target[i * O + o];
                    gout[i * O + o] = diff * c;
                    squares += (double)diff * diff;
                }
            }
        }
        work[part * stride] = squares;
    }
    double total = 0.0;
    for (long part = 0; part < threads; part++) total += work[part * stride];
    return target ? total / (double)(M * O) : 0.0;
}

/* One row's masked head gradient at columns j .. j + 7, y there: (gout [1, O] @ Wh [O, N]) *
 * (y > 0) */
static inline __m256 masked_head_grad8(long N, long O, const float *restrict gout,
                                       const float *restrict Wh, __m256 y, long j) {
    __m256 g = _mm256_setzero_ps();
    for (long o = 0; o < O; o++)
        g = _mm256_fmadd_ps(_mm256_broadcast_ss(gout + o), _mm256_loadu_ps(Wh + o * N + j), g);
    return _mm256_and_ps(g, _mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_GT_OQ));
}

/* the same for column j alone */
static inline float masked_head_grad1(long N, long O, const float *restrict gout,
                                      const float *restrict Wh, float y, long j) {
    float g = 0.0f;
    for (long o = 0; o < O; o++) g += gout[o] * Wh[o * N + j];
    return y > 0.0f ? g : 0.0f;
}

/* the second BatchNorm's statistics of one row, folded (as the tail's arguments below) */
typedef struct {
    const float *mean, *invstd, *scale, *beta;
} folded_bn;

/* one row's share of the tail's sums, eight columns a vector: with y recomputed from h and g
 * the masked head gradient, sb += g, sg += g xhat, gw [O, N] += gout^T y, gb += gout */
static inline void head_sums(long N, long O, const float *restrict gout, const float *restrict Wh,
                             const float *restrict h, folded_bn bn, float *restrict sb,
                             float *restrict sg, float *restrict gw, float *restrict gb) {
    long j = 0;
    for (; j + 8 <= N; j += 8) {
        const __m256 y = bn_relu8(h, bn.mean, bn.scale, bn.beta, j);
        const __m256 g = masked_head_grad8(N, O, gout, Wh, y, j);
        const __m256 xhat = _mm256_mul_ps(
            _mm256_sub_ps(_mm256_loadu_ps(h + j), _mm256_loadu_ps(bn.mean + j)),
            _mm256_loadu_ps(bn.invstd + j));
        _mm256_storeu_ps(sb + j, _mm256_add_ps(_mm256_loadu_ps(sb + j), g));
        _mm256_storeu_ps(sg + j, _mm256_fmadd_ps(g, xhat, _mm256_loadu_ps(sg + j)));
        for (long o = 0; o < O; o++) {
            float *gwo = gw + o * N + j;
            _mm256_storeu_ps(gwo, _mm256_fmadd_ps(_mm256_broadcast_ss(gout + o), y,
                                                  _mm256_loadu_ps(gwo)));
        }
    }
    for (; j < N; j++) {
        const float y = bn_relu1(h, bn.mean, bn.scale, bn.beta, j);
        const float g = masked_head_grad1(N, O, gout, Wh, y, j);
        sb[j] += g;
        sg[j] = fmaf(g, (h[j] - bn.mean[j]) * bn.invstd[j], sg[j]);
        for (long o = 0; o < O; o++) gw[o * N + j] = fmaf(gout[o], y, gw[o * N + j]);
    }
    for (long o = 0; o < O; o++) gb[o] += gout[o];
}

/* one row of BatchNorm's input gradient, eight columns a vector: dh = scale (g - xhat
 * sum g xhat / M - sum g / M), with cg = sum g / M and cx = sum g xhat / M */
static inline void bn_input_grad(long N, long O, const float *restrict gout,
                                 const float *restrict Wh, const float *restrict h, folded_bn bn,
                                 const float *restrict cg, const float *restrict cx,
                                 float *restrict dh) {
    long j = 0;
    for (; j + 8 <= N; j += 8) {
        const __m256 g = masked_head_grad8(N, O, gout, Wh, bn_relu8(h, bn.mean, bn.scale, bn.beta, j), j);
        const __m256 xhat = _mm256_mul_ps(
            _mm256_sub_ps(_mm256_loadu_ps(h + j), _mm256_loadu_ps(bn.mean + j)),
            _mm256_loadu_ps(bn.invstd + j));
        const __m256 t = _mm256_fnmadd_ps(xhat, _mm256_loadu_ps(cx + j),
                                          _mm256_sub_ps(g, _mm256_loadu_ps(cg + j)));
        _mm256_storeu_ps(dh + j, _mm256_mul_ps(_mm256_loadu_ps(bn.scale + j), t));
    }
    for (; j < N; j++) {
        const float g = masked_head_grad1(N, O, gout, Wh, bn_relu1(h, bn.mean, bn.scale, bn.beta, j), j);
        const float xhat = (h[j] - bn.mean[j]) * bn.invstd[j];
        dh[j] = bn.scale[j] * fmaf(-xhat, cx[j], g - cg[j]);
    }
}

/* The tail going back, given gout [M, O] at the head's output and the second BatchNorm's
 * folding (mean, invstd, scale, beta, as going forward): per row y = relu((h - mean) * scale
 * + beta) again, g = (gout @ Wh) * (y > 0) and xhat = (h - mean) * invstd; first the sums
 * grad_beta = sum g, grad_gamma = sum g xhat, grad_Wh = gout^T y, grad_bh = sum gout (per
 * part, then part by part in order), then BatchNorm's input gradient dh = scale (g -
 * grad_beta / M - xhat grad_gamma / M). work: threads * ((2 + O) * N + O) + 2 * N floats. */
void dp_fit_bn_relu_head_backward(long M, long N, long O, const float *gout, const float *Wh,
                                  const float *h, const float *mean, const float *invstd,
                                  const float *scale, const float *beta, float *dh,
                                  float *grad_gamma, float *grad_beta, float *grad_Wh,
                                  float *grad_bh, float *work, long threads) {
    const long per_part = (2 + O) * N + O;
    const folded_bn bn = {mean, invstd, scale, beta};
    float *cg = work + threads * per_part, *cx = cg + N;  /* grad_beta / M, grad_gamma / M */
#pragma omp parallel num_threads((int)threads)
    {
        for (long part = omp_get_thread_num(); part < threads; part += omp_get_num_threads()) {
            float *sb = work + part * per_part, *sg = sb + N, *gw = sg + N, *gb = gw + O * N;
            long r0, r1;
            part_rows(M, part, threads, &r0, &r1);
            memset(sb, 0, sizeof(float) * per_part);
            for (long i = r0; i < r1; i++)
                head_sums(N, O, gout + i * O, Wh, h + i * N, bn, sb, sg, gw, gb);
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
                bn_input_grad(N, O, gout + i * O, Wh, h + i * N, bn, cg, cx, dh + i * N);
        }
    }
}

/* the eight lanes of a byte of y > 0's bits (bit c: lane c) as a mask of all-ones lanes */
static inline __m256 bits_mask(unsigned char byte) {
    const __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_castsi256_ps(
        _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(byte), bits), bits));
}

/* The first block's backward pass, given G [M, K], the gradient at the output of the Linear
 * after it (W [K, N]): with S [D, N] = z^T ((G @ W) * (y > 0)) (z, D = d + 1 and the bits of
 * y > 0, mask [M, ceil(N / 8)] bytes, as the forward pass wrote them; reading the bits, not
 * the [M, N] y, made this kernel 14% faster), per output j, grad_beta_j = S[d, j], grad_gamma_j = invstd_j S[:d, j] .
 * W1_j and grad_w1 [N, d] = scale_j (S[:d, j] - grad_gamma_j invstd_j wc_j)
 * (input_batchnorm.py). G @ W is reduced tile by tile, never stored. scratch: ceil(N / NR)
 * * NR * K + threads * (MC * K + MR * NR + D * ceil(N / NR) * NR) floats. */
void dp_fit_input_block_backward(long M, long K, long N, const float *G, const float *W,
                                 const unsigned char *mask, const float *z, long D,
                                 const float *W1,
                                 const float *invstd, const float *scale, const float *wc,
                                 float *grad_w1, float *grad_gamma, float *grad_beta,
                                 float *scratch, long threads) {
    const long Np = ceil_to(N, NR), per_part = MC * K + MR * NR + D * Np, mstride = (N + 7) / 8;
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
                                const unsigned char *mr = mask + (i + r) * mstride + j / 8;
                                const __m256 v0 = _mm256_and_ps(acc[r][0], bits_mask(mr[0]));
                                const __m256 v1 = _mm256_and_ps(acc[r][1], bits_mask(mr[1]));
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
                                const long col = j + c;
                                if (!((mask[(i + r) * mstride + col / 8] >> (col % 8)) & 1)) continue;
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

/* BatchNorm's update of its running statistics (training, with a momentum) from a batch of M
 * rows with mean and biased variance var [N]: running = lerp(running, batch, momentum), the
 * variance made unbiased (times M / (M - 1)) first, each in float as torch's lerp rounds it
 * (one fused multiply-add below a weight of 0.5); batches (the int64 count) goes up by one */
void dp_fit_running_stats(long N, long M, const float *mean, const float *var, double momentum,
                          float *running_mean, float *running_var, long long *batches) {
    const float w = (float)momentum, unbias = (float)((double)M / (double)(M - 1));
    for (long j = 0; j < N; j++) {
        const float v = var[j] * unbias;
        if (fabsf(w) < 0.5f) {
            running_mean[j] = fmaf(w, mean[j] - running_mean[j], running_mean[j]);
            running_var[j] = fmaf(w, v - running_var[j], running_var[j]);
        } else {
            running_mean[j] = mean[j] - (mean[j] - running_mean[j]) * (1.0f - w);
            running_var[j] = v - (v - running_var[j]) * (1.0f - w);
        }
    }
    *batches += 1;
}

/* pieces of one workspace, each 64-byte aligned: take(&c, bytes) is the next piece; with
 * a NULL base it only counts them, for the workspace's size */
typedef struct {
    char *base;
    size_t used;
} carver;

static void *take(carver *c, size_t bytes) {
    void *p = c->base ? c->base + c->used : NULL;
    c->used += (bytes + 63) / 64 * 64;
    return p;
}

/* what dp_fit_seed_mse keeps in its workspace (each kernel's own scratch as it documents) */
typedef struct {
    unsigned char *mask1;
    float *stats, *z, *invstd1, *scale1, *wc, *Ft, *lin_scratch, *h2, *invstd2, *scale2, *gout,
        *head_work, *block_scratch;
    double *stats_work, *colwork, *fwd_work;
} seed_layout;

static size_t seed_layout_of(void *base, long M, long d, long N1, long N2, long O, long threads,
                             seed_layout *L) {
    carver c = {(char *)base, 0};
    const long D = d + 1, P1 = ceil_to(N1, NR), P2 = ceil_to(N2, NR);
    const size_t f = sizeof(float), dbl = sizeof(double);
    L->stats = take(&c, f * 2 * (N1 + N2));
    L->z = take(&c, f * M * D);
    L->mask1 = take(&c, (size_t)M * ((N1 + 7) / 8));
    L->invstd1 = take(&c, f * N1);
    L->scale1 = take(&c, f * N1);
    L->wc = take(&c, f * N1 * d);
    L->Ft = take(&c, f * D * N1);
    L->stats_work = take(&c, dbl * (d + d * d));
    L->colwork = take(&c, dbl * threads * 2 * P2);
    L->lin_scratch = take(&c, f * (P2 * N1 + threads * (MC * N1 + MR * NR)));
    L->h2 = take(&c, f * M * N2);
    L->invstd2 = take(&c, f * N2);
    L->scale2 = take(&c, f * N2);
    L->gout = take(&c, f * M * O);
    L->fwd_work = take(&c, dbl * threads * (1 + (N2 + 1) / 2));
    L->head_work = take(&c, f * (threads * ((2 + O) * N2 + O) + 2 * N2));
    L->block_scratch = take(&c, f * (P1 * N2 + threads * (MC * N2 + MR * NR + D * P1)));
    return c.used;
}

/* the bytes of dp_fit_seed_mse's workspace */
long dp_fit_seed_mse_work(long M, long d, long N1, long N2, long O, long threads) {
    seed_layout L;
    return (long)seed_layout_of(NULL, M, d, N1, N2, O, threads, &L);
}

/* One fitting step of the seed's network (Linear BatchNorm ReLU, Linear BatchNorm ReLU,
 * Linear head; widths N1, N2, O; batch statistics) under the mean squared error against
 * target [M, O], for data x [M, d], in one call: the kernels above in turn, forward and
 * back, without returning to the caller in between. params and grads: the network's
 * parameters and their gradients in the module's order (W1, b1, gamma1, beta1, W2, b2,
 * gamma2, beta2, Wh, bh); every gradient is written except W2's, which the caller takes as
 * dh2^T y1 from the y1 [M, N1] and dh2 [M, N2] left here; b1's and b2's are zeros (each
 * BatchNorm cancels its bias). buffers: the BatchNorms' buffers in the module's order
 * (running mean, running variance, int64 batch count; twice), updated as
 * dp_fit_running_stats does with momentum1 and momentum2. work: dp_fit_seed_mse_work bytes.
 * Returns the loss. */
double dp_fit_seed_mse(long M, long d, long N1, long N2, long O, const float *x,
                       const float *target, const float *const *params, float *const *grads,
                       void *const *buffers, float *y1, float *dh2, void *work, double eps1,
                       double eps2, double momentum1, double momentum2, long threads) {
    enum { W1, B1, G1, BETA1, W2, B2, G2, BETA2, WH, BH };
    seed_layout L;
    seed_layout_of(work, M, d, N1, N2, O, threads, &L);
    float *mean1 = L.stats, *var1 = mean1 + N1, *mean2 = var1 + N1, *var2 = mean2 + N2;
    dp_fit_input_block(M, d, N1, x, params[W1], params[B1], params[G1], params[BETA1], eps1, L.z,
                       y1, L.mask1, mean1, var1, L.invstd1, L.scale1, L.wc, L.Ft, L.stats_work,
                       threads);
    dp_fit_linear(M, N1, N2, y1, params[W2], params[B2], L.h2, mean2, var2, L.colwork,
                  L.lin_scratch, threads);
    const double loss = dp_fit_bn_relu_head(M, N2, O, L.h2, mean2, var2, params[G2],
                                            params[BETA2], eps2, params[WH], params[BH],
                                            L.invstd2, L.scale2, NULL, target, L.gout,
                                            L.fwd_work, threads);
    dp_fit_bn_relu_head_backward(M, N2, O, L.gout, params[WH], L.h2, mean2, L.invstd2,
                                 L.scale2, params[BETA2], dh2, grads[G2], grads[BETA2],
                                 grads[WH], grads[BH], L.head_work, threads);
    dp_fit_input_block_backward(M, N2, N1, dh2, params[W2], L.mask1, L.z, d + 1, params[W1],
                                L.invstd1, L.scale1, L.wc, grads[W1], grads[G1], grads[BETA1],
                                L.block_scratch, threads);
    memset(grads[B1], 0, sizeof(float) * N1);
    memset(grads[B2], 0, sizeof(float) * N2);
    dp_fit_running_stats(N1, M, mean1, var1, momentum1, buffers[0], buffers[1], buffers[2]);
    dp_fit_running_stats(N2, M, mean2, var2, momentum2, buffers[3], buffers[4], buffers[5]);
    return loss;
}
