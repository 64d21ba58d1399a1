import Foundation

/// A small dense SVD in Double: Householder QR to reduce a tall matrix to its n×n triangle, then
/// one-sided (Hestenes) Jacobi, which is accurate for small singular values and simple enough to
/// test by hand. Used for the numerical rank of weight updates and for truncating LoRA sums.
/// No LAPACK: the sizes here (n ≤ a few hundred) make O(mn²) loops fine.
public enum SVD {
    /// The result of `decompose`: A = U·diag(s)·Vᵀ with U m×k, V n×k (k = min(m, n)),
    /// row-major, s descending.
    public struct Result {
        public var u: [Double]
        public var s: [Double]
        public var v: [Double]
        public var rows: Int, cols: Int
        public var k: Int { s.count }
    }

    /// Full thin SVD of a row-major m×n matrix (for small matrices: the LoRA core, tests).
    public static func decompose(_ a: [Double], rows m: Int, cols n: Int) -> Result {
        precondition(a.count == m * n, "SVD.decompose: \(a.count) values for \(m)×\(n)")
        if m < n {
            // SVD of Aᵀ = V Σ Uᵀ.
            var t = [Double](repeating: 0, count: m * n)
            for i in 0..<m { for j in 0..<n { t[j * m + i] = a[i * n + j] } }
            let r = decompose(t, rows: n, cols: m)
            return Result(u: r.v, s: r.s, v: r.u, rows: m, cols: n)
        }
        // Column-major working copy: Jacobi rotates columns.
        var w = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { w[j * m + i] = a[i * n + j] } }
        var v = [Double](repeating: 0, count: n * n)  // column-major too
        for j in 0..<n { v[j * n + j] = 1 }
        jacobi(&w, rows: m, cols: n, v: &v)
        var norms = (0..<n).map { j -> Double in
            var s: Double = 0
            for i in 0..<m { s += w[j * m + i] * w[j * m + i] }
            return s.squareRoot()
        }
        let order = (0..<n).sorted { norms[$0] > norms[$1] || (norms[$0] == norms[$1] && $0 < $1) }
        var u = [Double](repeating: 0, count: m * n), vv = [Double](repeating: 0, count: n * n)
        for (k, j) in order.enumerated() {
            let s = norms[j]
            for i in 0..<m { u[i * n + k] = s > 0 ? w[j * m + i] / s : 0 }
            for i in 0..<n { vv[i * n + k] = v[j * n + i] }
        }
        norms = order.map { norms[$0] }
        return Result(u: u, s: norms, v: vv, rows: m, cols: n)
    }

    /// Singular values (descending) of a row-major m×n Float matrix: QR, then Jacobi on R.
    public static func singularValues(_ a: UnsafePointer<Float>, rows: Int, cols: Int) -> [Double] {
        // Work on the tall orientation: column-major tall m×n (m ≥ n).
        let transpose = rows < cols
        let m = transpose ? cols : rows, n = transpose ? rows : cols
        guard n > 0 else { return [] }
        var w = [Double](repeating: 0, count: m * n)
        w.withUnsafeMutableBufferPointer { wp in
            let p = wp.baseAddress!
            if transpose {
                // A is rows×cols = n×m row-major; Aᵀ column j is A's row j, contiguous.
                for j in 0..<n { for i in 0..<m { p[j * m + i] = Double(a[j * m + i]) } }
            } else {
                for i in 0..<m { for j in 0..<n { p[j * m + i] = Double(a[i * n + j]) } }
            }
        }
        var r = householderR(&w, rows: m, cols: n)
        var none: [Double] = []
        jacobi(&r, rows: n, cols: n, v: &none)
        var s = (0..<n).map { j -> Double in
            var t: Double = 0
            for i in 0..<n { t += r[j * n + i] * r[j * n + i] }
            return t.squareRoot()
        }
        s.sort(by: >)
        return s
    }

    /// Numerical rank: the count of σ > σ_max·max(m, n)·ε, with ε the float32 machine epsilon
    /// (numpy's `matrix_rank` rule for float32 data; the rounding noise of a float32 difference
    /// stays well below it).
    public static func rank(_ s: [Double], rows: Int, cols: Int, epsilon: Double = Double(Float.ulpOfOne)) -> Int {
        guard let top = s.first, top > 0 else { return 0 }
        let tol = top * Double(max(rows, cols)) * epsilon
        return s.filter { $0 > tol }.count
    }

    /// Householder QR of a column-major m×n matrix (m ≥ n); returns R (n×n, column-major).
    static func householderR(_ a: inout [Double], rows m: Int, cols n: Int) -> [Double] {
        var v = [Double](repeating: 0, count: m)
        a.withUnsafeMutableBufferPointer { ap in
            let p = ap.baseAddress!
            for k in 0..<n {
                let col = p + k * m
                var norm: Double = 0
                for i in k..<m { norm += col[i] * col[i] }
                norm = norm.squareRoot()
                if norm == 0 { continue }
                let alpha = col[k] > 0 ? -norm : norm
                for i in k..<m { v[i] = col[i] }
                v[k] -= alpha
                var vn: Double = 0
                for i in k..<m { vn += v[i] * v[i] }
                if vn == 0 { continue }
                let beta = 2 / vn
                for j in k..<n {
                    let c = p + j * m
                    var dot: Double = 0
                    for i in k..<m { dot += v[i] * c[i] }
                    let f = beta * dot
                    for i in k..<m { c[i] -= f * v[i] }
                }
            }
        }
        var r = [Double](repeating: 0, count: n * n)
        for j in 0..<n { for i in 0...j { r[j * n + i] = a[j * m + i] } }
        return r
    }

    /// One-sided Jacobi: rotates column pairs of the column-major m×n `a` until all are
    /// orthogonal (then the column norms are the singular values); applies the same rotations
    /// to `v` (n×n column-major) unless it is empty.
    static func jacobi(_ a: inout [Double], rows m: Int, cols n: Int, v: inout [Double]) {
        let withV = !v.isEmpty
        a.withUnsafeMutableBufferPointer { ap in
            v.withUnsafeMutableBufferPointer { vp in
                let p = ap.baseAddress!
                for _ in 0..<60 {
                    var rotated = false
                    for i in 0..<max(n - 1, 0) {
                        for j in (i + 1)..<n {
                            let ci = p + i * m, cj = p + j * m
                            var alpha: Double = 0, beta: Double = 0, gamma: Double = 0
                            for r in 0..<m { alpha += ci[r] * ci[r]; beta += cj[r] * cj[r]; gamma += ci[r] * cj[r] }
                            if gamma == 0 || abs(gamma) <= 1e-15 * (alpha * beta).squareRoot() { continue }
                            rotated = true
                            let zeta = (beta - alpha) / (2 * gamma)
                            let t = (zeta >= 0 ? 1.0 : -1.0) / (abs(zeta) + (1 + zeta * zeta).squareRoot())
                            let c = 1 / (1 + t * t).squareRoot(), s = c * t
                            for r in 0..<m {
                                let x = ci[r], y = cj[r]
                                ci[r] = c * x - s * y
                                cj[r] = s * x + c * y
                            }
                            if withV, let q = vp.baseAddress {
                                let vi = q + i * n, vj = q + j * n
                                for r in 0..<n {
                                    let x = vi[r], y = vj[r]
                                    vi[r] = c * x - s * y
                                    vj[r] = s * x + c * y
                                }
                            }
                        }
                    }
                    if !rotated { break }
                }
            }
        }
    }

    /// Thin QR by modified Gram–Schmidt with one re-orthogonalisation pass, for tall m×n
    /// matrices with small n (LoRA factors). Row-major in and out: Q m×n, R n×n. A column that
    /// is (numerically) in the span of the previous ones gets a zero Q column and zero R row,
    /// which keeps Q·R = A.
    static func thinQR(_ a: [Double], rows m: Int, cols n: Int) -> (q: [Double], r: [Double]) {
        var cols = (0..<n).map { j in (0..<m).map { a[$0 * n + j] } }
        var r = [Double](repeating: 0, count: n * n)
        var scale: Double = 0
        for c in cols { scale = max(scale, c.reduce(0) { $0 + $1 * $1 }.squareRoot()) }
        for j in 0..<n {
            for _ in 0..<2 {
                for i in 0..<j {
                    var d: Double = 0
                    for k in 0..<m { d += cols[i][k] * cols[j][k] }
                    r[i * n + j] += d
                    for k in 0..<m { cols[j][k] -= d * cols[i][k] }
                }
            }
            let norm = cols[j].reduce(0) { $0 + $1 * $1 }.squareRoot()
            if norm <= 1e-13 * scale || norm == 0 {
                cols[j] = [Double](repeating: 0, count: m)
            } else {
                r[j * n + j] = norm
                for k in 0..<m { cols[j][k] /= norm }
            }
        }
        var q = [Double](repeating: 0, count: m * n)
        for j in 0..<n { for k in 0..<m { q[k * n + j] = cols[j][k] } }
        return (q, r)
    }

    /// The best rank-k factorisation of B·A (B m×r, A r×n, row-major): returns B' (m×k) and
    /// A' (k×n) with B'A' the truncated SVD of BA, √σ split evenly between the factors. Works on
    /// the r×r core R_B·R_Aᵀ of the QR factorisations B = Q_B R_B, Aᵀ = Q_A R_A, so the m×n
    /// product is never formed.
    public static func truncateProduct(b: [Double], a: [Double], rows m: Int, inner r: Int, cols n: Int, rank k: Int)
        -> (b: [Double], a: [Double]) {
        let (qb, rb) = thinQR(b, rows: m, cols: r)
        var at = [Double](repeating: 0, count: n * r)
        for i in 0..<r { for j in 0..<n { at[j * r + i] = a[i * n + j] } }
        let (qa, ra) = thinQR(at, rows: n, cols: r)
        var core = [Double](repeating: 0, count: r * r)  // R_B · R_Aᵀ
        for i in 0..<r { for j in 0..<r {
            var s: Double = 0
            for t in 0..<r { s += rb[i * r + t] * ra[j * r + t] }
            core[i * r + j] = s
        } }
        let svd = decompose(core, rows: r, cols: r)
        var nb = [Double](repeating: 0, count: m * k), na = [Double](repeating: 0, count: k * n)
        for c in 0..<min(k, svd.k) {
            let root = svd.s[c].squareRoot()
            for i in 0..<m {
                var s: Double = 0
                for t in 0..<r { s += qb[i * r + t] * svd.u[t * r + c] }
                nb[i * k + c] = s * root
            }
            for j in 0..<n {
                var s: Double = 0
                for t in 0..<r { s += qa[j * r + t] * svd.v[t * r + c] }
                na[c * n + j] = s * root
            }
        }
        return (nb, na)
    }
}
