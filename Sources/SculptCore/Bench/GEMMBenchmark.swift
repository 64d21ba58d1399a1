import Dispatch

/// One timing of `sgemm` (row-major, no transposes, alpha 1, beta 0).
/// Encodes to JSON with exactly the keys op, m, n, k, threads, seconds, gflops.
public struct GEMMBenchmarkResult: Sendable, Codable, Equatable {
    /// Always "sgemm".
    public let op: String
    public let m: Int, n: Int, k: Int
    public let threads: Int
    /// Best (minimum) wall-clock seconds of one call over the timed runs.
    public let seconds: Double
    /// 2 m n k / seconds / 1e9.
    public let gflops: Double

    public init(op: String = "sgemm", m: Int, n: Int, k: Int, threads: Int, seconds: Double) {
        self.op = op
        self.m = m; self.n = n; self.k = k
        self.threads = threads
        self.seconds = seconds
        self.gflops = seconds > 0 ? 2.0 * Double(m) * Double(n) * Double(k) / seconds / 1e9 : 0
    }
}

/// Times C = A * B (m×k times k×n, float32, row-major) on a pool of `threads` threads.
/// Runs warm-up calls, then timed calls until `minimumSeconds` of timing (and at least three
/// calls) have passed, and reports the fastest call, timed with the monotonic clock.
public func benchmarkSGEMM(m: Int, n: Int, k: Int, threads: Int, minimumSeconds: Double = 1.0) -> GEMMBenchmarkResult {
    precondition(m > 0 && n > 0 && k > 0, "benchmarkSGEMM: sizes must be positive")
    let a = UnsafeMutablePointer<Float>.allocate(capacity: m * k)
    let b = UnsafeMutablePointer<Float>.allocate(capacity: k * n)
    let c = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
    defer { a.deallocate(); b.deallocate(); c.deallocate() }
    var state: UInt32 = 0x9E37_79B9
    @inline(__always) func nextValue() -> Float {
        state = state &* 1_664_525 &+ 1_013_904_223
        return Float(state >> 8) * (2.0 / 16_777_216.0) - 1
    }
    for i in 0..<(m * k) { a[i] = nextValue() }
    for i in 0..<(k * n) { b[i] = nextValue() }
    c.initialize(repeating: 0, count: m * n)
    let pool = ThreadPool(threads: threads)

    func call() -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        sgemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: n,
              beta: 0, c: c, ldc: n, pool: pool)
        return Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
    }

    // Warm-up: at least two calls and about a tenth of the budget (page faults, caches, clocks).
    var warm = 0.0
    var warmCalls = 0
    while warmCalls < 2 || warm < 0.1 * minimumSeconds {
        warm += call()
        warmCalls += 1
    }
    var best = Double.infinity
    var total = 0.0
    var calls = 0
    while calls < 3 || total < minimumSeconds {
        let t = call()
        best = min(best, t)
        total += t
        calls += 1
    }
    return GEMMBenchmarkResult(m: m, n: n, k: k, threads: pool.threadCount, seconds: best)
}
