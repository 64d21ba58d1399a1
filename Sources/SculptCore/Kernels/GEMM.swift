// Single-precision GEMM: C = alpha * op(A) * op(B) + beta * C, row-major with leading dimensions.
//
// Design (Goto/BLIS style, tuned on an AVX-512 AMD EPYC: 48 KiB L1d, 1 MiB L2 per core):
//  * Micro-kernel: an R x 32 tile of C (R <= 8) in 2R SIMD16<Float> accumulators (zmm
//    registers). Each k step loads one 32-float row of B (two SIMD16) and broadcasts R values
//    of A; the 8 x 32 shape runs at the FMA peak when its operands are in L1/L2.
//    A is read as R rows at a runtime stride (kc when packed, lda in place) and B as rows of
//    32 floats at a runtime stride (32 in packed panels, ldb when B is used in place).
//  * Packing makes the four transpose cases look the same to the kernel: A blocks are packed
//    row-major (mc x kc), B blocks into 32-column k-major panels (kc x 32); transposed
//    operands go through 16x16 in-register transposes.
//  * Loop order: pc (KC = 256 depth) -> ic (MC rows) -> pack A block (in L3, read once per
//    column block) -> jc (NC = 512 columns) -> pack B block (KC x NC = 512 KiB, stays in L2)
//    -> ir (8-row micro-panel of A, 8 KiB, stays in L1) -> jr (32-column B panels streamed
//    from L2). C is walked along rows, which suits the TLB and the prefetchers for large ldc.
//    Every operand is packed once for matrices up to MC rows; a plain A whose blocks would be
//    read only once (n <= NC) is not packed at all.
//  * Few rows of op(A) (batch-1 inference): B is used in place — row-streaming kernels with
//    up to 256 columns per call when B is not transposed, dot-product kernels along k when it
//    is — so nothing of B is copied. Up to 64 rows with B transposed (x·Wᵀ of a Linear layer),
//    the product is computed as Cᵀ = W·xᵀ: W becomes the in-place A operand and only the small
//    x is packed (a strided transpose of all of W per call cost as much as the multiply).
//  * Threads split C into disjoint rectangles of whole micro-panels and run independent
//    serial GEMMs with their own packing buffers (allocated once per call, 64-byte aligned).
//    Batched GEMMs that are small run one whole GEMM per task instead.

/// Rows of C computed per micro-kernel call.
private let gemmMR = 8
/// Columns of C computed per micro-kernel call (two SIMD16<Float>).
private let gemmNR = 32

/// Cache blocking. KC x NC floats of packed B (512 KiB) stay in the per-core L2; an 8 x KC
/// micro-panel of A (8 KiB) stays in L1 while the B panels stream past it; the packed
/// MC x KC block of A (2 MiB) lives in L3.
private enum GEMMBlocking {
    static let kc = 256
    static let nc = 512
    static let mc = 2048
    /// Below this many rows of op(A), B (when not transposed) is read in place, not packed.
    static let directBMaxRows = 16
    /// Up to this many rows of op(A), a transposed B is used in place through dot products.
    static let dotMaxRows = 8
    /// Up to this many rows of op(A) (and A not transposed), a transposed B is handled as
    /// Cᵀ = B·Aᵀ (`gemmSwapped`) so that B is not transposed into packed panels on every call.
    static let swappedMaxRows = 256
    /// Below this many multiply-adds a GEMM runs on one thread.
    static let parallelMinimumMACs = 1 << 21
    /// Few rows against a transposed B (x·Wᵀ at decode time) stream W once and are bound by
    /// memory, not arithmetic: they split over the pool from a much smaller size.
    static let parallelMinimumDotMACs = 1 << 15
}

// MARK: - Public API

/// C = alpha * op(A) * op(B) + beta * C (+ bias on every row). op(A) is m×k, op(B) is k×n, C
/// is m×n (all row-major). transA: A is stored k×m (row-major, leading dim lda) and used
/// transposed. Likewise transB (B stored n×k). beta == 0 overwrites C without reading it.
/// `bias` (n values) is added to each row of C as its tiles are finished, while they are in
/// cache: a Linear layer's x·Wᵀ + b without a second pass over the output.
public func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                  a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                  beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, bias: UnsafePointer<Float>? = nil, pool: ThreadPool) {
    let p = GEMMProblem(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                        a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, bias: bias)
    if m == 0 || n == 0 { return }
    if k == 0 || alpha == 0 {
        gemmScaleC(p, rows: 0..<m, cols: 0..<n)
        if let bias { addBias(bias, to: c, rows: m, cols: n, ldc: ldc) }
        return
    }
    let macs = m * n * k
    let minimum = transB && m <= GEMMBlocking.dotMaxRows ? GEMMBlocking.parallelMinimumDotMACs : GEMMBlocking.parallelMinimumMACs
    let threads = macs < minimum ? 1 : pool.threadCount
    if threads == 1 {
        gemmSerial(p, rows: 0..<m, cols: 0..<n)
        return
    }
    // Split C into a tm x tn grid of whole micro-panels, preferring the split that keeps the
    // per-thread rectangles square-ish (least packing traffic).
    let mPanels = (m + gemmMR - 1) / gemmMR, nPanels = (n + gemmNR - 1) / gemmNR
    var best = (tm: 1, tn: 1, cost: Double.infinity)
    for tm in 1...threads where threads % tm == 0 {
        let tn = threads / tm
        if tm > mPanels || tn > nPanels { continue }
        let rows = Double((mPanels + tm - 1) / tm * gemmMR), cols = Double((nPanels + tn - 1) / tn * gemmNR)
        let cost = rows * cols * 64 + rows + cols  // balance first, then packing traffic
        if cost < best.cost { best = (tm, tn, cost) }
    }
    let tm = best.tm, tn = best.tn
    if tm * tn == 1 {
        gemmSerial(p, rows: 0..<m, cols: 0..<n)
        return
    }
    pool.parallelFor(tm * tn) { t in
        let (ti, tj) = t.quotientAndRemainder(dividingBy: tn)
        let r0 = min(m, mPanels * ti / tm * gemmMR), r1 = min(m, mPanels * (ti + 1) / tm * gemmMR)
        let c0 = min(n, nPanels * tj / tn * gemmNR), c1 = min(n, nPanels * (tj + 1) / tn * gemmNR)
        if r0 < r1 && c0 < c1 { gemmSerial(p, rows: r0..<r1, cols: c0..<c1) }
    }
}

/// `batch` independent GEMMs; matrix i of A starts at a + i*strideA (same for B, C).
/// Small GEMMs are spread over the pool one whole GEMM per task; large ones are each split
/// across the pool.
public func sgemmBatched(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                         a: UnsafePointer<Float>, lda: Int, strideA: Int, b: UnsafePointer<Float>, ldb: Int, strideB: Int,
                         beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int, batch: Int, pool: ThreadPool) {
    precondition(batch >= 0, "sgemmBatched: negative batch")
    if batch == 0 || m == 0 || n == 0 { return }
    let threads = pool.threadCount
    let macs = m * n * k
    // One whole GEMM per task when the GEMMs are too small to split well, or when the batch
    // divides evenly (or is long enough) to keep every thread equally busy.
    let acrossBatch = threads > 1 && batch > 1
        && (macs < 2 * GEMMBlocking.parallelMinimumMACs || batch % threads == 0 || batch >= 4 * threads)
    if !acrossBatch {
        for i in 0..<batch {
            sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                  a: a + i * strideA, lda: lda, b: b + i * strideB, ldb: ldb,
                  beta: beta, c: c + i * strideC, ldc: ldc, pool: pool)
        }
        return
    }
    pool.parallelRanges(batch) { range in
        for i in range {
            sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                  a: a + i * strideA, lda: lda, b: b + i * strideB, ldb: ldb,
                  beta: beta, c: c + i * strideC, ldc: ldc, pool: .serial)
        }
    }
}

// MARK: - Problem description

private struct GEMMProblem {
    let transA: Bool, transB: Bool
    let m: Int, n: Int, k: Int
    let alpha: Float, beta: Float
    let a: UnsafePointer<Float>, lda: Int
    let b: UnsafePointer<Float>, ldb: Int
    let c: UnsafeMutablePointer<Float>, ldc: Int
    /// Added to every row of C (indexed by C's column) once its sum is complete.
    let bias: UnsafePointer<Float>?

    init(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
         a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
         beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, bias: UnsafePointer<Float>? = nil) {
        precondition(m >= 0 && n >= 0 && k >= 0, "sgemm: negative dimension")
        precondition(lda >= (transA ? m : k), "sgemm: lda smaller than a row of A")
        precondition(ldb >= (transB ? k : n), "sgemm: ldb smaller than a row of B")
        precondition(ldc >= n, "sgemm: ldc smaller than a row of C")
        self.transA = transA; self.transB = transB
        self.m = m; self.n = n; self.k = k
        self.alpha = alpha; self.beta = beta
        self.a = a; self.lda = lda; self.b = b; self.ldb = ldb; self.c = c; self.ldc = ldc
        self.bias = bias
    }
}

/// C[rows, cols] = beta * C[rows, cols] (beta == 0 writes zeros without reading).
private func gemmScaleC(_ p: GEMMProblem, rows: Range<Int>, cols: Range<Int>) {
    if p.beta == 1 { return }
    for i in rows {
        let row = p.c + i * p.ldc
        if p.beta == 0 {
            for j in cols { row[j] = 0 }
        } else {
            for j in cols { row[j] *= p.beta }
        }
    }
}

// MARK: - Serial blocked driver

/// Computes C[rows, cols] of problem `p` on the calling thread.
private func gemmSerial(_ p: GEMMProblem, rows: Range<Int>, cols: Range<Int>) {
    if cols.count == 1 && !p.transA && (p.transB || p.ldb == 1) {
        // Matrix-vector product: the one column of op(B) is contiguous, so every C element is
        // a dot product of a row of A with it.
        let j = cols.lowerBound
        let column = GEMMProblem(transA: false, transB: true, m: p.m, n: 1, k: p.k, alpha: p.alpha,
                                 a: p.a, lda: p.lda, b: p.transB ? p.b + j * p.ldb : p.b + j, ldb: p.k,
                                 beta: p.beta, c: p.c + j, ldc: p.ldc)
        gemmDot(column, rows: rows, cols: 0..<1)
    } else if !p.transB && rows.count <= GEMMBlocking.directBMaxRows {
        gemmFewRows(p, rows: rows, cols: cols)
    } else if p.transB && rows.count <= GEMMBlocking.dotMaxRows {
        gemmDot(p, rows: rows, cols: cols)
    } else if p.transB && !p.transA && rows.count <= GEMMBlocking.swappedMaxRows {
        gemmSwapped(p, rows: rows, cols: cols)
    } else {
        gemmBlocked(p, rows: rows, cols: cols)  // adds the bias per finished tile itself
        return
    }
    // The other paths handle few rows: the rectangle is small and still in cache.
    if let bias = p.bias {
        addBias(bias + cols.lowerBound, to: p.c + rows.lowerBound * p.ldc + cols.lowerBound, rows: rows.count, cols: cols.count, ldc: p.ldc)
    }
}

/// c[r, j] += bias[j] for r < rows, j < cols.
@inline(__always)
private func addBias(_ bias: UnsafePointer<Float>, to c: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ldc: Int) {
    if cols == gemmNR {
        // A finished micro-tile: two vectors of bias, reused down its rows.
        let b = UnsafeRawPointer(bias)
        let b0 = b.loadUnaligned(as: SIMD16<Float>.self), b1 = b.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
        for r in 0..<rows {
            let row = UnsafeMutableRawPointer(c + r * ldc)
            row.storeBytes(of: row.loadUnaligned(as: SIMD16<Float>.self) + b0, as: SIMD16<Float>.self)
            row.storeBytes(of: row.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self) + b1, toByteOffset: 64, as: SIMD16<Float>.self)
        }
        return
    }
    for r in 0..<rows {
        let row = c + r * ldc
        for j in 0..<cols { row[j] += bias[j] }
    }
}

/// Allocates one 64-byte aligned scratch block split into `sizes` floats each.
private struct GEMMScratch {
    let raw: UnsafeMutableRawPointer
    let parts: [UnsafeMutablePointer<Float>]
    init(_ sizes: [Int]) {
        var offsets: [Int] = []
        var total = 0
        for s in sizes {
            offsets.append(total)
            total += (s * 4 + 63) / 64 * 64
        }
        let base = UnsafeMutableRawPointer.allocate(byteCount: max(total, 64), alignment: 64)
        raw = base
        parts = zip(offsets, sizes).map { (base + $0.0).bindMemory(to: Float.self, capacity: max($0.1, 1)) }
    }
    func free() { raw.deallocate() }
}

/// Packs op(A)[rows i0..<i0+mc, depth p0..<p0+kc] row-major into dst (row stride kc).
@inline(__always)
private func packA(_ p: GEMMProblem, i0: Int, mc: Int, p0: Int, kc: Int, dst: UnsafeMutablePointer<Float>) {
    if p.transA {
        transposeCopy(p.a + p0 * p.lda + i0, lds: p.lda, rows: kc, cols: mc, dst: dst, ldd: kc)
    } else {
        copyRows(p.a + i0 * p.lda + p0, lds: p.lda, rows: mc, cols: kc, dst: dst, ldd: kc)
    }
}

/// The general path: packed A and B blocks, 8 x 32 micro-tiles.
private func gemmBlocked(_ p: GEMMProblem, rows: Range<Int>, cols: Range<Int>) {
    let m = rows.count, n = cols.count, k = p.k
    let MR = gemmMR, NR = gemmNR
    // Depth blocks of (nearly) equal size, at most KC each.
    let kBlocks = (k + GEMMBlocking.kc - 1) / GEMMBlocking.kc
    let kcMax = (k + kBlocks - 1) / kBlocks
    let ncMax = min(GEMMBlocking.nc, (n + NR - 1) / NR * NR)
    let mcMax = min(GEMMBlocking.mc, (m + MR - 1) / MR * MR)
    // Packing A pays off when each packed block is reused across several column blocks (and
    // A must be packed when transposed). A plain A whose blocks are read once is used in place,
    // unless its rows are too short for the hardware prefetcher to stream them (small k).
    let aInPlace = !p.transA && n <= ncMax && kcMax >= 128
    let scratch = GEMMScratch([aInPlace ? 0 : mcMax * kcMax, ncMax * kcMax, MR * NR])
    defer { scratch.free() }
    let ap = scratch.parts[0], bp = scratch.parts[1], tmp = scratch.parts[2]

    var pc = 0
    while pc < k {
        let kc = min(kcMax, k - pc)
        let beta: Float = pc == 0 ? p.beta : 1
        let lastDepthBlock = pc + kc == k
        var ic = 0
        while ic < m {
            let mc = min(mcMax, m - ic)
            let i0 = rows.lowerBound + ic
            // A block: packed (row stride kc), or used in place when it is read only once.
            let aBlock: UnsafePointer<Float>, aStride: Int
            if aInPlace {
                aBlock = p.a + i0 * p.lda + pc
                aStride = p.lda
            } else {
                packA(p, i0: i0, mc: mc, p0: pc, kc: kc, dst: ap)
                aBlock = UnsafePointer(ap)
                aStride = kc
            }
            var jc = 0
            while jc < n {
                let nc = min(ncMax, n - jc)
                let j0 = cols.lowerBound + jc
                if p.transB {
                    packBPanelsT(p.b + j0 * p.ldb + pc, ldb: p.ldb, kc: kc, nc: nc, dst: bp)
                } else {
                    packBPanelsN(p.b + pc * p.ldb + j0, ldb: p.ldb, kc: kc, nc: nc, dst: bp)
                }
                var ir = 0
                while ir < mc {
                    let r = min(MR, mc - ir)
                    let aPanel = aBlock + ir * aStride
                    let cRow = p.c + (i0 + ir) * p.ldc + j0
                    var jr = 0
                    while jr < nc {
                        let bPanel = UnsafePointer(bp + jr * kc)
                        if jr + NR <= nc {
                            microKernel(rows: r, kc: kc, a: aPanel, lda: aStride, b: bPanel, ldb: NR,
                                        c: cRow + jr, ldc: p.ldc, alpha: p.alpha, beta: beta)
                        } else {
                            microKernel(rows: r, kc: kc, a: aPanel, lda: aStride, b: bPanel, ldb: NR,
                                        c: tmp, ldc: NR, alpha: 1, beta: 0)
                            mergeTile(tmp, rows: r, cols: nc - jr, c: cRow + jr, ldc: p.ldc, alpha: p.alpha, beta: beta)
                        }
                        if lastDepthBlock, let bias = p.bias {
                            addBias(bias + j0 + jr, to: cRow + jr, rows: r, cols: min(NR, nc - jr), ldc: p.ldc)
                        }
                        jr += NR
                    }
                    ir += MR
                }
                jc += nc
            }
            ic += mc
        }
        pc += kc
    }
}

/// Few rows of op(A), B not transposed (e.g. batch-1 inference): B is read in place with wide
/// register tiles (1 x 256, 2 x 128, 4 x 64, else 8 x 32 columns), so nothing of B is copied
/// except a zero-padded strip for the last n % 32 columns.
private func gemmFewRows(_ p: GEMMProblem, rows: Range<Int>, cols: Range<Int>) {
    let m = rows.count, n = cols.count, k = p.k, NR = gemmNR
    let tail = n % NR
    let scratch = GEMMScratch([m * k, tail > 0 ? k * NR : 0, gemmMR * NR])
    defer { scratch.free() }
    let ap = scratch.parts[0], strip = scratch.parts[1], tmp = scratch.parts[2]
    packA(p, i0: rows.lowerBound, mc: m, p0: 0, kc: k, dst: ap)
    let b = p.b + cols.lowerBound, ldb = p.ldb
    let nFull = n - tail
    if tail > 0 { packBPanelsN(b + nFull, ldb: ldb, kc: k, nc: tail, dst: strip) }
    var i = 0
    while i < m {
        let r = min(gemmMR, m - i)
        let a = UnsafePointer(ap + i * k)
        let c = p.c + (rows.lowerBound + i) * p.ldc + cols.lowerBound
        var j = 0
        if r == 1 {
            while j + 256 <= nFull {
                MicroKernel<Shape1x16>.run(k, a, k, b + j, ldb, c + j, p.ldc, p.alpha, p.beta)
                j += 256
            }
        } else if r == 2 {
            while j + 128 <= nFull {
                MicroKernel<Shape2x8>.run(k, a, k, b + j, ldb, c + j, p.ldc, p.alpha, p.beta)
                j += 128
            }
        } else if r <= 4 {
            while j + 64 <= nFull {
                if r == 3 { MicroKernel<Shape3x4>.run(k, a, k, b + j, ldb, c + j, p.ldc, p.alpha, p.beta) }
                else { MicroKernel<Shape4x4>.run(k, a, k, b + j, ldb, c + j, p.ldc, p.alpha, p.beta) }
                j += 64
            }
        }
        while j < nFull {
            microKernel(rows: r, kc: k, a: a, lda: k, b: b + j, ldb: ldb, c: c + j, ldc: p.ldc, alpha: p.alpha, beta: p.beta)
            j += NR
        }
        if tail > 0 {
            microKernel(rows: r, kc: k, a: a, lda: k, b: strip, ldb: NR, c: tmp, ldc: NR, alpha: 1, beta: 0)
            mergeTile(tmp, rows: r, cols: tail, c: c + nFull, ldc: p.ldc, alpha: p.alpha, beta: p.beta)
        }
        i += r
    }
}

/// Few rows of op(A), B transposed (B stored n x k, e.g. a Linear layer's weight): each C
/// element is a dot product of two contiguous rows, so nothing of B is packed.
private func gemmDot(_ p: GEMMProblem, rows: Range<Int>, cols: Range<Int>) {
    let m = rows.count, k = p.k
    var a = p.a + rows.lowerBound * p.lda
    var lda = p.lda
    var scratch: GEMMScratch? = nil
    if p.transA {
        let s = GEMMScratch([m * k])
        packA(p, i0: rows.lowerBound, mc: m, p0: 0, kc: k, dst: s.parts[0])
        a = UnsafePointer(s.parts[0])
        lda = k
        scratch = s
    }
    defer { scratch?.free() }
    let bt = p.b + cols.lowerBound * p.ldb
    let c0 = p.c + rows.lowerBound * p.ldc + cols.lowerBound
    var i = 0
    while i < m {
        let r = min(8, m - i)
        let ai = a + i * lda, ci = c0 + i * p.ldc
        let jw = r <= 4 ? 4 : 2  // R*J <= 16 accumulators
        var j = 0
        while j < cols.count {
            let w = min(jw, cols.count - j)
            dotTile(rows: r, cols: w, k: k, a: ai, lda: lda, bt: bt + j * p.ldb, ldb: p.ldb,
                    c: ci + j, ldc: p.ldc, alpha: p.alpha, beta: p.beta)
            j += w
        }
        i += r
    }
}

/// Transposed B with few rows of A (x·Wᵀ for a Linear weight W [out, in] at small batch):
/// computes Cᵀ = W · xᵀ instead, so W is the A operand, read in place row by row (or packed by
/// sequential row copies) and only the small x is transposed into panels, then Cᵀ is
/// transposed back into C. Packing W into k-major panels (a strided transpose of the whole
/// weight on every call) cost as much as the multiply at batch-1 sizes.
private func gemmSwapped(_ p: GEMMProblem, rows: Range<Int>, cols: Range<Int>) {
    let m = rows.count, n = cols.count
    let scratch = GEMMScratch([n * m])
    defer { scratch.free() }
    let ct = scratch.parts[0]
    let q = GEMMProblem(transA: false, transB: true, m: n, n: m, k: p.k, alpha: p.alpha,
                        a: p.b + cols.lowerBound * p.ldb, lda: p.ldb,
                        b: p.a + rows.lowerBound * p.lda, ldb: p.lda,
                        beta: 0, c: ct, ldc: m)
    gemmBlocked(q, rows: 0..<n, cols: 0..<m)
    let c0 = p.c + rows.lowerBound * p.ldc + cols.lowerBound
    if p.beta == 0 {
        transposeCopy(UnsafePointer(ct), lds: m, rows: n, cols: m, dst: c0, ldd: p.ldc)
    } else {
        for i in 0..<m {
            let ci = c0 + i * p.ldc
            for j in 0..<n { ci[j] = ct[j * m + i] + p.beta * ci[j] }
        }
    }
}

/// One dot-product tile of `rows` x `cols` C elements (rows <= 8, cols <= 4).
@inline(__always)
private func dotTile(rows: Int, cols: Int, k: Int, a: UnsafePointer<Float>, lda: Int, bt: UnsafePointer<Float>, ldb: Int,
                     c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
    switch (rows, cols) {
    case (8, 2): DotKernel<Shape8x2>.run(k, a, lda, bt, ldb, c, ldc, alpha, beta)
    case (7, 2): DotKernel<Shape7x2>.run(k, a, lda, bt, ldb, c, ldc, alpha, beta)
    case (6, 2): DotKernel<Shape6x2>.run(k, a, lda, bt, ldb, c, ldc, alpha, beta)
    case (5, 2): DotKernel<Shape5x2>.run(k, a, lda, bt, ldb, c, ldc, alpha, beta)
    case (4, 4): DotKernel<Shape4x4>.run(k, a, lda, bt, ldb, c, ldc, alpha, beta)
    case (3, 4): DotKernel<Shape3x4>.run(k, a, lda, bt, ldb, c, ldc, alpha, beta)
    case (2, 4): DotKernel<Shape2x4>.run(k, a, lda, bt, ldb, c, ldc, alpha, beta)
    case (1, 4): DotKernel<Shape1x4>.run(k, a, lda, bt, ldb, c, ldc, alpha, beta)
    default:
        // Column remainders: one column of B at a time, rows in blocks of up to four.
        for j in 0..<cols {
            var i = 0
            while i < rows {
                let r = min(4, rows - i)
                let ai = a + i * lda, bj = bt + j * ldb, cij = c + (i * ldc + j)
                switch r {
                case 4: DotKernel<Shape4x1>.run(k, ai, lda, bj, ldb, cij, ldc, alpha, beta)
                case 3: DotKernel<Shape3x1>.run(k, ai, lda, bj, ldb, cij, ldc, alpha, beta)
                case 2: DotKernel<Shape2x1>.run(k, ai, lda, bj, ldb, cij, ldc, alpha, beta)
                default: DotKernel<Shape1x1>.run(k, ai, lda, bj, ldb, cij, ldc, alpha, beta)
                }
                i += r
            }
        }
    }
}

/// C[R, J] = alpha * A[R, k] * Bt[J, k]^T + beta * C, R x J = S.rows x S.cols (at most 16)
/// SIMD16 accumulators running along k; A(r, p) = a[r * lda + p], Bt(j, p) = bt[j * ldb + p].
private enum DotKernel<S: KernelShape> {
    @inline(__always)
    static func step(_ acc: inout SIMD16<Float>, _ i: Int, _ a: UnsafeRawPointer, _ aStep: Int,
                     _ b: UnsafeRawPointer, _ bStep: Int, _ off: Int) {
        if i < S.rows &* S.cols {
            let x = a.load(fromByteOffset: (i / S.cols) &* aStep &+ off, as: SIMD16<Float>.self)
            let y = b.load(fromByteOffset: (i % S.cols) &* bStep &+ off, as: SIMD16<Float>.self)
            acc = acc.addingProduct(x, y)
        }
    }

    @inline(__always)
    static func reduce(_ acc: SIMD16<Float>, _ i: Int, _ sums: UnsafeMutablePointer<Float>) {
        if i < S.rows &* S.cols { sums[i] = acc.sum() }
    }

    @inline(never)
    static func run(_ k: Int, _ a: UnsafePointer<Float>, _ lda: Int, _ bt: UnsafePointer<Float>, _ ldb: Int,
                    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float) {
        var d0 = SIMD16<Float>(), d1 = d0, d2 = d0, d3 = d0, d4 = d0, d5 = d0, d6 = d0, d7 = d0
        var d8 = d0, d9 = d0, d10 = d0, d11 = d0, d12 = d0, d13 = d0, d14 = d0, d15 = d0
        let ar = UnsafeRawPointer(a), br = UnsafeRawPointer(bt)
        let aStep = lda &* 4, bStep = ldb &* 4
        let kVec = k & ~15
        var off = 0
        while off < kVec &* 4 {
            step(&d0, 0, ar, aStep, br, bStep, off); step(&d1, 1, ar, aStep, br, bStep, off)
            step(&d2, 2, ar, aStep, br, bStep, off); step(&d3, 3, ar, aStep, br, bStep, off)
            step(&d4, 4, ar, aStep, br, bStep, off); step(&d5, 5, ar, aStep, br, bStep, off)
            step(&d6, 6, ar, aStep, br, bStep, off); step(&d7, 7, ar, aStep, br, bStep, off)
            step(&d8, 8, ar, aStep, br, bStep, off); step(&d9, 9, ar, aStep, br, bStep, off)
            step(&d10, 10, ar, aStep, br, bStep, off); step(&d11, 11, ar, aStep, br, bStep, off)
            step(&d12, 12, ar, aStep, br, bStep, off); step(&d13, 13, ar, aStep, br, bStep, off)
            step(&d14, 14, ar, aStep, br, bStep, off); step(&d15, 15, ar, aStep, br, bStep, off)
            off &+= 64
        }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { buffer in
            let sums = buffer.baseAddress!
            reduce(d0, 0, sums); reduce(d1, 1, sums); reduce(d2, 2, sums); reduce(d3, 3, sums)
            reduce(d4, 4, sums); reduce(d5, 5, sums); reduce(d6, 6, sums); reduce(d7, 7, sums)
            reduce(d8, 8, sums); reduce(d9, 9, sums); reduce(d10, 10, sums); reduce(d11, 11, sums)
            reduce(d12, 12, sums); reduce(d13, 13, sums); reduce(d14, 14, sums); reduce(d15, 15, sums)
            for r in 0..<S.rows {
                for j in 0..<S.cols {
                    var sum = sums[r &* S.cols &+ j]
                    for q in kVec..<k { sum += a[r &* lda &+ q] * bt[j &* ldb &+ q] }  // k % 16 tail
                    let cp = c + (r &* ldc &+ j)
                    cp.pointee = beta == 0 ? alpha * sum : alpha * sum + beta * cp.pointee
                }
            }
        }
    }
}

/// C[0..<rows, 0..<cols] = alpha * tile + beta * C (tile has row stride gemmNR).
@inline(__always)
private func mergeTile(_ tile: UnsafeMutablePointer<Float>, rows: Int, cols: Int, c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
    for r in 0..<rows {
        let t = tile + r * gemmNR, cr = c + r * ldc
        if beta == 0 {
            for j in 0..<cols { cr[j] = alpha * t[j] }
        } else {
            for j in 0..<cols { cr[j] = alpha * t[j] + beta * cr[j] }
        }
    }
}

// MARK: - Micro-kernel

/// Dispatches to the micro-kernel specialised for `rows` (1...gemmMR) rows.
@inline(__always)
private func microKernel(rows: Int, kc: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                         c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
    switch rows {
    case 8: MicroKernel<Shape8x2>.run(kc, a, lda, b, ldb, c, ldc, alpha, beta)
    case 7: MicroKernel<Shape7x2>.run(kc, a, lda, b, ldb, c, ldc, alpha, beta)
    case 6: MicroKernel<Shape6x2>.run(kc, a, lda, b, ldb, c, ldc, alpha, beta)
    case 5: MicroKernel<Shape5x2>.run(kc, a, lda, b, ldb, c, ldc, alpha, beta)
    case 4: MicroKernel<Shape4x2>.run(kc, a, lda, b, ldb, c, ldc, alpha, beta)
    case 3: MicroKernel<Shape3x2>.run(kc, a, lda, b, ldb, c, ldc, alpha, beta)
    case 2: MicroKernel<Shape2x2>.run(kc, a, lda, b, ldb, c, ldc, alpha, beta)
    default: MicroKernel<Shape1x2>.run(kc, a, lda, b, ldb, c, ldc, alpha, beta)
    }
}

/// Compile-time tile shape of a kernel. Generic specialisation turns `rows` and `cols` into
/// constants, so the kernels below are straight-line code with every accumulator in a register
/// (this works on every platform, unlike value generics and InlineArray).
private protocol KernelShape {
    static var rows: Int { get }
    static var cols: Int { get }
}

private enum Shape1x1: KernelShape { static var rows: Int { 1 }; static var cols: Int { 1 } }
private enum Shape1x2: KernelShape { static var rows: Int { 1 }; static var cols: Int { 2 } }
private enum Shape1x4: KernelShape { static var rows: Int { 1 }; static var cols: Int { 4 } }
private enum Shape1x16: KernelShape { static var rows: Int { 1 }; static var cols: Int { 16 } }
private enum Shape2x1: KernelShape { static var rows: Int { 2 }; static var cols: Int { 1 } }
private enum Shape2x2: KernelShape { static var rows: Int { 2 }; static var cols: Int { 2 } }
private enum Shape2x4: KernelShape { static var rows: Int { 2 }; static var cols: Int { 4 } }
private enum Shape2x8: KernelShape { static var rows: Int { 2 }; static var cols: Int { 8 } }
private enum Shape3x1: KernelShape { static var rows: Int { 3 }; static var cols: Int { 1 } }
private enum Shape3x2: KernelShape { static var rows: Int { 3 }; static var cols: Int { 2 } }
private enum Shape3x4: KernelShape { static var rows: Int { 3 }; static var cols: Int { 4 } }
private enum Shape4x1: KernelShape { static var rows: Int { 4 }; static var cols: Int { 1 } }
private enum Shape4x2: KernelShape { static var rows: Int { 4 }; static var cols: Int { 2 } }
private enum Shape4x4: KernelShape { static var rows: Int { 4 }; static var cols: Int { 4 } }
private enum Shape5x2: KernelShape { static var rows: Int { 5 }; static var cols: Int { 2 } }
private enum Shape6x2: KernelShape { static var rows: Int { 6 }; static var cols: Int { 2 } }
private enum Shape7x2: KernelShape { static var rows: Int { 7 }; static var cols: Int { 2 } }
private enum Shape8x2: KernelShape { static var rows: Int { 8 }; static var cols: Int { 2 } }

/// R x (16 V) register-blocked kernel, R x V = S.rows x S.cols (at most 16 accumulators):
/// C[R, 16V] = alpha * A[R, kc] * B[kc, 16V] + beta * C, with A(r, p) = a[r * lda + p] and
/// B(p, j) = b[p * ldb + j]. Each k step loads V SIMD16 vectors of B and broadcasts R values
/// of A; the main 8 x 32 shape keeps its 16 accumulators in zmm registers and issues 16 FMAs
/// per 2 vector loads + 8 broadcasts.
private enum MicroKernel<S: KernelShape> {
    @inline(__always)
    static func step(_ acc: inout SIMD16<Float>, _ i: Int, _ pa: UnsafePointer<Float>, _ lda: Int, _ pb: UnsafeRawPointer) {
        if i < S.rows &* S.cols {
            let x = SIMD16<Float>(repeating: pa[(i / S.cols) &* lda])
            acc = acc.addingProduct(x, pb.load(fromByteOffset: (i % S.cols) &* 64, as: SIMD16<Float>.self))
        }
    }

    @inline(__always)
    static func store(_ acc: SIMD16<Float>, _ i: Int, _ c: UnsafeMutableRawPointer, _ ldc: Int, _ alpha: Float, _ beta: Float) {
        if i < S.rows &* S.cols {
            let off = (i / S.cols) &* ldc &* 4 &+ (i % S.cols) &* 64
            let va = SIMD16<Float>(repeating: alpha)
            if beta == 0 {
                c.storeBytes(of: va * acc, toByteOffset: off, as: SIMD16<Float>.self)
            } else if beta == 1 {
                let old = c.load(fromByteOffset: off, as: SIMD16<Float>.self)
                c.storeBytes(of: old.addingProduct(va, acc), toByteOffset: off, as: SIMD16<Float>.self)
            } else {
                let old = c.load(fromByteOffset: off, as: SIMD16<Float>.self)
                c.storeBytes(of: (va * acc).addingProduct(SIMD16<Float>(repeating: beta), old), toByteOffset: off, as: SIMD16<Float>.self)
            }
        }
    }

    @inline(never)
    static func run(_ kc: Int, _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float) {
        var c0 = SIMD16<Float>(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0
        var c8 = c0, c9 = c0, c10 = c0, c11 = c0, c12 = c0, c13 = c0, c14 = c0, c15 = c0
        var pa = a
        var pb = UnsafeRawPointer(b)
        let bStep = ldb &* 4
        for _ in 0..<kc {
            step(&c0, 0, pa, lda, pb); step(&c1, 1, pa, lda, pb); step(&c2, 2, pa, lda, pb); step(&c3, 3, pa, lda, pb)
            step(&c4, 4, pa, lda, pb); step(&c5, 5, pa, lda, pb); step(&c6, 6, pa, lda, pb); step(&c7, 7, pa, lda, pb)
            step(&c8, 8, pa, lda, pb); step(&c9, 9, pa, lda, pb); step(&c10, 10, pa, lda, pb); step(&c11, 11, pa, lda, pb)
            step(&c12, 12, pa, lda, pb); step(&c13, 13, pa, lda, pb); step(&c14, 14, pa, lda, pb); step(&c15, 15, pa, lda, pb)
            pa += 1
            pb += bStep
        }
        let cp = UnsafeMutableRawPointer(c)
        store(c0, 0, cp, ldc, alpha, beta); store(c1, 1, cp, ldc, alpha, beta)
        store(c2, 2, cp, ldc, alpha, beta); store(c3, 3, cp, ldc, alpha, beta)
        store(c4, 4, cp, ldc, alpha, beta); store(c5, 5, cp, ldc, alpha, beta)
        store(c6, 6, cp, ldc, alpha, beta); store(c7, 7, cp, ldc, alpha, beta)
        store(c8, 8, cp, ldc, alpha, beta); store(c9, 9, cp, ldc, alpha, beta)
        store(c10, 10, cp, ldc, alpha, beta); store(c11, 11, cp, ldc, alpha, beta)
        store(c12, 12, cp, ldc, alpha, beta); store(c13, 13, cp, ldc, alpha, beta)
        store(c14, 14, cp, ldc, alpha, beta); store(c15, 15, cp, ldc, alpha, beta)
    }
}

// MARK: - Packing

/// dst[r * ldd + j] = src[r * lds + j] for r < rows, j < cols.
@inline(__always)
private func copyRows(_ src: UnsafePointer<Float>, lds: Int, rows: Int, cols: Int, dst: UnsafeMutablePointer<Float>, ldd: Int) {
    for r in 0..<rows {
        let s = UnsafeRawPointer(src + r * lds), d = UnsafeMutableRawPointer(dst + r * ldd)
        var j = 0
        while j + 16 <= cols {
            d.storeBytes(of: s.load(fromByteOffset: j &* 4, as: SIMD16<Float>.self), toByteOffset: j &* 4, as: SIMD16<Float>.self)
            j += 16
        }
        while j < cols {
            d.storeBytes(of: s.load(fromByteOffset: j &* 4, as: Float.self), toByteOffset: j &* 4, as: Float.self)
            j += 1
        }
    }
}

/// Packs B[0..<kc, 0..<nc] (row-major, stride ldb) into 32-column k-major panels, zero-padded.
private func packBPanelsN(_ b: UnsafePointer<Float>, ldb: Int, kc: Int, nc: Int, dst: UnsafeMutablePointer<Float>) {
    let full = nc / gemmNR
    let panelBytes = kc &* gemmNR &* 4
    // Row by row of B (sequential reads), scattering 128-byte pieces to the panels.
    for p in 0..<kc {
        let s = UnsafeRawPointer(b + p * ldb)
        var d = UnsafeMutableRawPointer(dst + p * gemmNR)
        var off = 0
        for _ in 0..<full {
            d.storeBytes(of: s.load(fromByteOffset: off, as: SIMD16<Float>.self), as: SIMD16<Float>.self)
            d.storeBytes(of: s.load(fromByteOffset: off &+ 64, as: SIMD16<Float>.self), toByteOffset: 64, as: SIMD16<Float>.self)
            off &+= 128
            d += panelBytes
        }
    }
    let j = full * gemmNR
    if j < nc {
        let w = nc - j
        let panel = dst + full * gemmNR * kc
        for p in 0..<kc {
            let s = b + p * ldb + j, row = panel + p * gemmNR
            for q in 0..<w { row[q] = s[q] }
            for q in w..<gemmNR { row[q] = 0 }
        }
    }
}

/// Packs op(B)[0..<kc, 0..<nc] where B is stored n x k (bt[j * ldb + p]) into 32-column
/// k-major panels, zero-padded.
private func packBPanelsT(_ bt: UnsafePointer<Float>, ldb: Int, kc: Int, nc: Int, dst: UnsafeMutablePointer<Float>) {
    var j = 0
    var panel = dst
    while j < nc {
        let w = min(gemmNR, nc - j)
        transposeCopy(bt + j * ldb, lds: ldb, rows: w, cols: kc, dst: panel, ldd: gemmNR)
        if w < gemmNR {
            for p in 0..<kc {
                let row = panel + p * gemmNR
                for q in w..<gemmNR { row[q] = 0 }
            }
        }
        panel += gemmNR * kc
        j += gemmNR
    }
}

@inline(__always)
private func interleave(_ x: SIMD8<Float>, _ y: SIMD8<Float>) -> SIMD16<Float> {
    SIMD16<Float>(x[0], y[0], x[1], y[1], x[2], y[2], x[3], y[3],
                  x[4], y[4], x[5], y[5], x[6], y[6], x[7], y[7])
}

/// dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols; 16x16 tiles go through registers.
private func transposeCopy(_ src: UnsafePointer<Float>, lds: Int, rows: Int, cols: Int, dst: UnsafeMutablePointer<Float>, ldd: Int) {
    var i0 = 0
    while i0 + 16 <= rows {
        var j0 = 0
        while j0 + 16 <= cols {
            transpose16x16(src + i0 * lds + j0, lds, dst + j0 * ldd + i0, ldd)
            j0 += 16
        }
        if j0 < cols {
            for i in i0..<(i0 + 16) {
                for j in j0..<cols { dst[j * ldd + i] = src[i * lds + j] }
            }
        }
        i0 += 16
    }
    if i0 < rows {
        for j in 0..<cols {
            for i in i0..<rows { dst[j * ldd + i] = src[i * lds + j] }
        }
    }
}

/// Transposes one 16x16 block with four perfect-shuffle rounds (64 two-source permutes).
@inline(__always)
private func transpose16x16(_ src: UnsafePointer<Float>, _ lds: Int, _ dst: UnsafeMutablePointer<Float>, _ ldd: Int) {
    let s = UnsafeRawPointer(src), st = lds &* 4
    var r0 = s.load(as: SIMD16<Float>.self)
    var r1 = s.load(fromByteOffset: st, as: SIMD16<Float>.self)
    var r2 = s.load(fromByteOffset: 2 &* st, as: SIMD16<Float>.self)
    var r3 = s.load(fromByteOffset: 3 &* st, as: SIMD16<Float>.self)
    var r4 = s.load(fromByteOffset: 4 &* st, as: SIMD16<Float>.self)
    var r5 = s.load(fromByteOffset: 5 &* st, as: SIMD16<Float>.self)
    var r6 = s.load(fromByteOffset: 6 &* st, as: SIMD16<Float>.self)
    var r7 = s.load(fromByteOffset: 7 &* st, as: SIMD16<Float>.self)
    var r8 = s.load(fromByteOffset: 8 &* st, as: SIMD16<Float>.self)
    var r9 = s.load(fromByteOffset: 9 &* st, as: SIMD16<Float>.self)
    var r10 = s.load(fromByteOffset: 10 &* st, as: SIMD16<Float>.self)
    var r11 = s.load(fromByteOffset: 11 &* st, as: SIMD16<Float>.self)
    var r12 = s.load(fromByteOffset: 12 &* st, as: SIMD16<Float>.self)
    var r13 = s.load(fromByteOffset: 13 &* st, as: SIMD16<Float>.self)
    var r14 = s.load(fromByteOffset: 14 &* st, as: SIMD16<Float>.self)
    var r15 = s.load(fromByteOffset: 15 &* st, as: SIMD16<Float>.self)
    // Element (i, j) sits at flat index 16i + j; each round rotates that 8-bit index left by
    // one bit, so four rounds map it to 16j + i.
    for _ in 0..<4 {
        (r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15) = (
            interleave(r0.lowHalf, r8.lowHalf), interleave(r0.highHalf, r8.highHalf),
            interleave(r1.lowHalf, r9.lowHalf), interleave(r1.highHalf, r9.highHalf),
            interleave(r2.lowHalf, r10.lowHalf), interleave(r2.highHalf, r10.highHalf),
            interleave(r3.lowHalf, r11.lowHalf), interleave(r3.highHalf, r11.highHalf),
            interleave(r4.lowHalf, r12.lowHalf), interleave(r4.highHalf, r12.highHalf),
            interleave(r5.lowHalf, r13.lowHalf), interleave(r5.highHalf, r13.highHalf),
            interleave(r6.lowHalf, r14.lowHalf), interleave(r6.highHalf, r14.highHalf),
            interleave(r7.lowHalf, r15.lowHalf), interleave(r7.highHalf, r15.highHalf))
    }
    let d = UnsafeMutableRawPointer(dst), dt = ldd &* 4
    d.storeBytes(of: r0, as: SIMD16<Float>.self)
    d.storeBytes(of: r1, toByteOffset: dt, as: SIMD16<Float>.self)
    d.storeBytes(of: r2, toByteOffset: 2 &* dt, as: SIMD16<Float>.self)
    d.storeBytes(of: r3, toByteOffset: 3 &* dt, as: SIMD16<Float>.self)
    d.storeBytes(of: r4, toByteOffset: 4 &* dt, as: SIMD16<Float>.self)
    d.storeBytes(of: r5, toByteOffset: 5 &* dt, as: SIMD16<Float>.self)
    d.storeBytes(of: r6, toByteOffset: 6 &* dt, as: SIMD16<Float>.self)
    d.storeBytes(of: r7, toByteOffset: 7 &* dt, as: SIMD16<Float>.self)
    d.storeBytes(of: r8, toByteOffset: 8 &* dt, as: SIMD16<Float>.self)
    d.storeBytes(of: r9, toByteOffset: 9 &* dt, as: SIMD16<Float>.self)
    d.storeBytes(of: r10, toByteOffset: 10 &* dt, as: SIMD16<Float>.self)
    d.storeBytes(of: r11, toByteOffset: 11 &* dt, as: SIMD16<Float>.self)
    d.storeBytes(of: r12, toByteOffset: 12 &* dt, as: SIMD16<Float>.self)
    d.storeBytes(of: r13, toByteOffset: 13 &* dt, as: SIMD16<Float>.self)
    d.storeBytes(of: r14, toByteOffset: 14 &* dt, as: SIMD16<Float>.self)
    d.storeBytes(of: r15, toByteOffset: 15 &* dt, as: SIMD16<Float>.self)
}
