// Fused attention in fp32, FlashAttention-2's algorithm (Dao 2023), see
// flash.cuh. A thread block holds a tile of TILE query rows (forward, dQ) or
// TILE keys (dK, dV) in shared memory and walks the other side's tiles that
// its rows can see, so the (T, T) scores never exist:
//   forward: scores of the tile in shared memory, the online softmax (running
//     max and sum per row, one warp per row), the output accumulated and
//     rescaled; each row keeps its log-sum-exp.
//   backward: the probabilities rebuilt as exp(score - lse); D = rowsum(dout *
//     out) recomputed per query tile (no scratch); pass 1, one block per key
//     tile and KV head, sums dK and dV over the group's query heads and rows in
//     order; pass 2, one block per query tile and head, sums dQ over the keys in
//     order. Each output element has one owner thread and a fixed order of
//     terms: no atomics, the same bits on every run.
// Tiles: 32 rows when the shared memory holds them (a head of up to 128 on an
// A100), else 16 or 8; 128 threads a block.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/flash.cuh"

#define FLASH_THREADS 128
#define FLASH_WARPS (FLASH_THREADS / 32)

__device__ static inline bool visible(int i, int j, int len, int causal) {
    return j < len && (causal == 0 || (j <= i && (causal == 1 || j > i - causal)));
}

// the keys [*lo, *hi) some row of the query tile [i0, i1) sees
__device__ static inline void key_range(int i0, int i1, int len, int causal, int *lo, int *hi) {
    *hi = causal ? (i1 < len ? i1 : len) : len;
    *lo = causal > 1 && i0 - causal + 1 > 0 ? i0 - causal + 1 : 0;
}

// rows [r0, r0 + TILE) of x (row stride ld, this head's HS columns) into s (TILE, HS + 1); zeros past rows
__device__ static inline void load_tile(float *s, const float *x, int ld, int r0, int rows, int TILE, int HS) {
    for (int e = threadIdx.x; e < TILE * HS; e += blockDim.x) {
        int r = e / HS, d = e % HS;
        s[r * (HS + 1) + d] = r0 + r < rows ? x[(size_t)(r0 + r) * ld + d] : 0.0f;
    }
}

__device__ static inline float dot_rows(const float *a, const float *b, int HS) {
    float s = 0.0f;
    for (int d = 0; d < HS; d++) s += a[d] * b[d];
    return s;
}

// ---- forward: grid (query tiles, NH, B)
__global__ static void flash_fwd(FlashArgs a, float *out, float *lse, int TILE) {
    extern __shared__ float smem[];
    int HS = a.HS, P = HS + 1, b = blockIdx.z, h = blockIdx.y, i0 = blockIdx.x * TILE;
    int kv = h / (a.NH / a.NKV), len = a.lengths ? a.lengths[b] : a.Tk;
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    float *Qs = smem, *Ks = Qs + TILE * P, *Vs = Ks + TILE * P, *S = Vs + TILE * P, *O = S + TILE * (TILE + 1);
    float *m = O + TILE * HS, *l = m + TILE, *alpha = l + TILE;
    const float *q = a.q + (size_t)b * a.Tq * a.ldq + (size_t)h * HS;
    const float *k = a.k + (size_t)b * a.Tk * a.ldk + (size_t)kv * HS, *v = a.v + (size_t)b * a.Tk * a.ldk + (size_t)kv * HS;
    load_tile(Qs, q, a.ldq, i0, a.Tq, TILE, HS);
    for (int e = threadIdx.x; e < TILE * HS; e += blockDim.x) O[e] = 0.0f;
    for (int r = threadIdx.x; r < TILE; r += blockDim.x) m[r] = -INFINITY, l[r] = 0.0f;
    int i1 = i0 + TILE < a.Tq ? i0 + TILE : a.Tq, jlo, jhi;
    key_range(i0, i1, len, a.causal, &jlo, &jhi);
    for (int j0 = jlo - jlo % TILE; j0 < jhi; j0 += TILE) {
        __syncthreads();  // the previous tile's K, V and S are read
        load_tile(Ks, k, a.ldk, j0, a.Tk, TILE, HS);
        load_tile(Vs, v, a.ldk, j0, a.Tk, TILE, HS);
        __syncthreads();
        for (int e = threadIdx.x; e < TILE * TILE; e += blockDim.x) {
            int r = e / TILE, c = e % TILE;
            bool see = i0 + r < a.Tq && visible(i0 + r, j0 + c, len, a.causal);
            S[r * (TILE + 1) + c] = see ? a.scale * dot_rows(Qs + r * P, Ks + c * P, HS) : -INFINITY;
        }
        __syncthreads();
        // the online softmax: one warp per row, lane c the tile's key c
        for (int r = warp; r < TILE; r += FLASH_WARPS) {
            float s = lane < TILE ? S[r * (TILE + 1) + lane] : -INFINITY;
            float m_old = m[r], m_new = fmaxf(m_old, warp_max(s));
            float p = s == -INFINITY ? 0.0f : expf(s - m_new);
            float sum = warp_sum(p);
            if (lane < TILE) S[r * (TILE + 1) + lane] = p;
            if (lane == 0) {
                float f = m_old == -INFINITY ? 0.0f : expf(m_old - m_new);
                alpha[r] = f, m[r] = m_new, l[r] = l[r] * f + sum;
            }
        }
        __syncthreads();
        for (int e = threadIdx.x; e < TILE * HS; e += blockDim.x) {
            int r = e / HS, d = e % HS;
            float o = O[e] * alpha[r];
            for (int c = 0; c < TILE; c++) o += S[r * (TILE + 1) + c] * Vs[c * P + d];
            O[e] = o;
        }
    }
    __syncthreads();
    float *o = out + (size_t)b * a.Tq * a.ldo + (size_t)h * HS;
    for (int e = threadIdx.x; e < TILE * HS; e += blockDim.x) {
        int r = e / HS, d = e % HS;
        if (i0 + r < a.Tq) o[(size_t)(i0 + r) * a.ldo + d] = l[r] > 0.0f ? O[e] / l[r] : 0.0f;
    }
    for (int r = threadIdx.x; r < TILE; r += blockDim.x)
        if (i0 + r < a.Tq) lse[((size_t)b * a.NH + h) * a.Tq + i0 + r] = l[r] > 0.0f ? m[r] + logf(l[r]) : INFINITY;
}

// The query tile's rows of dout into dOs, their lse and D = rowsum(dout * out) (one warp per row,
// a fixed tree); rows past Tq: lse +inf (probabilities 0)
__device__ static inline void load_query_side(float *dOs, float *lse_s, float *D_s, const FlashArgs &a, const float *dout,
                                              const float *out, const float *lse, int b, int h, int i0, int TILE) {
    int HS = a.HS, lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const float *dob = dout + (size_t)b * a.Tq * a.ldo + (size_t)h * HS, *ob = out + (size_t)b * a.Tq * a.ldo + (size_t)h * HS;
    load_tile(dOs, dob, a.ldo, i0, a.Tq, TILE, HS);
    for (int r = warp; r < TILE; r += FLASH_WARPS) {
        int i = i0 + r;
        float s = 0.0f;
        if (i < a.Tq)
            for (int d = lane; d < HS; d += 32) s += dob[(size_t)i * a.ldo + d] * ob[(size_t)i * a.ldo + d];
        s = warp_sum(s);
        if (lane == 0) {
            D_s[r] = s;
            lse_s[r] = i < a.Tq ? lse[((size_t)b * a.NH + h) * a.Tq + i] : INFINITY;
        }
    }
}

// P (probabilities) and dS (d scores, the scale included) of query tile i0 x key tile j0
__device__ static inline void probs_and_dscores(float *Pm, float *dS, const float *Qs, const float *Ks, const float *dOs,
                                                const float *Vs, const float *lse_s, const float *D_s, const FlashArgs &a,
                                                int i0, int j0, int len, int TILE) {
    int P = a.HS + 1;
    for (int e = threadIdx.x; e < TILE * TILE; e += blockDim.x) {
        int r = e / TILE, c = e % TILE;
        float p = 0.0f, ds = 0.0f;
        if (i0 + r < a.Tq && visible(i0 + r, j0 + c, len, a.causal)) {
            p = expf(a.scale * dot_rows(Qs + r * P, Ks + c * P, a.HS) - lse_s[r]);
            ds = p * (dot_rows(dOs + r * P, Vs + c * P, a.HS) - D_s[r]) * a.scale;
        }
        Pm[r * (TILE + 1) + c] = p, dS[r * (TILE + 1) + c] = ds;
    }
}

// ---- backward pass 1: grid (key tiles, NKV, B): dK, dV of the tile's keys over the group's heads
__global__ static void flash_bwd_kv(FlashArgs a, const float *out, const float *lse, const float *dout, float *dk,
                                    float *dv, int TILE) {
    extern __shared__ float smem[];
    int HS = a.HS, P = HS + 1, b = blockIdx.z, kv = blockIdx.y, j0 = blockIdx.x * TILE, group = a.NH / a.NKV;
    int len = a.lengths ? a.lengths[b] : a.Tk;
    float *Ks = smem, *Vs = Ks + TILE * P, *Qs = Vs + TILE * P, *dOs = Qs + TILE * P, *Pm = dOs + TILE * P;
    float *dS = Pm + TILE * (TILE + 1), *dK = dS + TILE * (TILE + 1), *dV = dK + TILE * HS, *lse_s = dV + TILE * HS;
    float *D_s = lse_s + TILE;
    size_t kofs = (size_t)b * a.Tk * a.ldk + (size_t)kv * HS;
    load_tile(Ks, a.k + kofs, a.ldk, j0, a.Tk, TILE, HS);
    load_tile(Vs, a.v + kofs, a.ldk, j0, a.Tk, TILE, HS);
    for (int e = threadIdx.x; e < TILE * HS; e += blockDim.x) dK[e] = dV[e] = 0.0f;
    // the query rows that see a key of the tile: from j0 when causal, to j1 - 1 + W in a window
    int j1 = j0 + TILE < a.Tk ? j0 + TILE : a.Tk;
    int ilo = a.causal ? j0 : 0, ihi = a.causal > 1 && j1 - 1 + a.causal < a.Tq ? j1 - 1 + a.causal : a.Tq;
    if (j0 >= len) ihi = ilo;  // every key of the tile is padding
    for (int h = kv * group; h < (kv + 1) * group; h++) {
        const float *q = a.q + (size_t)b * a.Tq * a.ldq + (size_t)h * HS;
        for (int i0 = ilo - ilo % TILE; i0 < ihi; i0 += TILE) {
            __syncthreads();  // the previous tile's Q, dO, P, dS are read
            load_tile(Qs, q, a.ldq, i0, a.Tq, TILE, HS);
            load_query_side(dOs, lse_s, D_s, a, dout, out, lse, b, h, i0, TILE);
            __syncthreads();
            probs_and_dscores(Pm, dS, Qs, Ks, dOs, Vs, lse_s, D_s, a, i0, j0, len, TILE);
            __syncthreads();
            // dV[c] += sum_r P[r][c] dO[r]; dK[c] += sum_r dS[r][c] Q[r], r in order
            for (int e = threadIdx.x; e < TILE * HS; e += blockDim.x) {
                int c = e / HS, d = e % HS;
                float gv = dV[e], gk = dK[e];
                for (int r = 0; r < TILE; r++) {
                    gv += Pm[r * (TILE + 1) + c] * dOs[r * P + d];
                    gk += dS[r * (TILE + 1) + c] * Qs[r * P + d];
                }
                dV[e] = gv, dK[e] = gk;
            }
        }
    }
    __syncthreads();
    for (int e = threadIdx.x; e < TILE * HS; e += blockDim.x) {
        int c = e / HS, d = e % HS;
        if (j0 + c < a.Tk) {
            size_t at = kofs + (size_t)(j0 + c) * a.ldk + d;
            dk[at] = dK[e], dv[at] = dV[e];
        }
    }
}

// ---- backward pass 2: grid (query tiles, NH, B): dQ of the tile's rows over the keys they see
__global__ static void flash_bwd_q(FlashArgs a, const float *out, const float *lse, const float *dout, float *dq, int TILE) {
    extern __shared__ float smem[];
    int HS = a.HS, P = HS + 1, b = blockIdx.z, h = blockIdx.y, i0 = blockIdx.x * TILE;
    int kv = h / (a.NH / a.NKV), len = a.lengths ? a.lengths[b] : a.Tk;
    float *Qs = smem, *dOs = Qs + TILE * P, *Ks = dOs + TILE * P, *Vs = Ks + TILE * P, *Pm = Vs + TILE * P;
    float *dS = Pm + TILE * (TILE + 1), *dQ = dS + TILE * (TILE + 1), *lse_s = dQ + TILE * HS, *D_s = lse_s + TILE;
    size_t qofs = (size_t)b * a.Tq * a.ldq + (size_t)h * HS, kofs = (size_t)b * a.Tk * a.ldk + (size_t)kv * HS;
    load_tile(Qs, a.q + qofs, a.ldq, i0, a.Tq, TILE, HS);
    load_query_side(dOs, lse_s, D_s, a, dout, out, lse, b, h, i0, TILE);
    for (int e = threadIdx.x; e < TILE * HS; e += blockDim.x) dQ[e] = 0.0f;
    int i1 = i0 + TILE < a.Tq ? i0 + TILE : a.Tq, jlo, jhi;
    key_range(i0, i1, len, a.causal, &jlo, &jhi);
    for (int j0 = jlo - jlo % TILE; j0 < jhi; j0 += TILE) {
        __syncthreads();
        load_tile(Ks, a.k + kofs, a.ldk, j0, a.Tk, TILE, HS);
        load_tile(Vs, a.v + kofs, a.ldk, j0, a.Tk, TILE, HS);
        __syncthreads();
        probs_and_dscores(Pm, dS, Qs, Ks, dOs, Vs, lse_s, D_s, a, i0, j0, len, TILE);
        __syncthreads();
        // dQ[r] += sum_c dS[r][c] K[c], c in order
        for (int e = threadIdx.x; e < TILE * HS; e += blockDim.x) {
            int r = e / HS, d = e % HS;
            float g = dQ[e];
            for (int c = 0; c < TILE; c++) g += dS[r * (TILE + 1) + c] * Ks[c * P + d];
            dQ[e] = g;
        }
    }
    __syncthreads();
    for (int e = threadIdx.x; e < TILE * HS; e += blockDim.x) {
        int r = e / HS, d = e % HS;
        if (i0 + r < a.Tq) dq[qofs + (size_t)(i0 + r) * a.ldq + d] = dQ[e];
    }
}

// ---- launching: the largest tile whose shared memory the device gives a block
static size_t fwd_floats(int T, int HS) { return (size_t)3 * T * (HS + 1) + (size_t)T * (T + 1) + (size_t)T * HS + 3 * T; }
static size_t bwd_kv_floats(int T, int HS) {
    return (size_t)4 * T * (HS + 1) + (size_t)2 * T * (T + 1) + (size_t)2 * T * HS + 2 * T;
}
static size_t bwd_q_floats(int T, int HS) { return (size_t)4 * T * (HS + 1) + (size_t)2 * T * (T + 1) + (size_t)T * HS + 2 * T; }

static size_t shared_limit(void) {
    static int limit;
    if (!limit) {
        int dev;
        CUDA_CHECK(cudaGetDevice(&dev));
        CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    }
    return (size_t)limit;
}

static int tile_for(int HS) {
    for (int t = 32; t >= 8; t /= 2)
        if (sizeof(float) * bwd_kv_floats(t, HS) <= shared_limit()) return t;
    cuda_fail("attention", __FILE__, __LINE__, "head size too large for the fused attention's shared memory");
    return 0;
}

template <typename K>
static void allow_shared(K kernel, size_t bytes) {
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

void flash_forward(const FlashArgs &a, float *out, float *lse) {
    if (a.B <= 0 || a.Tq <= 0 || a.NH <= 0 || a.HS <= 0) return;
    int T = tile_for(a.HS);
    size_t bytes = sizeof(float) * fwd_floats(T, a.HS);
    allow_shared(flash_fwd, bytes);
    dim3 grid((unsigned int)((a.Tq + T - 1) / T), (unsigned int)a.NH, (unsigned int)a.B);
    flash_fwd<<<grid, FLASH_THREADS, bytes>>>(a, out, lse, T);
    CUDA_LAUNCHED("flash_fwd");
}

void flash_backward(const FlashArgs &a, const float *out, const float *lse, const float *dout, float *dq, float *dk,
                    float *dv) {
    if (a.B <= 0 || a.NH <= 0 || a.HS <= 0) return;
    int T = tile_for(a.HS);
    if (a.Tk > 0) {
        size_t bytes = sizeof(float) * bwd_kv_floats(T, a.HS);
        allow_shared(flash_bwd_kv, bytes);
        dim3 grid((unsigned int)((a.Tk + T - 1) / T), (unsigned int)a.NKV, (unsigned int)a.B);
        flash_bwd_kv<<<grid, FLASH_THREADS, bytes>>>(a, out, lse, dout, dk, dv, T);
        CUDA_LAUNCHED("flash_bwd_kv");
    }
    if (a.Tq > 0) {
        size_t bytes = sizeof(float) * bwd_q_floats(T, a.HS);
        allow_shared(flash_bwd_q, bytes);
        dim3 grid((unsigned int)((a.Tq + T - 1) / T), (unsigned int)a.NH, (unsigned int)a.B);
        flash_bwd_q<<<grid, FLASH_THREADS, bytes>>>(a, out, lse, dout, dq, T);
        CUDA_LAUNCHED("flash_bwd_q");
    }
}
