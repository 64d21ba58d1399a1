#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SculptCore

/// A memory-mapped, validated, read-only GGUF file (versions 2 and 3, little endian).
///
/// The whole header (metadata and tensor infos) is parsed and checked at init; tensor bytes are
/// paged in when a tensor is read. Immutable after init and safe to share across threads. (As
/// with any mmap, truncating the file on disk while it is open makes later reads of the lost
/// pages crash with SIGBUS; `GGUFWriter` replaces files atomically, never truncates them.)
public final class GGUFFile: @unchecked Sendable {
    /// The path as given to init (or the name given to `init(bytes:name:)`); it names the file in every error.
    public let path: String
    /// The parsed header.
    public let header: GGUFHeader
    private let base: UnsafeRawPointer?
    private let mappedLength: Int
    private let ownsAllocation: Bool
    private let index: [String: Int]

    /// The GGUF version (2 or 3).
    public var version: UInt32 { header.version }
    /// Metadata values by key.
    public var metadata: [String: GGUFValue] { header.metadata }
    /// Metadata keys in file order.
    public var metadataKeys: [String] { header.metadataKeys }
    /// Tensor infos in file order.
    public var tensors: [GGUFTensorInfo] { header.tensors }
    /// The data alignment in bytes.
    public var alignment: Int { header.alignment }
    /// The file's size in bytes.
    public var fileSize: Int { header.fileSize }

    /// Maps and validates the file at `path`.
    public init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw GGUFError.cannotOpen(file: path, reason: AtomicFileError.message(for: errno)) }
        defer { _ = close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw GGUFError.cannotOpen(file: path, reason: AtomicFileError.message(for: errno)) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw GGUFError.cannotOpen(file: path, reason: "not a regular file") }
        let size = Int(info.st_size)
        guard size > 0 else { throw GGUFError.truncated(file: path, field: "magic", offset: 0, needed: 4, fileSize: 0) }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw GGUFError.cannotOpen(file: path, reason: "mmap failed: " + AtomicFileError.message(for: errno))
        }
        let parsed: GGUFHeader
        do {
            parsed = try GGUFFile.parseHeader(bytes: UnsafeRawBufferPointer(start: mapped, count: size), fileName: path)
        } catch {
            munmap(mapped, size)
            throw error
        }
        self.path = path
        header = parsed
        base = UnsafeRawPointer(mapped)
        mappedLength = size
        ownsAllocation = false
        index = GGUFFile.makeIndex(parsed)
    }

    /// Maps and validates the file at `url`.
    public convenience init(url: URL) throws { try self.init(path: url.path) }

    /// Validates a GGUF file held in memory (copied); `name` names it in errors.
    public init(bytes: some Collection<UInt8>, name: String) throws {
        let count = bytes.count
        let storage = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
        let copied = UnsafeMutableRawBufferPointer(start: storage, count: count)
        _ = copied.initializeMemory(as: UInt8.self, from: bytes)
        let parsed: GGUFHeader
        do {
            parsed = try GGUFFile.parseHeader(bytes: UnsafeRawBufferPointer(copied), fileName: name)
        } catch {
            storage.deallocate()
            throw error
        }
        path = name
        header = parsed
        base = UnsafeRawPointer(storage)
        mappedLength = count
        ownsAllocation = true
        index = GGUFFile.makeIndex(parsed)
    }

    deinit {
        guard let base else { return }
        if ownsAllocation {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        } else {
            munmap(UnsafeMutableRawPointer(mutating: base), mappedLength)
        }
    }

    private static func makeIndex(_ header: GGUFHeader) -> [String: Int] {
        var index: [String: Int] = [:]
        index.reserveCapacity(header.tensors.count)
        for (i, t) in header.tensors.enumerated() { index[t.name] = i }
        return index
    }

    /// The info of the tensor named `name`, or nil.
    public func tensorInfo(_ name: String) -> GGUFTensorInfo? {
        index[name].map { header.tensors[$0] }
    }

    /// The info of the tensor named `name`, or `GGUFError.tensorNotFound`.
    public func info(_ name: String) throws -> GGUFTensorInfo {
        guard let info = tensorInfo(name) else { throw GGUFError.tensorNotFound(file: path, tensor: name) }
        return info
    }

    /// The tensor's bytes inside the mapping, exactly as stored (valid as long as this
    /// `GGUFFile` is alive; keep a reference to it while using the buffer).
    public func rawData(_ name: String) throws -> UnsafeRawBufferPointer {
        let info = try info(name)
        return UnsafeRawBufferPointer(start: base.map { $0 + info.fileOffset }, count: info.byteCount)
    }

    /// Calls `body` with the tensor's bytes (the safe way to use `rawData`).
    public func withRawData<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try withExtendedLifetime(self) { try body(try rawData(name)) }
    }

    /// The tensor dequantized to Float32, in row-major shape (`info.shape`, GGUF's ne reversed).
    /// Large tensors are converted in parallel by rows over `ExecutionContext.pool`.
    public func tensor(_ name: String) throws -> Tensor {
        let info = try info(name)
        guard info.type.canDequantize else { throw GGUFError.unsupportedType(file: path, tensor: name, type: info.type) }
        var t = Tensor(uninitializedShape: info.shape)
        try t.withUnsafeMutablePointer { p in
            try dequantizeRows(info, rows: 0..<info.rowCount, into: p)
        }
        return t
    }

    /// Dequantizes rows `rows` (along GGUF's ne[1...], i.e. the leading row-major dimensions
    /// flattened) into `destination`, which must hold `rows.count * info.rowLength` Floats.
    /// An embedding lookup uses this to convert just the rows it needs.
    public func dequantizeRows(_ name: String, rows: Range<Int>, into destination: UnsafeMutablePointer<Float>) throws {
        let info = try info(name)
        guard info.type.canDequantize else { throw GGUFError.unsupportedType(file: path, tensor: name, type: info.type) }
        guard rows.lowerBound >= 0, rows.upperBound <= info.rowCount else {
            throw GGUFError.invalidTensor(file: path, tensor: name, reason: "rows \(rows) out of range (the tensor has \(info.rowCount))")
        }
        try dequantizeRows(info, rows: rows, into: destination)
    }

    private func dequantizeRows(_ info: GGUFTensorInfo, rows: Range<Int>, into destination: UnsafeMutablePointer<Float>) throws {
        guard !rows.isEmpty, let base else { return }
        let rowLength = info.rowLength, rowBytes = info.rowBytes, type = info.type
        let src = base + info.fileOffset + rows.lowerBound * rowBytes
        // Check once on the calling thread; the rows themselves cannot fail after that.
        try dequantizeRow(type: type, from: src, count: rowLength, into: destination)
        let rest = rows.count - 1
        guard rest > 0 else { return }
        let first = UncheckedSendableBox((src + rowBytes, destination + rowLength))
        let minimumRows = max(1, (1 << 16) / max(rowLength, 1))
        ExecutionContext.pool.parallelRanges(rest, minimumChunk: minimumRows) { range in
            let (s, d) = first.value
            for r in range {
                dequantizeRowUnchecked(type: type, from: s + r * rowBytes, count: rowLength, into: d + r * rowLength)
            }
        }
    }

    /// A metadata value by key.
    public subscript(key: String) -> GGUFValue? { header.metadata[key] }
}
