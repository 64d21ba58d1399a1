/// C = alpha * op(A) * op(B) + beta * C with a plain triple loop accumulating in Float.
/// Same contract as `sgemm`; the ground truth the fast kernel is tested against.
public func sgemmReference(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                           a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                           beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, bias: UnsafePointer<Float>? = nil) {
    precondition(m >= 0 && n >= 0 && k >= 0, "sgemmReference: negative dimension")
    precondition(lda >= (transA ? m : k), "sgemmReference: lda smaller than a row of A")
    precondition(ldb >= (transB ? k : n), "sgemmReference: ldb smaller than a row of B")
    precondition(ldc >= n, "sgemmReference: ldc smaller than a row of C")
    for i in 0..<m {
        for j in 0..<n {
            var sum: Float = 0
            for p in 0..<k {
                let x = transA ? a[p * lda + i] : a[i * lda + p]
                let y = transB ? b[j * ldb + p] : b[p * ldb + j]
                sum += x * y
            }
            let b = bias?[j] ?? 0
            if alpha == 0 || k == 0 {  // BLAS convention: op(A)*op(B) is not evaluated
                c[i * ldc + j] = (beta == 0 ? 0 : beta * c[i * ldc + j]) + b
                continue
            }
            let old = c[i * ldc + j]
            c[i * ldc + j] = (beta == 0 ? alpha * sum : alpha * sum + beta * old) + b
        }
    }
}
