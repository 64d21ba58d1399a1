import Foundation
#if os(Linux)
/// glibc's mallopt (declared in malloc.h, which the Glibc module does not export).
@_silgen_name("mallopt") private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

/// glibc hands every allocation above 128 KiB to mmap and returns it on free, so each large
/// activation costs fresh zeroed pages (page faults were ~20 % of a BERT step). Raising the
/// threshold to its maximum (32 MiB) and not trimming the heap keeps freed buffers for reuse,
/// like PyTorch's caching allocator. Evaluated once, before the first tensor buffer.
private let heapTuning: Bool = {
    #if os(Linux)
    _ = glibcMallopt(-3 /* M_MMAP_THRESHOLD */, 32 << 20)
    _ = glibcMallopt(-1 /* M_TRIM_THRESHOLD */, 1 << 30)
    #endif
    return true
}()

/// Buffers above glibc's largest mmap threshold (32 MiB; e.g. the 30522 x 384 word-embedding
/// gradient, 47 MB, made every training step) still come from mmap and go back to the kernel
/// on free, so each use paid ~11k page faults and the kernel's zeroing (~8% of a BERT training
/// step). Freed buffers of that size are kept here, a few at a time, for the next allocation
/// of the same size.
private final class LargeBufferCache: @unchecked Sendable {
    static let shared = LargeBufferCache()
    static let minimumBytes = 32 << 20
    private let lock = NSLock()
    private var free: [(bytes: Int, pointer: UnsafeMutableRawPointer)] = []
    private var heldBytes = 0
    private let maximumHeldBytes = 512 << 20
    private let maximumHeldBuffers = 4

    func take(bytes: Int) -> UnsafeMutableRawPointer? {
        lock.lock(); defer { lock.unlock() }
        guard let i = free.firstIndex(where: { $0.bytes == bytes }) else { return nil }
        heldBytes -= bytes
        return free.remove(at: i).pointer
    }

    /// Keeps the buffer (returns true) or leaves it to the caller to release.
    func give(_ pointer: UnsafeMutableRawPointer, bytes: Int) -> Bool {
        lock.lock(); defer { lock.unlock() }
        if bytes > maximumHeldBytes { return false }
        // Oldest first out until the new one fits.
        while !free.isEmpty && (free.count >= maximumHeldBuffers || heldBytes + bytes > maximumHeldBytes) {
            let old = free.removeFirst()
            heldBytes -= old.bytes
            old.pointer.deallocate()
        }
        free.append((bytes, pointer))
        heldBytes += bytes
        return true
    }
}

/// Owns a 64-byte aligned Float32 buffer. Tensors share it copy-on-write.
public final class TensorStorage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int) {
        _ = heapTuning
        self.count = count
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let raw = (bytes >= LargeBufferCache.minimumBytes ? LargeBufferCache.shared.take(bytes: bytes) : nil)
            ?? UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    deinit {
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let raw = UnsafeMutableRawPointer(pointer)
        if bytes >= LargeBufferCache.minimumBytes && LargeBufferCache.shared.give(raw, bytes: bytes) { return }
        raw.deallocate()
    }
}

/// A dense, contiguous, row-major Float32 tensor with value semantics (copy-on-write).
///
/// This is the raw value type that kernels work on; `Variable` wraps it for autodiff.
public struct Tensor: Sendable {
    public private(set) var shape: [Int]
    public private(set) var storage: TensorStorage

    /// An uninitialised tensor: every element must be written before it is read.
    public init(uninitializedShape shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(shape)")
        self.shape = shape
        storage = TensorStorage(count: Shape.count(shape))
    }

    public init(shape: [Int], repeating value: Float = 0) {
        self.init(uninitializedShape: shape)
        storage.pointer.initialize(repeating: value, count: count)
    }

    public init(shape: [Int], data: [Float]) {
        let n = Shape.count(shape)
        precondition(data.count == n, "Tensor: \(data.count) values do not fill shape \(shape) (\(n) elements)")
        self.init(uninitializedShape: shape)
        data.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: n) }
    }

    public init(scalar: Float) { self.init(shape: [], data: [scalar]) }

    /// Builds a tensor by filling its buffer.
    public init(shape: [Int], fill: (UnsafeMutableBufferPointer<Float>) -> Void) {
        self.init(uninitializedShape: shape)
        fill(UnsafeMutableBufferPointer(start: storage.pointer, count: count))
    }

    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 0) }
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 1) }

    /// Standard normal samples times `std`.
    public static func randomNormal(_ shape: [Int], std: Float = 1, using rng: inout SeededRNG) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        for i in 0..<t.count { t.storage.pointer[i] = rng.nextNormal() * std }
        return t
    }

    /// Uniform samples in [low, high).
    public static func randomUniform(_ shape: [Int], low: Float, high: Float, using rng: inout SeededRNG) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        for i in 0..<t.count { t.storage.pointer[i] = low + (high - low) * rng.nextFloat() }
        return t
    }

    @inlinable public var count: Int { storage.count }
    @inlinable public var rank: Int { shape.count }
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: count)) }
    /// The single value of a one-element tensor.
    public var scalar: Float {
        precondition(count == 1, "Tensor.scalar: tensor of shape \(shape) has \(count) elements")
        return storage.pointer[0]
    }

    public subscript(flat index: Int) -> Float {
        get { storage.pointer[index] }
        set { makeUnique(); storage.pointer[index] = newValue }
    }

    /// Ensures the storage is not shared, copying it if needed; returns whether it copied.
    @discardableResult
    public mutating func makeUnique() -> Bool {
        if isKnownUniquelyReferenced(&storage) { return false }
        let fresh = TensorStorage(count: storage.count)
        fresh.pointer.update(from: storage.pointer, count: storage.count)
        storage = fresh
        return true
    }

    /// Read access to the contiguous buffer.
    @inlinable
    public func withUnsafePointer<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafePointer(storage.pointer))
    }

    /// Write access to the buffer (copying first if shared).
    @inlinable
    public mutating func withUnsafeMutablePointer<R>(_ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        makeUnique()
        return try body(storage.pointer)
    }

    /// The same data under another shape of equal size (no copy). One dimension may be -1.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var t = self
        t.shape = checked { try Tensor.resolveReshape(shape, newShape) }
        return t
    }

    static func resolveReshape(_ old: [Int], _ new: [Int]) throws -> [Int] {
        let total = Shape.count(old)
        var shape = new
        let unknown = new.indices.filter { new[$0] == -1 }
        guard unknown.count <= 1 else { throw ShapeError("reshape", "more than one -1 in \(new)") }
        if let u = unknown.first {
            let known = new.enumerated().filter { $0.offset != u }.map(\.element).reduce(1, *)
            guard known > 0, total % known == 0 else {
                throw ShapeError("reshape", "cannot reshape \(old) into \(new)")
            }
            shape[u] = total / known
        }
        guard shape.allSatisfy({ $0 >= 0 }), Shape.count(shape) == total else {
            throw ShapeError("reshape", "cannot reshape \(old) (\(total) elements) into \(new)")
        }
        return shape
    }

    /// A deep copy with its own storage.
    public func copy() -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        t.storage.pointer.update(from: storage.pointer, count: count)
        return t
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = scalars.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(count > 8 ? ", …" : "")])"
    }
}

extension Tensor: Equatable {
    public static func == (a: Tensor, b: Tensor) -> Bool {
        a.shape == b.shape && (a.storage === b.storage || memcmp(a.storage.pointer, b.storage.pointer, a.count * 4) == 0)
    }
}

/// An integer tensor for indices and labels (token ids, class labels, gather indices).
public struct IndexTensor<Element: FixedWidthInteger & Sendable>: Sendable, Equatable {
    public let shape: [Int]
    public let values: [Element]

    public init(shape: [Int], values: [Element]) {
        precondition(Shape.count(shape) == values.count, "IndexTensor: \(values.count) values do not fill shape \(shape)")
        self.shape = shape
        self.values = values
    }

    public init(_ values: [Element]) { self.init(shape: [values.count], values: values) }

    public var count: Int { values.count }

    /// Converts to another integer width, failing if a value does not fit.
    public func converted<T: FixedWidthInteger & Sendable>(to: T.Type) throws -> IndexTensor<T> {
        var out = [T]()
        out.reserveCapacity(values.count)
        for v in values {
            guard let c = T(exactly: v) else { throw ShapeError("IndexTensor", "value \(v) does not fit in \(T.self)") }
            out.append(c)
        }
        return IndexTensor<T>(shape: shape, values: out)
    }
}

public typealias Int32Tensor = IndexTensor<Int32>
public typealias Int64Tensor = IndexTensor<Int64>
