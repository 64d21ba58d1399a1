import XCTest
@testable import SculptCore

final class TensorTests: XCTestCase {
    func testCopyOnWrite() {
        var a = Tensor(shape: [2, 2], data: [1, 2, 3, 4])
        let b = a
        a[flat: 0] = 9
        XCTAssertEqual(b.scalars, [1, 2, 3, 4])
        XCTAssertEqual(a.scalars, [9, 2, 3, 4])
    }

    func testReshapeInfersOneDimension() {
        let a = Tensor(shape: [2, 3, 4], repeating: 1)
        XCTAssertEqual(a.reshaped([-1, 4]).shape, [6, 4])
        XCTAssertEqual(a.reshaped([2, -1]).shape, [2, 12])
    }

    func testSliceConcatRoundTrip() {
        let x = Tensor(shape: [2, 5, 3], data: (0..<30).map(Float.init))
        let parts = [x.slice(axis: 1, 0..<2), x.slice(axis: 1, 2..<5)]
        XCTAssertEqual(Tensor.concat(parts, axis: 1), x)
        XCTAssertEqual(x.slice(axis: 1, 2..<5).unsliced(axis: 1, 2..<5, fullShape: x.shape).slice(axis: 1, 2..<5), parts[1])
    }

    func testIndexSelectAndIndexAdd() {
        let x = Tensor(shape: [4, 2], data: [0, 1, 10, 11, 20, 21, 30, 31])
        let y = x.indexSelect(axis: 0, [3, 0, 3])
        XCTAssertEqual(y.scalars, [30, 31, 0, 1, 30, 31])
        let back = y.indexAdd(axis: 0, [3, 0, 3], fullShape: [4, 2])
        XCTAssertEqual(back.scalars, [0, 1, 0, 0, 0, 0, 60, 62])
    }

    func testIndexTensorConversion() throws {
        let t = Int64Tensor(shape: [2], values: [1, 2])
        XCTAssertEqual(try t.converted(to: Int32.self).values, [1, 2])
        XCTAssertThrowsError(try Int64Tensor([Int64(Int32.max) + 1]).converted(to: Int32.self))
    }

    func testMatmulSharedLeftMatrix() {
        // A plain matrix on the left is shared across the right operand's batch.
        let a = Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])
        let b = Tensor(shape: [2, 3, 1], data: [1, 0, 0, 0, 1, 1])
        let c = Tensor.matmul(a, b)
        XCTAssertEqual(c.shape, [2, 2, 1])
        XCTAssertEqual(c.scalars, [1, 4, 5, 11])
    }

    func testSeededRNGIsReproducibleAndSplits() {
        var a = SeededRNG(seed: 1), b = SeededRNG(seed: 1)
        XCTAssertEqual((0..<5).map { _ in a.next() }, (0..<5).map { _ in b.next() })
        var c = SeededRNG(seed: 2)
        XCTAssertNotEqual(a.next(), c.next())
        // Normal samples have roughly unit variance.
        var r = SeededRNG(seed: 5)
        let xs = (0..<20000).map { _ in Double(r.nextNormal()) }
        let mean = xs.reduce(0, +) / 20000, variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 20000
        XCTAssertEqual(mean, 0, accuracy: 0.03)
        XCTAssertEqual(variance, 1, accuracy: 0.05)
    }
}
