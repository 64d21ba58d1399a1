#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SculptCore

// The safetensors format (https://github.com/huggingface/safetensors):
//   8 bytes   N, the header length, u64 little endian
//   N bytes   a UTF-8 JSON object: {"__metadata__": {str: str}, "<name>": {"dtype": "F32",
//             "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...}, possibly padded
//             with trailing spaces
//   rest      the data buffer; each tensor's bytes are data[begin..<end], row-major,
//             little endian.
// This reader is as strict as the reference library about the data buffer: ranges inside
// it, sizes matching shapes, no overlaps, and every byte covered by exactly one tensor (no
// gap between tensors, nothing after the last), so a file other tools reject is rejected
// here too. Tensors may be listed in any order.

// MARK: - Types

/// The element types of the safetensors format.
public enum SafeTensorsDType: String, Sendable, CaseIterable, CustomStringConvertible {
    case bool = "BOOL"
    case u8 = "U8"
    case i8 = "I8"
    case f8e4m3 = "F8_E4M3"
    case f8e5m2 = "F8_E5M2"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8, .f8e4m3, .f8e5m2: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .f64, .i64, .u64: return 8
        }
    }

    public var description: String { rawValue }
}

/// Where one tensor lives in a safetensors file.
public struct SafeTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    /// The product of `shape` (1 for a scalar of shape []).
    public let elementCount: Int
    /// `data_offsets` as in the header: relative to the start of the data buffer.
    public let dataOffsets: Range<Int>
    /// The absolute byte range in the file (`dataOffsets` shifted by 8 + header length).
    public let fileRange: Range<Int>

    public var byteCount: Int { dataOffsets.count }
}

/// A parsed and validated safetensors header.
public struct SafeTensorsHeader: Sendable, Equatable {
    /// Length of the JSON header in bytes (the u64 prefix).
    public let headerLength: Int
    /// Size of the whole file (or byte buffer) that was parsed.
    public let fileSize: Int
    /// Tensors by name.
    public let tensors: [String: SafeTensorInfo]
    /// Tensor names sorted by their UTF-8 bytes (Python's `sorted` order).
    public let names: [String]
    /// The `__metadata__` object (empty when absent).
    public let metadata: [String: String]

    /// Offset of the data buffer in the file.
    public var dataStart: Int { 8 + headerLength }
}

// MARK: - Reading

/// A memory-mapped, validated, read-only safetensors file. Only the header is read at init;
/// tensor bytes are paged in when a tensor is read. Immutable after init and safe to share
/// across threads. (As with any mmap, truncating the file on disk while it is open makes later
/// reads of the lost pages crash with SIGBUS; files are replaced atomically, never truncated,
/// by `SafeTensorsWriter`.)
public final class SafeTensorsFile: @unchecked Sendable {
    /// The largest accepted JSON header (the same limit as Python's safetensors).
    public static let maxHeaderLength = 100_000_000

    /// The path as given to init; it names the file in every error.
    public let path: String
    public let header: SafeTensorsHeader
    private let base: UnsafeRawPointer
    private let mappedLength: Int

    /// Tensor names, sorted.
    public var names: [String] { header.names }
    /// The `__metadata__` strings.
    public var metadata: [String: String] { header.metadata }
    public var fileSize: Int { header.fileSize }
    /// All tensors, in `names` order.
    public var tensors: [SafeTensorInfo] { header.names.compactMap { header.tensors[$0] } }

    public convenience init(url: URL) throws {
        try self.init(path: url.path)
    }

    public init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw SafeTensorsError.cannotOpen(file: path, reason: AtomicFileError.message(for: errno))
        }
        defer { _ = close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw SafeTensorsError.cannotOpen(file: path, reason: AtomicFileError.message(for: errno))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw SafeTensorsError.cannotOpen(file: path, reason: "not a regular file")
        }
        let size = Int(info.st_size)
        guard size >= 8 else { throw SafeTensorsError.fileTooSmall(file: path, size: size) }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0),
              mapped != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw SafeTensorsError.cannotOpen(file: path, reason: "mmap failed: " + AtomicFileError.message(for: errno))
        }
        let parsed: SafeTensorsHeader
        do {
            parsed = try SafeTensorsFile.parseHeader(bytes: UnsafeRawBufferPointer(start: mapped, count: size), fileName: path)
        } catch {
            munmap(mapped, size)
            throw error
        }
        self.path = path
        self.header = parsed
        self.base = UnsafeRawPointer(mapped)
        self.mappedLength = size
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), mappedLength)
    }

    public func contains(_ name: String) -> Bool { header.tensors[name] != nil }

    public func info(_ name: String) throws -> SafeTensorInfo {
        guard let info = header.tensors[name] else { throw SafeTensorsError.tensorNotFound(file: path, tensor: name) }
        return info
    }

    /// Calls `body` with the tensor's bytes inside the mapping (valid only during the call).
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let info = try info(name)
        return try body(UnsafeRawBufferPointer(start: base + info.fileRange.lowerBound, count: info.byteCount))
    }

    /// Drops the tensor's pages from this process's resident set (`madvise(MADV_DONTNEED)`
    /// on the page range around it). The mapping is read-only and private, so nothing is lost:
    /// a later read faults the pages back in from the page cache. Streaming consumers (merges,
    /// diffs) call this after each tensor so resident memory stays at a few tensors instead of
    /// growing to the sum of every file read.
    /// `bytes` limits it to a byte range of the tensor (for consumers that stream a large
    /// tensor in chunks).
    public func evict(_ name: String, bytes: Range<Int>? = nil) {
        guard let info = header.tensors[name], info.byteCount > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let r = bytes.map { (info.fileRange.lowerBound + max($0.lowerBound, 0))..<(info.fileRange.lowerBound + min($0.upperBound, info.byteCount)) } ?? info.fileRange
        guard !r.isEmpty else { return }
        let start = r.lowerBound / page * page
        let end = min((r.upperBound + page - 1) / page * page, (mappedLength + page - 1) / page * page)
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, Int32(MADV_DONTNEED))
    }

    /// A copy of the tensor's bytes.
    public func rawData(_ name: String) throws -> Data {
        try withRawBytes(name) { Data($0) }
    }

    /// The tensor as Floats, converting from F32, F16, BF16 or F64.
    public func floats(_ name: String) throws -> [Float] {
        let info = try info(name)
        return try [Float](unsafeUninitializedCapacity: info.elementCount) { out, initialized in
            try copyFloats(info, into: out)
            initialized = info.elementCount
        }
    }

    /// Converts the tensor (F32, F16, BF16 or F64) into `destination`, whose count must equal
    /// the tensor's element count. Lets callers fill their own storage without a temporary array.
    public func copyFloats(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws {
        let info = try info(name)
        guard destination.count == info.elementCount else {
            throw SafeTensorsError.invalidTensor(
                file: path, tensor: name,
                reason: "destination holds \(destination.count) floats, tensor has \(info.elementCount)")
        }
        try copyFloats(info, into: destination)
    }

    private func copyFloats(_ info: SafeTensorInfo, into out: UnsafeMutableBufferPointer<Float>) throws {
        let n = info.elementCount
        guard n > 0, let dst = out.baseAddress else {
            if !Self.floatTypes.contains(info.dtype) { throw unsupported(info, "Float") }
            return
        }
        let src = base + info.fileRange.lowerBound
        switch info.dtype {
        case .f32:
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: n * 4)
        case .f16, .bf16:
            let convert = info.dtype == .f16 ? convertFloat16ToFloat : convertBFloat16ToFloat
            if Int(bitPattern: src) % MemoryLayout<UInt16>.alignment == 0 {
                convert(src.assumingMemoryBound(to: UInt16.self), dst, n)
            } else {
                // Misaligned tensor (legal in the format): convert through an aligned copy.
                let tmp = UnsafeMutablePointer<UInt16>.allocate(capacity: n)
                defer { tmp.deallocate() }
                UnsafeMutableRawPointer(tmp).copyMemory(from: src, byteCount: n * 2)
                convert(UnsafePointer(tmp), dst, n)
            }
        case .f64:
            for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
        default:
            throw unsupported(info, "Float")
        }
    }

    private static let floatTypes: Set<SafeTensorsDType> = [.f32, .f16, .bf16, .f64]

    private func unsupported(_ info: SafeTensorInfo, _ target: String) -> SafeTensorsError {
        .unsupportedConversion(file: path, tensor: info.name, dtype: info.dtype.rawValue, target: target)
    }

    /// The tensor as Int64s, widening from I64, I32, I16, I8, U32, U16, U8 or BOOL (and U64
    /// when every value fits).
    public func int64s(_ name: String) throws -> [Int64] { try integers(name, as: Int64.self, native: .i64) }

    /// The tensor as Int32s, from I32, I16, I8, U16, U8 or BOOL, or from I64, U32 or U64 when
    /// every value fits (otherwise `valueOutOfRange` names the first element that does not).
    public func int32s(_ name: String) throws -> [Int32] { try integers(name, as: Int32.self, native: .i32) }

    /// One conversion for every integer target: a straight copy from the `native` dtype, an
    /// exact, checked conversion from the others.
    private func integers<Target: FixedWidthInteger>(_ name: String, as _: Target.Type, native: SafeTensorsDType) throws -> [Target] {
        let info = try info(name)
        let n = info.elementCount
        let src = base + info.fileRange.lowerBound
        func convert<T: FixedWidthInteger>(_: T.Type) throws -> [Target] {
            try (0..<n).map { i in
                let v = src.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self)
                guard let w = Target(exactly: v) else {
                    throw SafeTensorsError.valueOutOfRange(file: path, tensor: name, index: i, target: "\(Target.self)")
                }
                return w
            }
        }
        if info.dtype == native {
            return [Target](unsafeUninitializedCapacity: n) { out, initialized in
                if n > 0, let dst = out.baseAddress { UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: n * MemoryLayout<Target>.size) }
                initialized = n
            }
        }
        switch info.dtype {
        case .i64: return try convert(Int64.self)
        case .i32: return try convert(Int32.self)
        case .i16: return try convert(Int16.self)
        case .i8: return try convert(Int8.self)
        case .u64: return try convert(UInt64.self)
        case .u32: return try convert(UInt32.self)
        case .u16: return try convert(UInt16.self)
        case .u8, .bool: return try convert(UInt8.self)
        default: throw unsupported(info, "\(Target.self)")
        }
    }

    /// `int64s` as `[Int]`.
    public func ints(_ name: String) throws -> [Int] {
        try int64s(name).map { Int($0) }
    }
}

// MARK: - Header parsing

extension SafeTensorsFile {
    /// Parses and validates the header of a complete safetensors file held in `bytes`
    /// (the 8-byte length, the JSON header and the data buffer). Never traps: every malformed
    /// input throws a `SafeTensorsError` naming `fileName`. On success every tensor's
    /// `fileRange` lies inside `bytes`, matches its shape and dtype, and no two overlap.
    public static func parseHeader(bytes: UnsafeRawBufferPointer, fileName: String) throws -> SafeTensorsHeader {
        let size = bytes.count
        guard size >= 8 else { throw SafeTensorsError.fileTooSmall(file: fileName, size: size) }
        let length = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard length <= UInt64(maxHeaderLength), length <= UInt64(size - 8) else {
            throw SafeTensorsError.invalidHeaderLength(file: fileName, headerLength: length, fileSize: size)
        }
        let headerLength = Int(length)
        let dataStart = 8 + headerLength
        let dataSize = size - dataStart

        let json: StrictJSON.Value
        do {
            json = try StrictJSON.parse(UnsafeRawBufferPointer(rebasing: bytes[8..<dataStart]))
        } catch let error as StrictJSON.ParseError {
            throw SafeTensorsError.invalidHeader(
                file: fileName, reason: "not valid JSON: \(error.message) at file offset \(8 + error.offset)")
        }
        guard case .object(let members) = json else {
            throw SafeTensorsError.invalidHeader(file: fileName, reason: "the JSON header is \(json.kindDescription), not an object")
        }

        var metadata: [String: String]?
        var tensors: [String: SafeTensorInfo] = [:]
        tensors.reserveCapacity(members.count)
        for member in members {
            if member.key == "__metadata__" {
                guard metadata == nil else {
                    throw SafeTensorsError.invalidHeader(file: fileName, reason: "__metadata__ appears more than once")
                }
                metadata = try parseMetadata(member.value, fileName: fileName)
                continue
            }
            guard tensors[member.key] == nil else {
                throw SafeTensorsError.invalidTensor(file: fileName, tensor: member.key, reason: "appears more than once in the header")
            }
            tensors[member.key] = try parseTensor(
                name: member.key, member.value, dataStart: dataStart, dataSize: dataSize, fileName: fileName)
        }

        // Overlaps: sort the non-empty ranges by start; each must begin at or after the end
        // of everything before it.
        let ranges = tensors.values.filter { !$0.dataOffsets.isEmpty }.sorted {
            $0.dataOffsets.lowerBound != $1.dataOffsets.lowerBound
                ? $0.dataOffsets.lowerBound < $1.dataOffsets.lowerBound
                : utf8Less($0.name, $1.name)
        }
        var furthest: SafeTensorInfo?
        var covered = 0  // data bytes [0, covered) belong to tensors seen so far
        for t in ranges {
            if t.dataOffsets.lowerBound > covered {
                throw SafeTensorsError.invalidHeader(
                    file: fileName, reason: "data bytes \(offsets(covered..<t.dataOffsets.lowerBound)) are not covered by any tensor (a gap before \(StrictJSON.displayQuoted(t.name)))")
            }
            covered = max(covered, t.dataOffsets.upperBound)
            if let f = furthest {
                if t.dataOffsets.lowerBound < f.dataOffsets.upperBound {
                    throw SafeTensorsError.invalidTensor(
                        file: fileName, tensor: t.name,
                        reason: "data_offsets \(offsets(t.dataOffsets)) overlap tensor \(StrictJSON.displayQuoted(f.name)) at \(offsets(f.dataOffsets))")
                }
                if t.dataOffsets.upperBound > f.dataOffsets.upperBound { furthest = t }
            } else {
                furthest = t
            }
        }

        if covered != dataSize {
            throw SafeTensorsError.invalidHeader(
                file: fileName, reason: "data bytes \(offsets(covered..<dataSize)) after the last tensor are not covered by any tensor")
        }

        let names = tensors.keys.sorted(by: utf8Less)
        return SafeTensorsHeader(headerLength: headerLength, fileSize: size, tensors: tensors, names: names,
                                 metadata: metadata ?? [:])
    }

    private static func parseMetadata(_ value: StrictJSON.Value, fileName: String) throws -> [String: String] {
        switch value {
        case .null:
            return [:]
        case .object(let members):
            var result: [String: String] = [:]
            for m in members {
                guard case .string(let s) = m.value else {
                    throw SafeTensorsError.invalidHeader(
                        file: fileName,
                        reason: "__metadata__ value for \(StrictJSON.displayQuoted(m.key)) is \(m.value.kindDescription), not a string")
                }
                result[m.key] = s
            }
            return result
        default:
            throw SafeTensorsError.invalidHeader(file: fileName, reason: "__metadata__ is \(value.kindDescription), not an object of strings")
        }
    }

    private static func parseTensor(name: String, _ value: StrictJSON.Value, dataStart: Int, dataSize: Int,
                                    fileName: String) throws -> SafeTensorInfo {
        func fail(_ reason: String) -> SafeTensorsError {
            .invalidTensor(file: fileName, tensor: name, reason: reason)
        }
        guard case .object = value else { throw fail("entry is \(value.kindDescription), not an object") }

        guard let dtypeValue = value["dtype"] else { throw fail("missing \"dtype\"") }
        guard case .string(let dtypeName) = dtypeValue else { throw fail("dtype is \(dtypeValue.kindDescription), not a string") }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw fail("unknown dtype \(StrictJSON.displayQuoted(dtypeName, limit: 40))")
        }

        guard let shapeValue = value["shape"] else { throw fail("missing \"shape\"") }
        guard case .array(let dims) = shapeValue else { throw fail("shape is \(shapeValue.kindDescription), not an array") }
        var shape: [Int] = []
        shape.reserveCapacity(dims.count)
        for (i, d) in dims.enumerated() {
            shape.append(try nonNegativeInteger(d, what: "shape dimension \(i)", fail: fail))
        }

        guard let offsetsValue = value["data_offsets"] else { throw fail("missing \"data_offsets\"") }
        guard case .array(let offsetValues) = offsetsValue, offsetValues.count == 2 else {
            throw fail("data_offsets must be an array [begin, end]")
        }
        let begin = try nonNegativeInteger(offsetValues[0], what: "data_offsets begin", fail: fail)
        let end = try nonNegativeInteger(offsetValues[1], what: "data_offsets end", fail: fail)
        guard begin <= end else { throw fail("data_offsets [\(begin), \(end)] end before they begin") }
        guard end <= dataSize else {
            throw fail("data_offsets [\(begin), \(end)] run past the end of the data buffer (\(dataSize) bytes)")
        }

        var elements = 1
        for d in shape {
            let (p, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else { throw fail("shape \(describe(shape)) has too many elements") }
            elements = p
        }
        let (expected, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else { throw fail("shape \(describe(shape)) × \(dtype) is too large") }
        guard end - begin == expected else {
            throw fail("data_offsets [\(begin), \(end)] do not match shape \(describe(shape)) × \(dtype) (\(expected) bytes)")
        }
        return SafeTensorInfo(name: name, dtype: dtype, shape: shape, elementCount: elements,
                              dataOffsets: begin..<end, fileRange: (dataStart + begin)..<(dataStart + end))
    }

    private static func nonNegativeInteger(_ v: StrictJSON.Value, what: String,
                                           fail: (String) -> SafeTensorsError) throws -> Int {
        guard case .number(let text) = v else { throw fail("\(what) is \(v.kindDescription), not an integer") }
        let shown = text.count > 40 ? String(text.prefix(40)) + "…" : text
        guard StrictJSON.Value.isIntegerLiteral(text) else { throw fail("\(what) is \(shown), not an integer") }
        if text.hasPrefix("-") && text.utf8.dropFirst().contains(where: { $0 != UInt8(ascii: "0") }) {
            throw fail("\(what) is negative (\(shown))")
        }
        guard let n = StrictJSON.Value.parseInt(text) else { throw fail("\(what) \(shown) is too large") }
        return n
    }

    static func describe(_ shape: [Int]) -> String {
        if shape.count <= 8 { return "[" + shape.map(String.init).joined(separator: ", ") + "]" }
        return "[" + shape.prefix(8).map(String.init).joined(separator: ", ") + ", … (\(shape.count) dims)]"
    }

    private static func offsets(_ r: Range<Int>) -> String { "[\(r.lowerBound), \(r.upperBound)]" }
}

/// Orders strings by their UTF-8 bytes (Python's code-point order; deterministic everywhere).
@inline(__always)
func utf8Less(_ a: String, _ b: String) -> Bool {
    a.utf8.lexicographicallyPrecedes(b.utf8)
}

// MARK: - Writing

/// Collects tensors and writes them as one safetensors file: keys sorted, `__metadata__`
/// first, the JSON header padded with spaces to a multiple of 8 bytes, tensor data laid out
/// contiguously in sorted-name order, written atomically (and streamed: floats converted to
/// F16/BF16 are converted chunk by chunk, never as a whole extra copy).
public struct SafeTensorsWriter {
    /// Produces a tensor's bytes at write time by calling `write` with consecutive chunks;
    /// the chunks must add up to exactly the tensor's byte count.
    public typealias Producer = (_ write: (UnsafeRawBufferPointer) throws -> Void) throws -> Void

    private enum Payload {
        case data(Data)
        case bytes([UInt8])
        case floats([Float])
        case int64s([Int64])
        case int32s([Int32])
        case producer(Producer)
    }

    private struct Entry {
        let name: String
        let dtype: SafeTensorsDType
        let shape: [Int]
        let byteCount: Int
        let payload: Payload
    }

    private var entries: [String: Entry] = [:]

    public init() {}

    /// Names added so far, sorted.
    public var names: [String] { entries.keys.sorted(by: utf8Less) }
    public var count: Int { entries.count }

    private func checkedByteCount(name: String, dtype: SafeTensorsDType, shape: [Int]) throws -> (elements: Int, bytes: Int) {
        func fail(_ reason: String) -> SafeTensorsError { .invalidWrite(file: "", tensor: name, reason: reason) }
        guard !name.isEmpty else { throw fail("tensor names must not be empty") }
        guard name != "__metadata__" else { throw fail("__metadata__ is reserved") }
        guard entries[name] == nil else { throw fail("added more than once") }
        var elements = 1
        for d in shape {
            guard d >= 0 else { throw fail("negative dimension in shape \(SafeTensorsFile.describe(shape))") }
            let (p, o) = elements.multipliedReportingOverflow(by: d)
            guard !o else { throw fail("shape \(SafeTensorsFile.describe(shape)) has too many elements") }
            elements = p
        }
        let (bytes, o) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        guard !o else { throw fail("shape \(SafeTensorsFile.describe(shape)) × \(dtype) is too large") }
        return (elements, bytes)
    }

    private mutating func add(_ name: String, _ dtype: SafeTensorsDType, _ shape: [Int], count: Int, isBytes: Bool,
                              _ payload: Payload) throws {
        let (elements, bytes) = try checkedByteCount(name: name, dtype: dtype, shape: shape)
        guard count == (isBytes ? bytes : elements) else {
            let what = isBytes ? "\(count) bytes" : "\(count) values"
            let want = isBytes ? "\(bytes) bytes" : "\(elements) values"
            throw SafeTensorsError.invalidWrite(
                file: "", tensor: name,
                reason: "\(what) given for shape \(SafeTensorsFile.describe(shape)) × \(dtype), which needs \(want)")
        }
        entries[name] = Entry(name: name, dtype: dtype, shape: shape, byteCount: bytes, payload: payload)
    }

    /// Adds a tensor from its raw little-endian bytes.
    public mutating func add(name: String, dtype: SafeTensorsDType, shape: [Int], bytes: Data) throws {
        try add(name, dtype, shape, count: bytes.count, isBytes: true, .data(bytes))
    }

    /// Adds a tensor from its raw little-endian bytes.
    public mutating func add(name: String, dtype: SafeTensorsDType, shape: [Int], bytes: [UInt8]) throws {
        try add(name, dtype, shape, count: bytes.count, isBytes: true, .bytes(bytes))
    }

    /// Adds a tensor whose bytes `producer` streams at write time (e.g. straight from a
    /// tensor's storage, with no copy).
    public mutating func add(name: String, dtype: SafeTensorsDType, shape: [Int],
                             producer: @escaping Producer) throws {
        let (_, bytes) = try checkedByteCount(name: name, dtype: dtype, shape: shape)
        entries[name] = Entry(name: name, dtype: dtype, shape: shape, byteCount: bytes, payload: .producer(producer))
    }

    /// Adds Floats stored as F32, F16, BF16 (rounded to nearest even) or F64.
    public mutating func add(name: String, floats: [Float], shape: [Int], as dtype: SafeTensorsDType = .f32) throws {
        guard [.f32, .f16, .bf16, .f64].contains(dtype) else {
            throw SafeTensorsError.invalidWrite(file: "", tensor: name, reason: "cannot store Floats as \(dtype)")
        }
        try add(name, dtype, shape, count: floats.count, isBytes: false, .floats(floats))
    }

    /// Adds Int64s stored as I64.
    public mutating func add(name: String, int64s: [Int64], shape: [Int]) throws {
        try add(name, .i64, shape, count: int64s.count, isBytes: false, .int64s(int64s))
    }

    /// Adds Int32s stored as I32.
    public mutating func add(name: String, int32s: [Int32], shape: [Int]) throws {
        try add(name, .i32, shape, count: int32s.count, isBytes: false, .int32s(int32s))
    }

    /// The 8-byte length prefix followed by the space-padded JSON header.
    public func headerBytes(metadata: [String: String] = ["format": "pt"]) -> [UInt8] {
        var json = "{"
        var first = true
        if !metadata.isEmpty {
            json += "\"__metadata__\":{"
            json += metadata.keys.sorted(by: utf8Less).map { key in
                StrictJSON.quoted(key) + ":" + StrictJSON.quoted(metadata[key] ?? "")
            }.joined(separator: ",")
            json += "}"
            first = false
        }
        var offset = 0
        for name in names {
            guard let e = entries[name] else { continue }
            if !first { json += "," }
            first = false
            json += StrictJSON.quoted(name)
            json += ":{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":["
            json += e.shape.map(String.init).joined(separator: ",")
            json += "],\"data_offsets\":[\(offset),\(offset + e.byteCount)]}"
            offset += e.byteCount
        }
        json += "}"
        var jsonBytes = Array(json.utf8)
        let padding = (8 - jsonBytes.count % 8) % 8
        jsonBytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))
        var out: [UInt8] = []
        out.reserveCapacity(8 + jsonBytes.count)
        withUnsafeBytes(of: UInt64(jsonBytes.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: jsonBytes)
        return out
    }

    /// Writes the file atomically (through `AtomicFile`); on error the old file is untouched.
    /// An empty `metadata` omits `__metadata__`.
    public func write(to url: URL, metadata: [String: String] = ["format": "pt"]) throws {
        let file = url.path
        try AtomicFile.write(to: url) { writer in
            try emit(metadata: metadata, file: file) { try writer.write($0) }
        }
    }

    /// The whole file in memory (for small files, tests and fuzzing).
    public func serialized(metadata: [String: String] = ["format": "pt"]) throws -> Data {
        var data = Data()
        try emit(metadata: metadata, file: "") { data.append(contentsOf: $0) }
        return data
    }

    private func emit(metadata: [String: String], file: String,
                      _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        try headerBytes(metadata: metadata).withUnsafeBytes { try sink($0) }
        for name in names {
            guard let e = entries[name] else { continue }
            switch e.payload {
            case .data(let d): try d.withUnsafeBytes { try sink($0) }
            case .bytes(let b): try b.withUnsafeBytes { try sink($0) }
            case .int64s(let v): try v.withUnsafeBytes { try sink($0) }
            case .int32s(let v): try v.withUnsafeBytes { try sink($0) }
            case .floats(let v): try emitFloats(v, as: e.dtype, sink)
            case .producer(let produce):
                var written = 0
                try produce { chunk in
                    guard chunk.count <= e.byteCount - written else {
                        throw SafeTensorsError.invalidWrite(
                            file: file, tensor: name, reason: "producer wrote more than the \(e.byteCount) bytes of its shape")
                    }
                    written += chunk.count
                    try sink(chunk)
                }
                guard written == e.byteCount else {
                    throw SafeTensorsError.invalidWrite(
                        file: file, tensor: name, reason: "producer wrote \(written) of the \(e.byteCount) bytes of its shape")
                }
            }
        }
    }

    private func emitFloats(_ values: [Float], as dtype: SafeTensorsDType,
                            _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        if dtype == .f32 {
            try values.withUnsafeBytes { try sink($0) }
            return
        }
        let chunk = 1 << 16
        try values.withUnsafeBufferPointer { src in
            guard let s = src.baseAddress else { return }
            if dtype == .f64 {
                var tmp = [Double](repeating: 0, count: min(chunk, src.count))
                var i = 0
                while i < src.count {
                    let n = min(chunk, src.count - i)
                    for k in 0..<n { tmp[k] = Double(s[i + k]) }
                    try tmp.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0.prefix(n * 8))) }
                    i += n
                }
                return
            }
            var tmp = [UInt16](repeating: 0, count: min(chunk, src.count))
            var i = 0
            while i < src.count {
                let n = min(chunk, src.count - i)
                try tmp.withUnsafeMutableBufferPointer { t in
                    guard let d = t.baseAddress else { return }
                    if dtype == .f16 {
                        convertFloatToFloat16(s + i, d, count: n)
                    } else {
                        convertFloatToBFloat16(s + i, d, count: n)
                    }
                    try sink(UnsafeRawBufferPointer(UnsafeBufferPointer(start: d, count: n)))
                }
                i += n
            }
        }
    }
}
