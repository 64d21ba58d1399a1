/// A shape mismatch, naming the operation and the shapes involved.
public struct ShapeError: Error, CustomStringConvertible, Equatable {
    public let op: String
    public let message: String
    public init(_ op: String, _ message: String) {
        self.op = op
        self.message = message
    }
    public var description: String { "\(op): \(message)" }
}

/// Shape arithmetic shared by every op.
public enum Shape {
    /// Number of elements of a shape (1 for a scalar shape `[]`).
    @inlinable public static func count(_ shape: [Int]) -> Int {
        var n = 1
        for d in shape { n *= d }
        return n
    }

    /// Row-major strides.
    public static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            s[i] = acc
            acc *= shape[i]
        }
        return s
    }

    /// NumPy broadcasting of two shapes.
    public static func broadcast(_ a: [Int], _ b: [Int], op: String) throws -> [Int] {
        let n = max(a.count, b.count)
        var out = [Int](repeating: 1, count: n)
        for i in 0..<n {
            let da = i < n - a.count ? 1 : a[i - (n - a.count)]
            let db = i < n - b.count ? 1 : b[i - (n - b.count)]
            if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else {
                throw ShapeError(op, "shapes \(a) and \(b) cannot be broadcast together")
            }
        }
        return out
    }

    /// Normalises a possibly negative axis for a tensor of `rank` dimensions.
    public static func axis(_ axis: Int, rank: Int, op: String) throws -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0 && a < max(rank, 1) else {
            throw ShapeError(op, "axis \(axis) is out of range for a tensor of rank \(rank)")
        }
        return a
    }

    /// Output shape of (batched) matrix multiplication of `a` and `b` with optional transposes.
    /// Leading (batch) dimensions broadcast only when equal or when `b` is a plain matrix.
    public static func matmul(_ a: [Int], _ b: [Int], transposeA: Bool, transposeB: Bool) throws -> (batch: [Int], m: Int, n: Int, k: Int) {
        guard a.count >= 2, b.count >= 2 else {
            throw ShapeError("matmul", "operands need at least 2 dimensions, got \(a) and \(b)")
        }
        let m = transposeA ? a[a.count - 1] : a[a.count - 2]
        let ka = transposeA ? a[a.count - 2] : a[a.count - 1]
        let kb = transposeB ? b[b.count - 1] : b[b.count - 2]
        let n = transposeB ? b[b.count - 2] : b[b.count - 1]
        guard ka == kb else {
            throw ShapeError("matmul", "inner dimensions differ: \(a)\(transposeA ? "ᵀ" : "") × \(b)\(transposeB ? "ᵀ" : "") (\(ka) vs \(kb))")
        }
        let batchA = Array(a.dropLast(2)), batchB = Array(b.dropLast(2))
        guard batchA.isEmpty || batchB.isEmpty || batchA == batchB else {
            throw ShapeError("matmul", "batch dimensions differ: \(a) and \(b)")
        }
        return (batchA.isEmpty ? batchB : batchA, m, n, ka)
    }
}

/// Traps with the shape error's message: shape errors inside the library are programming
/// errors (user input is validated where it enters), and the message names op and shapes.
@inline(never)
public func shapeFailure(_ error: Error) -> Never {
    fatalError("\(error)")
}

/// Runs a shape check, trapping with its message if it fails.
@inline(__always)
public func checked<T>(_ body: () throws -> T) -> T {
    do { return try body() } catch { shapeFailure(error) }
}
