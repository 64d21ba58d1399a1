import Foundation

// Raw (non-differentiable) tensor operations. Autodiff (`Variable`) and the gradient rules
// are written in terms of these.

extension Tensor {
    // MARK: Elementwise

    public func applying(_ f: UnaryFunction) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        unaryForward(f, storage.pointer, out.storage.pointer, count: count, pool: ExecutionContext.pool)
        return out
    }

    /// dy · f'(self), the backward of `applying(f)`.
    public func unaryGradient(_ f: UnaryFunction, upstream dy: Tensor) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        unaryBackward(f, storage.pointer, dy.storage.pointer, out.storage.pointer, count: count, pool: ExecutionContext.pool)
        return out
    }

    /// Elementwise `a ∘ b` with NumPy broadcasting.
    public static func binary(_ f: BinaryFunction, _ a: Tensor, _ b: Tensor) -> Tensor {
        let pool = ExecutionContext.pool
        if a.shape == b.shape {
            let out = Tensor(uninitializedShape: a.shape)
            binarySameShape(f, a.storage.pointer, b.storage.pointer, out.storage.pointer, count: a.count, pool: pool)
            return out
        }
        let outShape = checked { try Shape.broadcast(a.shape, b.shape, op: f.rawValue) }
        let out = Tensor(uninitializedShape: outShape)
        // Fast paths: one operand is a trailing block (bias) or one value per leading row.
        for (small, big, smallIsLeft) in [(b, a, false), (a, b, true)] where big.shape == outShape {
            let s = small.shape.drop(while: { $0 == 1 })
            if small.count == 1 {
                binaryRowBroadcast(f, big.storage.pointer, small.storage.pointer, out.storage.pointer, outer: 1, inner: big.count, rowScalar: true, bIsLeft: smallIsLeft, pool: pool)
                return out
            }
            if Array(s) == Array(outShape.suffix(s.count)) {
                binaryRowBroadcast(f, big.storage.pointer, small.storage.pointer, out.storage.pointer, outer: big.count / small.count, inner: small.count, rowScalar: false, bIsLeft: smallIsLeft, pool: pool)
                return out
            }
            // small = [..., rows, 1] matching big's leading dims: one value per row.
            if small.rank == outShape.count, small.shape.last == 1, Array(small.shape.dropLast()) == Array(outShape.dropLast()) {
                binaryRowBroadcast(f, big.storage.pointer, small.storage.pointer, out.storage.pointer, outer: small.count, inner: outShape.last!, rowScalar: true, bIsLeft: smallIsLeft, pool: pool)
                return out
            }
        }
        binaryStrided(f, a.storage.pointer, aStrides: a.broadcastStrides(to: outShape), b.storage.pointer, bStrides: b.broadcastStrides(to: outShape), out.storage.pointer, shape: outShape)
        return out
    }

    /// Strides of this tensor seen in a broadcast output shape (0 along broadcast dims).
    func broadcastStrides(to outShape: [Int]) -> [Int] {
        let own = Shape.strides(shape)
        let offset = outShape.count - rank
        return (0..<outShape.count).map { d in
            d < offset ? 0 : (shape[d - offset] == 1 && outShape[d] != 1 ? 0 : own[d - offset])
        }
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor { binary(.add, a, b) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { binary(.sub, a, b) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { binary(.mul, a, b) }
    public static func / (a: Tensor, b: Tensor) -> Tensor { binary(.div, a, b) }
    public static prefix func - (a: Tensor) -> Tensor { a.applying(.neg) }

    /// alpha · self + beta.
    public func affine(_ alpha: Float, _ beta: Float = 0) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        SculptCore.affine(storage.pointer, out.storage.pointer, count: count, alpha: alpha, beta: beta, pool: ExecutionContext.pool)
        return out
    }

    public static func * (a: Tensor, s: Float) -> Tensor { a.affine(s) }
    public static func * (s: Float, a: Tensor) -> Tensor { a.affine(s) }
    public static func + (a: Tensor, s: Float) -> Tensor { a.affine(1, s) }
    public static func - (s: Float, a: Tensor) -> Tensor { a.affine(-1, s) }
    public static func - (a: Tensor, s: Float) -> Tensor { a.affine(1, -s) }

    /// self += alpha · other (same shape), in place.
    public mutating func addScaled(_ other: Tensor, _ alpha: Float = 1) {
        precondition(shape == other.shape, "addScaled: shapes \(shape) and \(other.shape) differ")
        makeUnique()
        axpy(alpha, other.storage.pointer, storage.pointer, count: count, pool: ExecutionContext.pool)
    }

    // MARK: Reductions

    /// Sum over `axes` (negative axes count from the end).
    public func sum(axes: [Int], keepDims: Bool = false) -> Tensor {
        let norm = Set(axes.map { a in checked { try Shape.axis(a, rank: rank, op: "sum") } })
        var t = self
        var keptShape = shape
        for axis in norm.sorted(by: >) {
            t = t.sumAxis(axis)
            keptShape[axis] = 1
        }
        let final = keepDims ? keptShape : shape.enumerated().filter { !norm.contains($0.offset) }.map(\.element)
        return t.reshaped(final)
    }

    /// Sum over one axis, keeping it as size 1.
    func sumAxis(_ axis: Int) -> Tensor {
        let outer = Shape.count(Array(shape[..<axis])), length = shape[axis], inner = Shape.count(Array(shape[(axis + 1)...]))
        var outShape = shape
        outShape[axis] = 1
        let out = Tensor(uninitializedShape: outShape)
        SculptCore.sumAxis(storage.pointer, out.storage.pointer, outer: outer, length: length, inner: inner, pool: ExecutionContext.pool)
        return out
    }

    public func sum() -> Tensor { Tensor(scalar: sumBuffer(storage.pointer, count: count)) }

    public func mean(axes: [Int], keepDims: Bool = false) -> Tensor {
        let n = axes.map { axis in shape[checked { try Shape.axis(axis, rank: rank, op: "mean") }] }.reduce(1, *)
        return sum(axes: axes, keepDims: keepDims).affine(1 / Float(Swift.max(n, 1)))
    }

    public func mean() -> Tensor { Tensor(scalar: sumBuffer(storage.pointer, count: count) / Float(Swift.max(count, 1))) }

    /// Max over one axis, with the index of the maximum (for the backward pass).
    public func max(axis: Int, keepDims: Bool = false) -> (values: Tensor, indices: [Int32]) {
        let a = checked { try Shape.axis(axis, rank: rank, op: "max") }
        let outer = Shape.count(Array(shape[..<a])), length = shape[a], inner = Shape.count(Array(shape[(a + 1)...]))
        var outShape = shape
        outShape[a] = 1
        let out = Tensor(uninitializedShape: outShape)
        var idx = [Int32](repeating: 0, count: outer * inner)
        idx.withUnsafeMutableBufferPointer { ip in
            maxAxis(storage.pointer, out.storage.pointer, argmax: ip.baseAddress!, outer: outer, length: length, inner: inner)
        }
        if !keepDims { outShape.remove(at: a) }
        return (out.reshaped(outShape), idx)
    }

    /// Reduces a broadcast result back to `target` shape by summing the broadcast dimensions.
    public func sumToShape(_ target: [Int]) -> Tensor {
        if shape == target { return self }
        let offset = rank - target.count
        var axes = Array(0..<offset)
        for d in 0..<target.count where target[d] == 1 && shape[d + offset] != 1 { axes.append(d + offset) }
        return sum(axes: axes, keepDims: true).reshaped(target)
    }

    /// Broadcasts to a larger shape (materialised).
    public func expanded(to target: [Int]) -> Tensor {
        if shape == target { return self }
        return Tensor.binary(.add, Tensor.zeros(target), self)
    }

    // MARK: Matrix multiplication

    /// (Batched) matrix product with optional transposes of the last two dimensions.
    /// A plain matrix `b` is shared across `a`'s batch dimensions. `bias` [n] (with a matrix
    /// `b` and `a` not transposed) is added to every output row inside the GEMM.
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false, bias: Tensor? = nil) -> Tensor {
        let (batch, m, n, k) = checked { try Shape.matmul(a.shape, b.shape, transposeA: transposeA, transposeB: transposeB) }
        let out = Tensor(uninitializedShape: batch + [m, n])
        let lda = a.shape[a.rank - 1], ldb = b.shape[b.rank - 1]
        let batchCount = Shape.count(batch)
        let pool = ExecutionContext.pool
        precondition(bias == nil || (b.rank == 2 && !transposeA && bias!.count == n), "matmul: a bias needs a matrix B, A not transposed and \(n) values")
        if b.rank == 2 && !transposeA {
            // Fold the batch into M: one big GEMM.
            sgemm(transA: false, transB: transposeB, m: batchCount * m, n: n, k: k, alpha: 1, a: a.storage.pointer, lda: lda,
                  b: b.storage.pointer, ldb: ldb, beta: 0, c: out.storage.pointer, ldc: n, bias: bias.map { UnsafePointer($0.storage.pointer) }, pool: pool)
        } else {
            sgemmBatched(transA: transposeA, transB: transposeB, m: m, n: n, k: k, alpha: 1,
                         a: a.storage.pointer, lda: lda, strideA: a.rank == 2 ? 0 : m * k,
                         b: b.storage.pointer, ldb: ldb, strideB: b.rank == 2 ? 0 : k * n,
                         beta: 0, c: out.storage.pointer, ldc: n, strideC: m * n, batch: batchCount, pool: pool)
        }
        return out
    }

    // MARK: Layout

    /// Reorders dimensions: result dimension i is this tensor's dimension `order[i]`.
    public func permuted(_ order: [Int]) -> Tensor {
        precondition(order.sorted() == Array(0..<rank), "permute: \(order) is not a permutation of the axes of \(shape)")
        if order == Array(0..<rank) { return self }
        let outShape = order.map { shape[$0] }
        let inStrides = Shape.strides(shape)
        let srcStrides = order.map { inStrides[$0] }
        let out = Tensor(uninitializedShape: outShape)
        let src = storage.pointer, dst = out.storage.pointer
        let inner = outShape[rank - 1], innerStride = srcStrides[rank - 1]
        let outerCount = count / Swift.max(inner, 1)
        // Work over outer rows in parallel; each row is a strided (or contiguous) copy.
        let srcB = UncheckedSendableBox(src), dstB = UncheckedSendableBox(dst)
        let outStrides = Shape.strides(outShape)
        let p = count < parallelElementThreshold ? ThreadPool.serial : ExecutionContext.pool
        p.parallelRanges(outerCount, minimumChunk: 64) { rows in
            for row in rows {
                var rem = row * inner, off = 0
                for d in 0..<(rank - 1) {
                    let i = rem / outStrides[d]
                    rem -= i * outStrides[d]
                    off += i * srcStrides[d]
                }
                let s = srcB.value + off, o = dstB.value + row * inner
                if innerStride == 1 { o.update(from: s, count: inner) } else {
                    for i in 0..<inner { o[i] = s[i * innerStride] }
                }
            }
        }
        return out
    }

    /// Swaps the last two dimensions.
    public func transposed() -> Tensor {
        var order = Array(0..<rank)
        order.swapAt(rank - 1, rank - 2)
        return permuted(order)
    }

    /// A copy of `range` along `axis`.
    public func slice(axis: Int, _ range: Range<Int>) -> Tensor {
        let a = checked { try Shape.axis(axis, rank: rank, op: "slice") }
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[a], "slice: range \(range) is outside dimension \(a) of \(shape)")
        let outer = Shape.count(Array(shape[..<a])), inner = Shape.count(Array(shape[(a + 1)...]))
        var outShape = shape
        outShape[a] = range.count
        let out = Tensor(uninitializedShape: outShape)
        let rowIn = shape[a] * inner, rowOut = range.count * inner
        for o in 0..<outer {
            (out.storage.pointer + o * rowOut).update(from: storage.pointer + o * rowIn + range.lowerBound * inner, count: rowOut)
        }
        return out
    }

    /// Writes `self` (the gradient of a slice) into a zero tensor of `fullShape` at `range`.
    public func unsliced(axis: Int, _ range: Range<Int>, fullShape: [Int]) -> Tensor {
        let a = checked { try Shape.axis(axis, rank: fullShape.count, op: "slice") }
        let outer = Shape.count(Array(fullShape[..<a])), inner = Shape.count(Array(fullShape[(a + 1)...]))
        let out = Tensor.zeros(fullShape)
        let rowOut = fullShape[a] * inner, rowIn = range.count * inner
        for o in 0..<outer {
            (out.storage.pointer + o * rowOut + range.lowerBound * inner).update(from: storage.pointer + o * rowIn, count: rowIn)
        }
        return out
    }

    /// Concatenates tensors along `axis`; all other dimensions must agree.
    public static func concat(_ parts: [Tensor], axis: Int) -> Tensor {
        precondition(!parts.isEmpty, "concat: no tensors")
        let first = parts[0]
        let a = checked { try Shape.axis(axis, rank: first.rank, op: "concat") }
        for p in parts {
            var s1 = p.shape, s0 = first.shape
            guard s1.count == s0.count else { shapeFailure(ShapeError("concat", "ranks differ: \(s0) and \(s1)")) }
            s1[a] = 0; s0[a] = 0
            guard s1 == s0 else { shapeFailure(ShapeError("concat", "shapes \(first.shape) and \(p.shape) differ outside axis \(a)")) }
        }
        var outShape = first.shape
        outShape[a] = parts.map { $0.shape[a] }.reduce(0, +)
        let out = Tensor(uninitializedShape: outShape)
        let outer = Shape.count(Array(first.shape[..<a])), inner = Shape.count(Array(first.shape[(a + 1)...]))
        let rowOut = outShape[a] * inner
        var offset = 0
        for p in parts {
            let rowIn = p.shape[a] * inner
            for o in 0..<outer {
                (out.storage.pointer + o * rowOut + offset).update(from: p.storage.pointer + o * rowIn, count: rowIn)
            }
            offset += rowIn
        }
        return out
    }

    /// Selects entries along `axis` by index (index_select / gather of whole slices).
    public func indexSelect(axis: Int, _ indices: [Int32]) -> Tensor {
        let a = checked { try Shape.axis(axis, rank: rank, op: "indexSelect") }
        let outer = Shape.count(Array(shape[..<a])), inner = Shape.count(Array(shape[(a + 1)...])), length = shape[a]
        for i in indices where i < 0 || Int(i) >= length {
            shapeFailure(ShapeError("indexSelect", "index \(i) is out of range for dimension \(a) of size \(length) in \(shape)"))
        }
        var outShape = shape
        outShape[a] = indices.count
        let out = Tensor(uninitializedShape: outShape)
        let src = UncheckedSendableBox(storage.pointer), dst = UncheckedSendableBox(out.storage.pointer)
        let p = indices.count * inner < parallelElementThreshold ? ThreadPool.serial : ExecutionContext.pool
        indices.withUnsafeBufferPointer { ib in
            let ibox = UncheckedSendableBox(ib)
            for o in 0..<outer {
                p.parallelRanges(indices.count, minimumChunk: 16) { r in
                    for j in r {
                        (dst.value + (o * indices.count + j) * inner).update(from: src.value + (o * length + Int(ibox.value[j])) * inner, count: inner)
                    }
                }
            }
        }
        return out
    }

    /// The adjoint of indexSelect: scatters rows of `self` (shaped like the selection) into
    /// zeros of `fullShape`, adding where an index repeats. Only selected rows are touched
    /// beyond the zero fill, which keeps embedding gradients cheap.
    public func indexAdd(axis: Int, _ indices: [Int32], fullShape: [Int]) -> Tensor {
        let a = checked { try Shape.axis(axis, rank: fullShape.count, op: "indexAdd") }
        let outer = Shape.count(Array(fullShape[..<a])), inner = Shape.count(Array(fullShape[(a + 1)...])), length = fullShape[a]
        var out = Tensor.zeros(fullShape)
        out.withUnsafeMutablePointer { dst in
            for o in 0..<outer {
                for (j, idx) in indices.enumerated() {
                    let d = dst + (o * length + Int(idx)) * inner, s = storage.pointer + (o * indices.count + j) * inner
                    for i in 0..<inner { d[i] += s[i] }
                }
            }
        }
        return out
    }

    // MARK: Fused row ops

    /// Softmax (or log-softmax) over the last axis.
    public func softmax(log: Bool = false) -> Tensor {
        let n = shape.last ?? 1
        let out = Tensor(uninitializedShape: shape)
        softmaxRows(storage.pointer, out.storage.pointer, rows: count / Swift.max(n, 1), n: n, log: log, pool: ExecutionContext.pool)
        return out
    }

    /// Layer norm over the last axis; returns the output and the saved (mean, rstd) per row.
    public func layerNorm(gamma: Tensor?, beta: Tensor?, eps: Float) -> (output: Tensor, mean: Tensor, rstd: Tensor) {
        let n = shape.last ?? 1
        if let g = gamma { precondition(g.count == n, "layerNorm: weight of shape \(g.shape) does not match last dimension of \(shape)") }
        let rows = count / Swift.max(n, 1)
        let out = Tensor(uninitializedShape: shape), mean = Tensor(uninitializedShape: [rows]), rstd = Tensor(uninitializedShape: [rows])
        layerNormRows(storage.pointer, out.storage.pointer, gamma: gamma.map { UnsafePointer($0.storage.pointer) }, beta: beta.map { UnsafePointer($0.storage.pointer) },
                      mean: mean.storage.pointer, rstd: rstd.storage.pointer, rows: rows, n: n, eps: eps, pool: ExecutionContext.pool)
        return (out, mean, rstd)
    }

    /// Largest absolute difference to another tensor of the same shape.
    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(shape == other.shape, "maxAbsDifference: shapes \(shape) and \(other.shape) differ")
        var m: Float = 0
        for i in 0..<count { m = Swift.max(m, Swift.abs(storage.pointer[i] - other.storage.pointer[i])) }
        return m
    }

    public func maxAbs() -> Float {
        var m: Float = 0
        for i in 0..<count { m = Swift.max(m, Swift.abs(storage.pointer[i])) }
        return m
    }

    /// Euclidean norm (accumulated in Double).
    public func norm() -> Float {
        var s: Double = 0
        for i in 0..<count { let v = Double(storage.pointer[i]); s += v * v }
        return Float(s.squareRoot())
    }
}
