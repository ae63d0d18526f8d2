/* The CPU kernel behind NativeRollout (accel/native_rollout.py, which documents it and
 * builds this file with the system C compiler: -O3 -march=native -fopenmp, -lm).
 *
 * dp_rollout runs a dynamics MLP, or one member of a TS-inf ensemble with its Gaussian
 * noise (and optionally a learned reward MLP on the same input), along every row's action
 * sequence: the whole horizon of one plan call's objective in one call. Each OpenMP thread owns a contiguous block of rows and carries them through every
 * step; the process's OpenMP runtime is torch's own (libgomp is loaded once, by soname), so
 * the threads are torch's and no second pool spins against it.
 *
 * Per layer: C = act(A W + b) by a 6 x 16 register-blocked AVX2 micro-kernel over weights
 * packed once per fit in 16-column panels ([K][16] each), bias and activation applied in
 * registers before the store. The heads are dot products: the dynamics head adds its
 * output to the state in place, the reward head writes rew[r, t]. The micro-kernel is
 * native_gemm.h's, shared with the fitting kernels (native_fit.c). */
#include "native_gemm.h"
#include <math.h>
#include <omp.h>
#include <string.h>

/* C [M, N] = act(A [M, K] @ W + b), W packed as N / NR panels of [K][NR]; M a multiple of
 * MR, N of NR. Panels outermost: a panel stays in cache while every row block reads it. */
static void layer(int M, int K, int N, const float *A, long lda, const float *W,
                  const float *b, float *C, int act) {
    for (int j = 0; j < N; j += NR)
        for (int i = 0; i < M; i += MR)
            micro(K, A + i * lda, lda, W + (long)j * K, b + j, C + (long)i * N + j, N, act);
}

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* out[r * ldo + o] (+)= b[o] + h[r] . w[o] for r < M, o < D; h [M, K], w [D, K], K a
 * multiple of 16 (two accumulators per output break the FMA dependency chain) */
static void head(int M, int K, int D, const float *h, const float *w, const float *b,
                 float *out, long ldo, int add) {
    for (int r = 0; r < M; r++) {
        const float *hr = h + (long)r * K;
        for (int o = 0; o < D; o++) {
            const float *wo = w + (long)o * K;
            __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
            for (int k = 0; k < K; k += 16) {
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(hr + k), _mm256_loadu_ps(wo + k), s0);
                s1 = _mm256_fmadd_ps(_mm256_loadu_ps(hr + k + 8), _mm256_loadu_ps(wo + k + 8), s1);
            }
            const float y = hsum(_mm256_add_ps(s0, s1)) + b[o];
            if (add) out[r * ldo + o] += y; else out[r * ldo + o] = y;
        }
    }
}

/* One network's layout, read from the int64 table: depth, act, out, then per hidden layer
 * (K, N, weight offset, bias offset), then the head's (K, weight offset, bias offset), then
 * a flag and, where it is 1 (a Gaussian ensemble member), its log-variance head (weight
 * and bias offsets, as the head's) and the offsets of its bounds max, span and std offset
 * [out] (accel/fused_ensemble.py: std = exp(offset + softplus(span - softplus(max - raw)) / 2)). */
typedef struct { long depth, act, out; const long *layers, *head, *var; } net_t;

static net_t net_at(const long *layout) {
    const long *head = layout + 3 + 4 * layout[0];
    net_t n = {layout[0], layout[1], layout[2], layout + 3, head, head[3] ? head + 4 : 0};
    return n;
}

static long net_size(const long *layout) {
    return 3 + 4 * layout[0] + 4 + (layout[3 + 4 * layout[0] + 3] ? 5 : 0);
}

static inline float softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

/* the last hidden layer's activations of rows x [M, lda] (M a multiple of MR) */
static const float *hidden(net_t n, int M, const float *x, long lda, const float *params,
                           float *ha, float *hb) {
    const float *in = x;
    float *out = ha;
    for (long l = 0; l < n.depth; l++) {
        const long *L = n.layers + 4 * l;
        layer(M, (int)L[0], (int)L[1], in, l == 0 ? lda : L[0], params + L[2], params + L[3],
              out, (int)n.act);
        in = out;
        out = out == ha ? hb : ha;
    }
    return in;
}

/* state0 [R, O], actions [R, H, A] -> traj [R, H + 1, O] and, with a reward net
 * (nets == 2), rew [R, H]. A dynamics net with a log-variance head adds std * noise to
 * each step's change, noise [H, R, O] standard normal. The rows run in `threads` parts;
 * scratch holds, per part, rows_per_thread x (2 O + A + 2 width) floats, rows_per_thread
 * (a multiple of MR) covering a part's row blocks and width the widest padded hidden
 * layer. Returns 0, or 1 when the layout does not fit the shapes. */
int dp_rollout(long R, long H, long O, long A, const float *state0, const float *actions,
               const float *noise, float *traj, float *rew, long nets, const long *layout,
               const float *params, float *scratch, long rows_per_thread, long width,
               long threads) {
    const net_t dyn = net_at(layout);
    const net_t rwd = nets > 1 ? net_at(layout + net_size(layout)) : dyn;
    const long I = O + A, blocks = (R + MR - 1) / MR;
    if (dyn.out != O || dyn.layers[0] != I || (nets > 1 && rwd.out != 1)) return 1;
    if ((dyn.var != 0) != (noise != 0)) return 1;
#pragma omp parallel num_threads((int)threads)
    for (long part = omp_get_thread_num(); part < threads; part += omp_get_num_threads()) {
        /* part p of `threads` takes a contiguous run of row blocks and its own scratch
         * (so fewer threads than asked for, as in a nested region, still cover every row) */
        const long b0 = blocks * part / threads, b1 = blocks * (part + 1) / threads;
        const long r0 = b0 * MR, m = (b1 - b0) * MR, live = (R < r0 + m ? R : r0 + m) - r0;
        float *x = scratch + part * rows_per_thread * (I + O + 2 * width);
        float *ha = x + rows_per_thread * I, *hb = ha + rows_per_thread * width;
        float *raw = hb + rows_per_thread * width;  /* the log-variance head's output */
        if (m == 0) continue;
        memset(x, 0, sizeof(float) * m * I);
        for (long r = 0; r < live; r++) {
            memcpy(x + r * I, state0 + (r0 + r) * O, sizeof(float) * O);
            memcpy(traj + (r0 + r) * (H + 1) * O, state0 + (r0 + r) * O, sizeof(float) * O);
        }
        for (long t = 0; t < H; t++) {
            for (long r = 0; r < live; r++)
                memcpy(x + r * I + O, actions + ((r0 + r) * H + t) * A, sizeof(float) * A);
            if (nets > 1) {  /* the reward reads [s_t, a_t] before the state moves on */
                const float *h = hidden(rwd, (int)m, x, I, params, ha, hb);
                head((int)live, (int)rwd.head[0], 1, h, params + rwd.head[1],
                     params + rwd.head[2], rew + r0 * H + t, H, 0);
            }
            const float *h = hidden(dyn, (int)m, x, I, params, ha, hb);
            if (dyn.var) {  /* a sampled Gaussian member: std from the bounded log-variance */
                head((int)live, (int)dyn.head[0], (int)O, h, params + dyn.var[0],
                     params + dyn.var[1], raw, O, 0);
                const float *vmax = params + dyn.var[2], *span = params + dyn.var[3],
                            *offset = params + dyn.var[4];
                for (long r = 0; r < live; r++)
                    for (long o = 0; o < O; o++) {
                        const float above = softplus(span[o] - softplus(vmax[o] - raw[r * O + o]));
                        raw[r * O + o] = expf(offset[o] + 0.5f * above) *
                                         noise[(t * R + r0 + r) * O + o];
                    }
            }
            head((int)live, (int)dyn.head[0], (int)O, h, params + dyn.head[1],
                 params + dyn.head[2], x, I, 1);
            for (long r = 0; dyn.var && r < live; r++)
                for (long o = 0; o < O; o++) x[r * I + o] += raw[r * O + o];
            for (long r = 0; r < live; r++)
                memcpy(traj + ((r0 + r) * (H + 1) + t + 1) * O, x + r * I, sizeof(float) * O);
        }
    }
    return 0;
}
