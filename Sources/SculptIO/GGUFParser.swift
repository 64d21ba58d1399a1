// Parsing and validation of a GGUF header (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md):
//
//   magic "GGUF", u32 version (2 or 3), u64 tensor count, u64 metadata count
//   metadata: count × (string key, u32 value type, value)
//   tensor infos: count × (string name, u32 n_dims, n_dims × u64 ne, u32 ggml type, u64 offset)
//   padding to `general.alignment` (default 32), then the data section; each tensor's bytes
//   start at data section + offset.
//
// A string is a u64 byte length and that many UTF-8 bytes; an array is a u32 element type,
// a u64 count and the elements. Everything is little endian.
//
// Keys and tensor names must be valid UTF-8; string values with invalid UTF-8 (which some
// converters write into vocabularies) are decoded with U+FFFD replacing the bad sequences.
//
// Nothing read from the file is trusted before it is checked: every count is bounded by the
// bytes left in the file before anything is allocated for it, all arithmetic on file values
// is overflow-checked, and every tensor's bytes are checked to lie inside the file.

/// One tensor of a GGUF file: where its bytes are and what they hold.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    public let type: GGMLType
    /// GGUF's dimensions, fastest-varying first (`ne[0]` is the row length); empty for a scalar.
    public let ne: [Int]
    /// The row-major (PyTorch) shape: `ne` reversed (ne [576, 49152] is shape [49152, 576]).
    public let shape: [Int]
    /// The product of `ne` (1 for a scalar).
    public let elementCount: Int
    /// Bytes of the tensor's data.
    public let byteCount: Int
    /// Offset of the data from the start of the data section, as stored in the file.
    public let offset: Int
    /// Absolute byte offset of the data in the file.
    public let fileOffset: Int

    /// Elements per row (`ne[0]`, 1 for a scalar).
    public var rowLength: Int { ne.first ?? 1 }
    /// Number of rows (the product of `ne[1...]`).
    public var rowCount: Int { elementCount / rowLength }
    /// Bytes per row.
    public var rowBytes: Int { byteCount / max(rowCount, 1) }
    /// The absolute byte range of the data in the file.
    public var fileRange: Range<Int> { fileOffset..<(fileOffset + byteCount) }
}

/// A parsed and validated GGUF header.
public struct GGUFHeader: Sendable, Equatable {
    public let version: UInt32
    /// Metadata values by key.
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Tensor infos in file order.
    public let tensors: [GGUFTensorInfo]
    /// The data alignment (`general.alignment`, default 32).
    public let alignment: Int
    /// Absolute offset of the data section.
    public let dataOffset: Int
    /// Size of the parsed bytes.
    public let fileSize: Int
}

/// Limits of the reader (all far above what real files use).
public enum GGUFLimits {
    /// The most dimensions a tensor may have (ggml's GGML_MAX_DIMS).
    public static let maxDimensions = 4
    /// The deepest nesting of arrays inside arrays.
    public static let maxArrayDepth = 8
    /// The largest accepted `general.alignment`.
    public static let maxAlignment = 1 << 24
    /// The default alignment when `general.alignment` is absent.
    public static let defaultAlignment = 32
}

/// A bounds-checked little-endian reader over the file's bytes.
struct GGUFCursor {
    let bytes: UnsafeRawBufferPointer
    let file: String
    var position = 0

    var remaining: Int { bytes.count - position }

    /// Reserves `n` bytes for `field` and returns their offset.
    @inline(__always)
    mutating func take(_ n: Int, _ field: @autoclosure () -> String) throws -> Int {
        guard n >= 0, n <= remaining else {
            throw GGUFError.truncated(file: file, field: field(), offset: position, needed: UInt64(max(n, 0)), fileSize: bytes.count)
        }
        let start = position
        position += n
        return start
    }

    @inline(__always)
    mutating func load<T: FixedWidthInteger>(_: T.Type, _ field: @autoclosure () -> String) throws -> T {
        let at = try take(MemoryLayout<T>.size, field())
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: T.self))
    }

    mutating func u8(_ field: @autoclosure () -> String) throws -> UInt8 { try load(UInt8.self, field()) }
    mutating func u32(_ field: @autoclosure () -> String) throws -> UInt32 { try load(UInt32.self, field()) }
    mutating func u64(_ field: @autoclosure () -> String) throws -> UInt64 { try load(UInt64.self, field()) }

    /// Reads a string's raw bytes (u64 length + bytes), bounds-checked.
    mutating func stringBytes(_ field: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        let lengthOffset = position
        let length = try u64(field() + " length")
        guard length <= UInt64(remaining) else {
            throw GGUFError.truncated(file: file, field: field() + " (string of \(length) bytes)", offset: lengthOffset + 8,
                                      needed: length, fileSize: bytes.count)
        }
        let at = try take(Int(length), field())
        return UnsafeRawBufferPointer(rebasing: bytes[at..<(at + Int(length))])
    }

    /// A string, with invalid UTF-8 replaced by U+FFFD.
    mutating func lenientString(_ field: @autoclosure () -> String) throws -> String {
        String(decoding: try stringBytes(field()), as: UTF8.self)
    }

    /// A string that must be valid UTF-8 (nil when it is not).
    mutating func strictString(_ field: @autoclosure () -> String) throws -> String? {
        let raw = try stringBytes(field())
        // Decoding replaces invalid sequences with U+FFFD, so the bytes round-trip only when valid.
        let s = String(decoding: raw, as: UTF8.self)
        return s.utf8.elementsEqual(raw) ? s : nil
    }
}

extension GGUFFile {
    /// Parses and validates the header of a complete GGUF file held in `bytes`. Never traps:
    /// every malformed input throws a `GGUFError` naming `fileName`. On success every tensor's
    /// `fileRange` lies inside `bytes`, matches its shape and type, and no two overlap.
    public static func parseHeader(bytes: UnsafeRawBufferPointer, fileName: String) throws -> GGUFHeader {
        var c = GGUFCursor(bytes: bytes, file: fileName)
        let size = bytes.count

        // Magic and version.
        let magic = Array(bytes.prefix(4))
        let expected: [UInt8] = Array("GGUF".utf8)
        guard magic == Array(expected.prefix(magic.count)) else { throw GGUFError.notGGUF(file: fileName, magic: magic) }
        _ = try c.take(4, "magic")
        let version = try c.u32("version")
        guard version == 2 || version == 3 else {
            if version.byteSwapped == 2 || version.byteSwapped == 3 {
                throw GGUFError.invalidHeader(file: fileName, reason: "big-endian GGUF (version \(version.byteSwapped)) is not supported")
            }
            throw GGUFError.unsupportedVersion(file: fileName, version: version)
        }

        // Counts, bounded by the fewest bytes each entry can take (tensor info: 8-byte name
        // length, u32 n_dims, u32 type, u64 offset; metadata: 8-byte key length, u32 type, 1-byte value).
        let tensorCount64 = try c.u64("tensor count")
        let kvCount64 = try c.u64("metadata count")
        let left = UInt64(c.remaining)
        guard tensorCount64 <= left / 24 else {
            throw GGUFError.invalidHeader(file: fileName, reason: "tensor count \(tensorCount64) cannot fit in the \(left) bytes after the header (each tensor info takes at least 24)")
        }
        guard kvCount64 <= left / 13 else {
            throw GGUFError.invalidHeader(file: fileName, reason: "metadata count \(kvCount64) cannot fit in the \(left) bytes after the header (each entry takes at least 13)")
        }
        guard tensorCount64 * 24 + kvCount64 * 13 <= left else {
            throw GGUFError.invalidHeader(file: fileName, reason: "\(tensorCount64) tensors and \(kvCount64) metadata entries cannot fit in the \(left) bytes after the header")
        }
        let tensorCount = Int(tensorCount64), kvCount = Int(kvCount64)

        // Metadata.
        var metadata: [String: GGUFValue] = [:]
        metadata.reserveCapacity(kvCount)
        var keys: [String] = []
        keys.reserveCapacity(kvCount)
        for i in 0..<kvCount {
            guard let key = try c.strictString("metadata key #\(i)") else {
                throw GGUFError.invalidMetadata(file: fileName, key: "#\(i)", reason: "key is not valid UTF-8")
            }
            guard !key.isEmpty else { throw GGUFError.invalidMetadata(file: fileName, key: "#\(i)", reason: "key is empty") }
            guard metadata[key] == nil else {
                throw GGUFError.invalidMetadata(file: fileName, key: key, reason: "appears more than once")
            }
            let raw = try c.u32("metadata key \(StrictJSON.displayQuoted(key)) type")
            guard let type = GGUFValueType(rawValue: raw) else {
                throw GGUFError.invalidMetadata(file: fileName, key: key, reason: "unknown value type \(raw)")
            }
            let value = try readValue(&c, type: type, key: key, depth: 0)
            metadata[key] = value
            keys.append(key)
        }

        let alignment = try validatedAlignment(metadata, fileName: fileName)

        // Tensor infos.
        struct Pending { let name: String; let type: GGMLType; let ne: [Int]; let elements: Int; let bytes: Int; let offset: Int }
        var pending: [Pending] = []
        pending.reserveCapacity(tensorCount)
        var seen = Set<String>()
        seen.reserveCapacity(tensorCount)
        for i in 0..<tensorCount {
            guard let name = try c.strictString("tensor #\(i) name") else {
                throw GGUFError.invalidTensor(file: fileName, tensor: "#\(i)", reason: "name is not valid UTF-8")
            }
            func bad(_ reason: String) -> GGUFError { .invalidTensor(file: fileName, tensor: name, reason: reason) }
            func field(_ what: String) -> String { "tensor \(StrictJSON.displayQuoted(name)) \(what)" }
            guard seen.insert(name).inserted else { throw bad("appears more than once (duplicate tensor name)") }
            let nDims = try c.u32(field("n_dims"))
            guard nDims <= UInt32(GGUFLimits.maxDimensions) else {
                throw bad("n_dims \(nDims) exceeds the maximum of \(GGUFLimits.maxDimensions)")
            }
            var ne: [Int] = []
            ne.reserveCapacity(Int(nDims))
            var elements = 1
            for d in 0..<Int(nDims) {
                let v = try c.u64(field("ne[\(d)]"))
                guard v >= 1, v <= UInt64(Int.max) else { throw bad("ne[\(d)] = \(v) is not a valid dimension (must be 1...\(Int.max))") }
                let (p, o) = elements.multipliedReportingOverflow(by: Int(v))
                ne.append(Int(v))
                guard !o else { throw bad("dimensions \(ne) overflow: their product does not fit in 64 bits") }
                elements = p
            }
            let rawType = try c.u32(field("type"))
            guard let type = GGMLType(rawValue: rawType) else {
                throw GGUFError.unknownType(file: fileName, tensor: name, rawValue: rawType)
            }
            let rowLength = ne.first ?? 1
            guard rowLength % type.blockSize == 0, let rowBytes = type.rowBytes(rowLength) else {
                throw bad("ne[0] = \(rowLength) is not a multiple of the \(type.name) block size \(type.blockSize)")
            }
            let (bytes, o) = rowBytes.multipliedReportingOverflow(by: elements / rowLength)
            guard !o else { throw bad("byte size of \(ne) × \(type.name) overflows") }
            let rawOffset = try c.u64(field("offset"))
            guard rawOffset <= UInt64(Int.max) else { throw bad("offset \(rawOffset) is out of range") }
            let offset = Int(rawOffset)
            guard offset % alignment == 0 else {
                throw bad("offset \(offset) is not a multiple of the alignment \(alignment)")
            }
            pending.append(Pending(name: name, type: type, ne: ne, elements: elements, bytes: bytes, offset: offset))
        }

        // The data section starts at the next multiple of the alignment (it may be absent
        // when there are no tensors).
        let (padded, po) = c.position.addingReportingOverflow(alignment - 1)
        guard !po else { throw GGUFError.invalidHeader(file: fileName, reason: "data section offset overflows") }
        let dataOffset = padded / alignment * alignment
        if !pending.isEmpty && dataOffset > size {
            throw GGUFError.truncated(file: fileName, field: "padding before the data section", offset: c.position,
                                      needed: UInt64(dataOffset - c.position), fileSize: size)
        }

        var tensors: [GGUFTensorInfo] = []
        tensors.reserveCapacity(pending.count)
        for p in pending {
            func bad(_ reason: String) -> GGUFError { .invalidTensor(file: fileName, tensor: p.name, reason: reason) }
            let (start, o1) = dataOffset.addingReportingOverflow(p.offset)
            let (end, o2) = start.addingReportingOverflow(p.bytes)
            guard !o1, !o2 else { throw bad("data at offset \(p.offset) (\(p.bytes) bytes) is out of range") }
            guard end <= size else {
                throw bad("data [\(start), \(end)) runs past the end of the file (\(size) bytes)")
            }
            tensors.append(GGUFTensorInfo(name: p.name, type: p.type, ne: p.ne, shape: p.ne.reversed(), elementCount: p.elements,
                                          byteCount: p.bytes, offset: p.offset, fileOffset: start))
        }

        // No two tensors may share bytes.
        let byStart = tensors.indices.sorted { tensors[$0].fileOffset < tensors[$1].fileOffset }
        for k in byStart.indices.dropFirst() {
            let a = tensors[byStart[k - 1]], b = tensors[byStart[k]]
            if b.fileOffset < a.fileRange.upperBound {
                throw GGUFError.invalidTensor(file: fileName, tensor: b.name,
                                              reason: "data [\(b.fileOffset), \(b.fileRange.upperBound)) overlaps tensor \(StrictJSON.displayQuoted(a.name)) [\(a.fileOffset), \(a.fileRange.upperBound))")
            }
        }

        return GGUFHeader(version: version, metadata: metadata, metadataKeys: keys, tensors: tensors,
                          alignment: alignment, dataOffset: dataOffset, fileSize: size)
    }

    /// `general.alignment`: absent (32) or a uint32 power of two up to `GGUFLimits.maxAlignment`.
    private static func validatedAlignment(_ metadata: [String: GGUFValue], fileName: String) throws -> Int {
        guard let value = metadata["general.alignment"] else { return GGUFLimits.defaultAlignment }
        guard case .uint32(let a) = value else {
            throw GGUFError.invalidMetadata(file: fileName, key: "general.alignment", reason: "must be a uint32, not \(value.type)")
        }
        guard a > 0, a & (a - 1) == 0, Int(a) <= GGUFLimits.maxAlignment else {
            throw GGUFError.invalidMetadata(file: fileName, key: "general.alignment",
                                            reason: "\(a) is not a power of two in 1...\(GGUFLimits.maxAlignment)")
        }
        return Int(a)
    }

    /// Reads one value of `type` (recursing into arrays up to `GGUFLimits.maxArrayDepth`).
    private static func readValue(_ c: inout GGUFCursor, type: GGUFValueType, key: String, depth: Int) throws -> GGUFValue {
        func field() -> String { "metadata key \(StrictJSON.displayQuoted(key)) value" }
        switch type {
        case .uint8: return .uint8(try c.u8(field()))
        case .int8: return .int8(Int8(bitPattern: try c.u8(field())))
        case .uint16: return .uint16(try c.load(UInt16.self, field()))
        case .int16: return .int16(Int16(bitPattern: try c.load(UInt16.self, field())))
        case .uint32: return .uint32(try c.u32(field()))
        case .int32: return .int32(Int32(bitPattern: try c.u32(field())))
        case .float32: return .float32(Float(bitPattern: try c.u32(field())))
        case .uint64: return .uint64(try c.u64(field()))
        case .int64: return .int64(Int64(bitPattern: try c.u64(field())))
        case .float64: return .float64(Double(bitPattern: try c.u64(field())))
        case .bool:
            let b = try c.u8(field())
            guard b <= 1 else { throw GGUFError.invalidMetadata(file: c.file, key: key, reason: "bool value \(b) is neither 0 nor 1") }
            return .bool(b == 1)
        case .string:
            return .string(try c.lenientString(field()))
        case .array:
            guard depth < GGUFLimits.maxArrayDepth else {
                throw GGUFError.invalidMetadata(file: c.file, key: key, reason: "arrays nested deeper than \(GGUFLimits.maxArrayDepth) levels")
            }
            let rawElement = try c.u32("metadata key \(StrictJSON.displayQuoted(key)) array element type")
            guard let element = GGUFValueType(rawValue: rawElement) else {
                throw GGUFError.invalidMetadata(file: c.file, key: key, reason: "unknown array element type \(rawElement)")
            }
            let countOffset = c.position
            let count64 = try c.u64("metadata key \(StrictJSON.displayQuoted(key)) array count")
            let minimum = UInt64(element.minimumEncodedSize)
            guard count64 <= UInt64(c.remaining) / minimum else {
                let (need, o) = count64.multipliedReportingOverflow(by: minimum)
                throw GGUFError.truncated(file: c.file, field: "metadata key \(StrictJSON.displayQuoted(key)) array of \(count64) \(element)",
                                          offset: countOffset + 8, needed: o ? UInt64.max : need, fileSize: c.bytes.count)
            }
            let count = Int(count64)
            var values: [GGUFValue] = []
            values.reserveCapacity(count)
            for _ in 0..<count {
                values.append(try readValue(&c, type: element, key: key, depth: depth + 1))
            }
            return .array(element, values)
        }
    }
}
