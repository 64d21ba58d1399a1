import XCTest
import SculptCore
@testable import SculptIO

/// The Q8_0 / Q4_0 / Q4_1 matrix-vector kernels against their plain-loop twins and against the GGUF
/// dequantizer followed by a float dot product, on odd row counts and several block counts.
final class BlockQuantMatVecTests: XCTestCase {
    func check(_ type: GGMLType, rows: Int, cols: Int, seed: UInt64) throws {
        var rng = SeededRNG(seed: seed)
        var weights = (0..<(rows * cols)).map { _ in Float.random(in: -1...1, using: &rng) }
        // Block extremes: a row of one large value (q = ±127 / nibble 0) and an all-zero block.
        weights[0] = 9; if cols > 32 { for j in 32..<64 { weights[j] = 0 } }
        let x = (0..<cols).map { _ in Float.random(in: -2...2, using: &rng) }
        let bytes = try quantized(type, weights)
        let dense = try dequantized(type, bytes, count: rows * cols)
        var fast = [Float](repeating: .nan, count: rows), twin = fast
        let kernel = type == .q8_0 ? q8_0MatVec : type == .q4_0 ? q4_0MatVec : q4_1MatVec
        let reference = type == .q8_0 ? q8_0MatVecReference : type == .q4_0 ? q4_0MatVecReference : q4_1MatVecReference
        bytes.withUnsafeBytes { w in
            kernel(w.baseAddress!, rows, cols, x, &fast)
            reference(w.baseAddress!, rows, cols, x, &twin)
        }
        for r in 0..<rows {
            var exact: Double = 0, scale: Double = 0
            for c in 0..<cols { exact += Double(dense[r * cols + c]) * Double(x[c]); scale += abs(Double(dense[r * cols + c]) * Double(x[c])) }
            XCTAssertEqual(Double(twin[r]), exact, accuracy: 1e-6 * max(scale, 1), "\(type) twin row \(r)")
            XCTAssertEqual(Double(fast[r]), exact, accuracy: 1e-5 * max(scale, 1), "\(type) kernel row \(r) of \(rows)×\(cols)")
        }
    }

    /// BlockMatrix.multiply splits output rows over threads: the same numbers as one call.
    func testBlockMatrixMultiplyOverThreadsEqualsTheKernel() throws {
        var rng = SeededRNG(seed: 3)
        let rows = 301, cols = 96
        let w = (0..<(rows * cols)).map { _ in Float.random(in: -1...1, using: &rng) }
        let x = (0..<(3 * cols)).map { _ in Float.random(in: -1...1, using: &rng) }
        let m = try XCTUnwrap(BlockMatrix(format: .q8_0, rows: rows, cols: cols, bytes: try quantized(.q8_0, w)))
        var threaded = [Float](repeating: .nan, count: 3 * rows), single = threaded
        m.multiply(x, count: 3, into: &threaded, pool: ThreadPool(threads: 3))
        m.bytes.withUnsafeBytes { raw in
            x.withUnsafeBufferPointer { xp in
                single.withUnsafeMutableBufferPointer { yp in
                    for i in 0..<3 { q8_0MatVec(raw.baseAddress!, rows: rows, cols: cols, x: xp.baseAddress! + i * cols, y: yp.baseAddress! + i * rows) }
                }
            }
        }
        XCTAssertEqual(threaded, single)
        XCTAssertNil(BlockMatrix(format: .q4_0, rows: rows, cols: cols, bytes: m.bytes), "wrong byte count for the format")
    }

    func testKernelsMatchTheirTwinsAndTheDequantizer() throws {
        for type in [GGMLType.q8_0, .q4_0, .q4_1] {
            for (rows, cols) in [(1, 32), (37, 96), (5, 224), (129, 576)] {
                try check(type, rows: rows, cols: cols, seed: UInt64(rows * 1000 + cols))
            }
        }
    }
}
