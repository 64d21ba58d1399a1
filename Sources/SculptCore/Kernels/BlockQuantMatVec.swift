// Matrix-vector products over weights stored in llama.cpp's 32-value blocks (GGUF layout, one
// matrix row after another): y[r] = Σ_c W[r, c] · x[c] for batch-1 decoding, reading 34
// (Q8_0) or 18 (Q4_0) bytes per 32 weights instead of 128. The activations stay float32; each
// block's integers are widened to floats in registers and multiplied by its f16 scale once.
// The `…Reference` twins dequantize one value at a time in plain loops.

/// Q8_0: per block an f16 scale d and 32 int8 q; W = d · q.
public func q8_0MatVec(_ w: UnsafeRawPointer, rows: Int, cols: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
    precondition(cols % 32 == 0, "Q8_0 rows hold whole 32-value blocks")
    let blocks = cols / 32, rowBytes = blocks * 34
    for r in 0..<rows {
        let row = w + r * rowBytes
        // One accumulator per row: each block's scale multiplies its widened integers, so no
        // horizontal sum is needed until the row ends.
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
        for b in 0..<blocks {
            let block = row + b * 34
            let d = SIMD8<Float>(repeating: float16BitsToFloat(block.loadUnaligned(as: UInt16.self).littleEndian))
            let q = block + 2, xb = UnsafeRawPointer(x + 32 * b)
            let q0 = SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: q.loadUnaligned(fromByteOffset: 0, as: SIMD8<Int8>.self)))
            let q1 = SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: q.loadUnaligned(fromByteOffset: 8, as: SIMD8<Int8>.self)))
            let q2 = SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: q.loadUnaligned(fromByteOffset: 16, as: SIMD8<Int8>.self)))
            let q3 = SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: q.loadUnaligned(fromByteOffset: 24, as: SIMD8<Int8>.self)))
            acc0.addProduct(q0 * d, xb.loadUnaligned(fromByteOffset: 0, as: SIMD8<Float>.self))
            acc1.addProduct(q1 * d, xb.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
            acc0.addProduct(q2 * d, xb.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self))
            acc1.addProduct(q3 * d, xb.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self))
        }
        y[r] = (acc0 + acc1).sum()
    }
}

/// Q4_0: per block an f16 scale d and 16 bytes of 4-bit q (low nibbles are values 0–15,
/// high nibbles 16–31); W = d · (q − 8).
public func q4_0MatVec(_ w: UnsafeRawPointer, rows: Int, cols: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
    precondition(cols % 32 == 0, "Q4_0 rows hold whole 32-value blocks")
    let blocks = cols / 32, rowBytes = blocks * 18
    let low = SIMD8<Int32>(repeating: 0xF), eight = SIMD8<Int32>(repeating: 8)
    for r in 0..<rows {
        let row = w + r * rowBytes
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
        for b in 0..<blocks {
            let block = row + b * 18
            let d = SIMD8<Float>(repeating: float16BitsToFloat(block.loadUnaligned(as: UInt16.self).littleEndian))
            let q = block + 2, xb = UnsafeRawPointer(x + 32 * b)
            let b0 = SIMD8<Int32>(truncatingIfNeeded: q.loadUnaligned(fromByteOffset: 0, as: SIMD8<UInt8>.self))
            let b1 = SIMD8<Int32>(truncatingIfNeeded: q.loadUnaligned(fromByteOffset: 8, as: SIMD8<UInt8>.self))
            acc0.addProduct(SIMD8<Float>((b0 & low) &- eight) * d, xb.loadUnaligned(fromByteOffset: 0, as: SIMD8<Float>.self))
            acc1.addProduct(SIMD8<Float>((b1 & low) &- eight) * d, xb.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
            acc0.addProduct(SIMD8<Float>((b0 &>> 4) &- eight) * d, xb.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self))
            acc1.addProduct(SIMD8<Float>((b1 &>> 4) &- eight) * d, xb.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self))
        }
        y[r] = (acc0 + acc1).sum()
    }
}

/// Plain-loop twin of `q8_0MatVec`.
public func q8_0MatVecReference(_ w: UnsafeRawPointer, rows: Int, cols: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
    let blocks = cols / 32
    for r in 0..<rows {
        var total: Double = 0
        for b in 0..<blocks {
            let block = w + (r * blocks + b) * 34
            let d = Double(float16BitsToFloat(block.loadUnaligned(as: UInt16.self).littleEndian))
            for j in 0..<32 { total += d * Double(block.load(fromByteOffset: 2 + j, as: Int8.self)) * Double(x[32 * b + j]) }
        }
        y[r] = Float(total)
    }
}

/// Plain-loop twin of `q4_0MatVec`.
public func q4_0MatVecReference(_ w: UnsafeRawPointer, rows: Int, cols: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
    let blocks = cols / 32
    for r in 0..<rows {
        var total: Double = 0
        for b in 0..<blocks {
            let block = w + (r * blocks + b) * 18
            let d = Double(float16BitsToFloat(block.loadUnaligned(as: UInt16.self).littleEndian))
            for j in 0..<16 {
                let byte = block.load(fromByteOffset: 2 + j, as: UInt8.self)
                total += d * Double(Int(byte & 0xF) - 8) * Double(x[32 * b + j])
                total += d * Double(Int(byte >> 4) - 8) * Double(x[32 * b + 16 + j])
            }
        }
        y[r] = Float(total)
    }
}

/// Q4_1: per block an f16 scale d, an f16 minimum m and 16 bytes of 4-bit q (as Q4_0);
/// W = d · q + m.
public func q4_1MatVec(_ w: UnsafeRawPointer, rows: Int, cols: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
    precondition(cols % 32 == 0, "Q4_1 rows hold whole 32-value blocks")
    let blocks = cols / 32, rowBytes = blocks * 20
    let low = SIMD8<Int32>(repeating: 0xF)
    for r in 0..<rows {
        let row = w + r * rowBytes
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
        for b in 0..<blocks {
            let block = row + b * 20
            let d = SIMD8<Float>(repeating: float16BitsToFloat(block.loadUnaligned(as: UInt16.self).littleEndian))
            let m = SIMD8<Float>(repeating: float16BitsToFloat(block.loadUnaligned(fromByteOffset: 2, as: UInt16.self).littleEndian))
            let q = block + 4, xb = UnsafeRawPointer(x + 32 * b)
            let b0 = SIMD8<Int32>(truncatingIfNeeded: q.loadUnaligned(fromByteOffset: 0, as: SIMD8<UInt8>.self))
            let b1 = SIMD8<Int32>(truncatingIfNeeded: q.loadUnaligned(fromByteOffset: 8, as: SIMD8<UInt8>.self))
            acc0.addProduct(SIMD8<Float>(b0 & low) * d + m, xb.loadUnaligned(fromByteOffset: 0, as: SIMD8<Float>.self))
            acc1.addProduct(SIMD8<Float>(b1 & low) * d + m, xb.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
            acc0.addProduct(SIMD8<Float>(b0 &>> 4) * d + m, xb.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self))
            acc1.addProduct(SIMD8<Float>(b1 &>> 4) * d + m, xb.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self))
        }
        y[r] = (acc0 + acc1).sum()
    }
}

/// Plain-loop twin of `q4_1MatVec`.
public func q4_1MatVecReference(_ w: UnsafeRawPointer, rows: Int, cols: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
    let blocks = cols / 32
    for r in 0..<rows {
        var total: Double = 0
        for b in 0..<blocks {
            let block = w + (r * blocks + b) * 20
            let d = Double(float16BitsToFloat(block.loadUnaligned(as: UInt16.self).littleEndian))
            let m = Double(float16BitsToFloat(block.loadUnaligned(fromByteOffset: 2, as: UInt16.self).littleEndian))
            for j in 0..<16 {
                let byte = block.load(fromByteOffset: 4 + j, as: UInt8.self)
                total += (d * Double(byte & 0xF) + m) * Double(x[32 * b + j])
                total += (d * Double(byte >> 4) + m) * Double(x[32 * b + 16 + j])
            }
        }
        y[r] = Float(total)
    }
}

/// A weight matrix [rows, cols] kept in llama.cpp's blocks for batch-1 products (decode).
public struct BlockMatrix: Sendable {
    public enum Format: String, Sendable { case q8_0, q4_0, q4_1 }
    public let format: Format
    public let rows: Int, cols: Int
    public let bytes: [UInt8]

    public static func blockBytes(_ f: Format) -> Int { f == .q8_0 ? 34 : f == .q4_0 ? 18 : 20 }
    public var rowBytes: Int { cols / 32 * Self.blockBytes(format) }

    /// nil when `bytes` is not `rows` rows of whole blocks.
    public init?(format: Format, rows: Int, cols: Int, bytes: [UInt8]) {
        guard rows > 0, cols > 0, cols % 32 == 0, bytes.count == rows * (cols / 32) * Self.blockBytes(format) else { return nil }
        self.format = format; self.rows = rows; self.cols = cols; self.bytes = bytes
    }

    /// y [n, rows] = x [n, cols] · Wᵀ, the output rows split over the pool's threads.
    public func multiply(_ x: UnsafePointer<Float>, count n: Int, into y: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let rb = rowBytes, rows = rows, cols = cols, format = format
        bytes.withUnsafeBytes { raw in
            let w = raw.baseAddress!
            // One dispatch: each thread takes a range of output rows for every input row.
            pool.parallelRanges(rows, minimumChunk: 64) { range in
                let start = w + range.lowerBound * rb
                for i in 0..<n {
                    let xi = x + i * cols, yi = y + i * rows + range.lowerBound
                    switch format {
                    case .q8_0: q8_0MatVec(start, rows: range.count, cols: cols, x: xi, y: yi)
                    case .q4_0: q4_0MatVec(start, rows: range.count, cols: cols, x: xi, y: yi)
                    case .q4_1: q4_1MatVec(start, rows: range.count, cols: cols, x: xi, y: yi)
                    }
                }
            }
        }
    }
}
