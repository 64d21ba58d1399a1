import Foundation
import SculptCore

/// Builds a GGUF v3 file: ordered metadata, then tensors (Float32 tensors encoded as F32, F16,
/// BF16, Q8_0, Q4_0 or Q4_1 with ggml's reference quantizers, or pre-encoded raw bytes of any
/// type). Tensor data is aligned to `general.alignment` when that key is set (a uint32 power of
/// two), else 32, and padded with zeros. `write(to:)` replaces the file atomically.
///
/// Everything is validated when added (duplicate keys or names, array element types, shapes,
/// block sizes, raw byte counts), so `write` fails only on I/O.
public struct GGUFWriter: Sendable {
    private enum Source: Sendable {
        case floats(Tensor)
        case raw([UInt8])
    }

    private struct Entry: Sendable {
        let name: String
        let type: GGMLType
        let ne: [Int]
        let byteCount: Int
        let source: Source
    }

    /// Metadata in the order it will be written.
    public private(set) var metadata: [(key: String, value: GGUFValue)] = []
    private var keys = Set<String>()
    private var entries: [Entry] = []
    private var names = Set<String>()

    /// The data alignment the file will use.
    public private(set) var alignment = GGUFLimits.defaultAlignment

    /// An empty writer.
    public init() {}

    /// A writer with `metadata` added in order.
    public init(metadata: [(String, GGUFValue)]) throws {
        for (k, v) in metadata { try addMetadata(k, v) }
    }

    /// Appends a metadata entry. Keys must be unique and non-empty; arrays must hold elements
    /// of their declared type, nested at most `GGUFLimits.maxArrayDepth` deep.
    public mutating func addMetadata(_ key: String, _ value: GGUFValue) throws {
        guard !key.isEmpty else { throw GGUFError.invalidWrite(file: "", item: key, reason: "metadata key is empty") }
        guard !keys.contains(key) else { throw GGUFError.invalidWrite(file: "", item: key, reason: "metadata key added twice") }
        try GGUFWriter.validate(value, key: key, depth: 0)
        if key == "general.alignment" {
            guard case .uint32(let a) = value, a > 0, a & (a - 1) == 0, Int(a) <= GGUFLimits.maxAlignment else {
                throw GGUFError.invalidWrite(file: "", item: key, reason: "must be a uint32 power of two up to \(GGUFLimits.maxAlignment), not \(value)")
            }
            alignment = Int(a)
        }
        keys.insert(key)
        metadata.append((key, value))
    }

    private static func validate(_ value: GGUFValue, key: String, depth: Int) throws {
        guard case .array(let type, let values) = value else { return }
        guard depth < GGUFLimits.maxArrayDepth else {
            throw GGUFError.invalidWrite(file: "", item: key, reason: "arrays nested deeper than \(GGUFLimits.maxArrayDepth) levels")
        }
        for (i, v) in values.enumerated() {
            guard v.type == type else {
                throw GGUFError.invalidWrite(file: "", item: key, reason: "array of \(type) holds a \(v.type) at index \(i)")
            }
            try validate(v, key: key, depth: depth + 1)
        }
    }

    /// Appends a Float32 tensor (row-major `shape`, rank 0...4, every dimension ≥ 1) encoded as
    /// `type` (F32, F16, BF16, Q8_0, Q4_0 or Q4_1; quantized types need the last dimension to be
    /// a multiple of 32). Stored with GGUF's ne = shape reversed.
    public mutating func addTensor(_ name: String, _ tensor: Tensor, as type: GGMLType = .f32) throws {
        guard type.canQuantize else {
            throw GGUFError.invalidWrite(file: "", item: name, reason: "cannot encode Float32 values as \(type.name) (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)")
        }
        try add(name, shape: tensor.shape, type: type, byteCount: nil, source: .floats(tensor))
    }

    /// Appends a tensor from bytes already encoded as `type` (any ggml type); `bytes.count`
    /// must equal the size that `shape` and `type` imply.
    public mutating func addTensor(_ name: String, shape: [Int], type: GGMLType, bytes: [UInt8]) throws {
        try add(name, shape: shape, type: type, byteCount: bytes.count, source: .raw(bytes))
    }

    private mutating func add(_ name: String, shape: [Int], type: GGMLType, byteCount: Int?, source: Source) throws {
        func bad(_ reason: String) -> GGUFError { .invalidWrite(file: "", item: name, reason: reason) }
        guard !name.isEmpty else { throw bad("tensor name is empty") }
        guard !names.contains(name) else { throw bad("tensor added twice") }
        guard shape.count <= GGUFLimits.maxDimensions else { throw bad("rank \(shape.count) exceeds \(GGUFLimits.maxDimensions)") }
        guard shape.allSatisfy({ $0 >= 1 }) else { throw bad("shape \(shape) has a dimension below 1") }
        let ne = Array(shape.reversed())
        var elements = 1
        for d in ne {
            let (p, o) = elements.multipliedReportingOverflow(by: d)
            guard !o else { throw bad("shape \(shape) overflows") }
            elements = p
        }
        let rowLength = ne.first ?? 1
        guard let rowBytes = type.rowBytes(rowLength) else {
            throw bad("last dimension \(rowLength) is not a multiple of the \(type.name) block size \(type.blockSize)")
        }
        let (size, o) = rowBytes.multipliedReportingOverflow(by: elements / rowLength)
        guard !o else { throw bad("byte size overflows") }
        if let byteCount, byteCount != size {
            throw bad("\(byteCount) bytes given, but shape \(shape) of \(type.name) takes \(size)")
        }
        names.insert(name)
        entries.append(Entry(name: name, type: type, ne: ne, byteCount: size, source: source))
    }

    // MARK: - Output

    /// The whole file as bytes.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        emit { out.append(contentsOf: $0) }
        return out
    }

    /// Writes the file atomically (temporary file + rename).
    public func write(to url: URL) throws {
        do {
            try AtomicFile.write(to: url) { w in try emitThrowing { try w.write($0) } }
        } catch let e as GGUFError {
            throw e.withFile(url.path)
        }
    }

    /// Writes the file atomically at `path`.
    public func write(toPath path: String) throws { try write(to: URL(fileURLWithPath: path)) }

    private func emit(_ sink: (UnsafeRawBufferPointer) -> Void) {
        // A non-throwing sink cannot make emitThrowing throw.
        try? emitThrowing { sink($0) }
    }

    private func emitThrowing(_ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        var h = GGUFByteBuffer()
        h.bytes.append(contentsOf: Array("GGUF".utf8))
        h.u32(3)
        h.u64(UInt64(entries.count))
        h.u64(UInt64(metadata.count))
        for (key, value) in metadata {
            h.string(key)
            h.u32(value.type.rawValue)
            h.value(value)
        }
        var offset = 0
        for e in entries {
            h.string(e.name)
            h.u32(UInt32(e.ne.count))
            for d in e.ne { h.u64(UInt64(d)) }
            h.u32(e.type.rawValue)
            h.u64(UInt64(offset))
            offset += padded(e.byteCount)
        }
        if !entries.isEmpty { h.bytes.append(contentsOf: repeatElement(0, count: padded(h.bytes.count) - h.bytes.count)) }
        try h.bytes.withUnsafeBytes { try sink($0) }

        let zeros = [UInt8](repeating: 0, count: alignment)
        for e in entries {
            switch e.source {
            case .raw(let bytes):
                try bytes.withUnsafeBytes { try sink($0) }
            case .floats(let tensor):
                try encode(tensor, as: e.type, rowLength: e.ne.first ?? 1, sink)
            }
            let pad = padded(e.byteCount) - e.byteCount
            if pad > 0 { try zeros.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0.prefix(pad))) } }
        }
    }

    private func padded(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }

    /// Encodes the tensor's rows in chunks of about 1 MiB of output.
    private func encode(_ tensor: Tensor, as type: GGMLType, rowLength: Int, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let rowBytes = type.rowBytes(rowLength) else { return }
        let rows = tensor.count / rowLength
        let rowsPerChunk = max(1, (1 << 20) / max(rowBytes, 1))
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: max(1, rowsPerChunk * rowBytes), alignment: 64)
        defer { scratch.deallocate() }
        try tensor.withUnsafePointer { src in
            var r = 0
            while r < rows {
                let n = min(rowsPerChunk, rows - r)
                for k in 0..<n {
                    quantizeRowUnchecked(type: type, from: src + (r + k) * rowLength, count: rowLength, into: scratch + k * rowBytes)
                }
                try sink(UnsafeRawBufferPointer(start: scratch, count: n * rowBytes))
                r += n
            }
        }
    }
}

/// Little-endian serialisation of GGUF header fields.
struct GGUFByteBuffer {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }

    mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            u64(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    /// A value's payload (without its type tag).
    mutating func value(_ v: GGUFValue) {
        switch v {
        case .uint8(let x): u8(x)
        case .int8(let x): u8(UInt8(bitPattern: x))
        case .uint16(let x): u16(x)
        case .int16(let x): u16(UInt16(bitPattern: x))
        case .uint32(let x): u32(x)
        case .int32(let x): u32(UInt32(bitPattern: x))
        case .float32(let x): u32(x.bitPattern)
        case .bool(let x): u8(x ? 1 : 0)
        case .string(let x): string(x)
        case .uint64(let x): u64(x)
        case .int64(let x): u64(UInt64(bitPattern: x))
        case .float64(let x): u64(x.bitPattern)
        case .array(let type, let values):
            u32(type.rawValue)
            u64(UInt64(values.count))
            for e in values { value(e) }
        }
    }
}
