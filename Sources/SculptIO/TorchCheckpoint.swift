import Foundation
import SculptCore

/// A malformed or unsupported PyTorch checkpoint (`torch.save` zip: `pytorch_model.bin`,
/// PEFT's `adapter_model.bin`).
public struct TorchCheckpointError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let reason: String
    public var description: String { "\(file): \(reason)" }
}

/// Reads the state dict of a `torch.save` file (the zip format PyTorch writes since 1.6)
/// without running any Python: the pickle is interpreted by a small machine that knows only
/// what a state dict holds (an OrderedDict of `torch._utils._rebuild_tensor_v2` tensors over
/// float32/float16/bfloat16/float64 storages); any other callable in the pickle is refused, so
/// a file cannot make it run code. Tensors may share storages and have any offset and strides.
public enum TorchCheckpoint {
    /// Name → float32 tensor, for every tensor of the state dict.
    public static func read(_ url: URL) throws -> [String: Tensor] {
        func fail(_ r: String) -> TorchCheckpointError { TorchCheckpointError(file: url.path, reason: r) }
        guard let data = try? Data(contentsOf: url, options: .alwaysMapped) else { throw fail("cannot read the file") }
        let bytes = [UInt8](data)
        let entries = try ZipEntries(bytes, fail: fail)
        guard let pkl = entries.names.first(where: { $0.hasSuffix("/data.pkl") || $0 == "data.pkl" }) else {
            throw fail("not a torch.save zip archive (no data.pkl; a legacy pre-1.6 pickle file is not supported)")
        }
        let prefix = String(pkl.dropLast("data.pkl".count))
        var machine = Unpickler(bytes: try entries.contents(pkl), fail: fail) { key in try entries.contents(prefix + "data/" + key) }
        let root = try machine.run()
        guard case .dict(let items) = root else { throw fail("the pickle holds \(root.kind), not a state dict") }
        var out: [String: Tensor] = [:]
        for (k, v) in items {
            guard case .string(let name) = k else { throw fail("a state-dict key is \(k.kind), not a string") }
            guard case .tensor(let t) = v else { throw fail("\(name): \(v.kind), not a tensor") }
            out[name] = t
        }
        return out
    }
}

/// The stored (or deflated) members of a zip archive; zip64 archives are refused.
struct ZipEntries {
    let bytes: [UInt8]
    var entries: [String: (offset: Int, size: Int, compressed: Int, method: Int)] = [:]
    var names: [String] { entries.keys.sorted() }
    let fail: (String) -> TorchCheckpointError

    init(_ bytes: [UInt8], fail: @escaping (String) -> TorchCheckpointError) throws {
        self.bytes = bytes
        self.fail = fail
        func u16(_ o: Int) throws -> Int { guard o >= 0, o + 2 <= bytes.count else { throw fail("truncated zip archive") }; return Int(bytes[o]) | Int(bytes[o + 1]) << 8 }
        func u32(_ o: Int) throws -> Int { let lo = try u16(o), hi = try u16(o + 2); return lo | hi << 16 }
        var eocd = -1
        var i = bytes.count - 22
        while i >= max(0, bytes.count - 22 - 65_535) {
            if bytes[i] == 0x50, bytes[i + 1] == 0x4b, bytes[i + 2] == 5, bytes[i + 3] == 6 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw fail("not a zip archive (no end-of-central-directory record)") }
        let count = try u16(eocd + 10)
        var p = try u32(eocd + 16)
        guard count != 0xFFFF, p != 0xFFFF_FFFF else { throw fail("a zip64 archive (a checkpoint over 4 GB) is not supported; convert it to safetensors") }
        for _ in 0..<count {
            guard try u32(p) == 0x0201_4b50 else { throw fail("corrupt zip central directory") }
            let method = try u16(p + 10), compressed = try u32(p + 20), size = try u32(p + 24)
            let nameLength = try u16(p + 28), extra = try u16(p + 30), comment = try u16(p + 32), local = try u32(p + 42)
            guard p + 46 + nameLength <= bytes.count else { throw fail("truncated zip archive") }
            let name = String(decoding: bytes[(p + 46)..<(p + 46 + nameLength)], as: UTF8.self)
            guard try u32(local) == 0x0403_4b50 else { throw fail("\(name): corrupt zip local header") }
            let localName = try u16(local + 26), localExtra = try u16(local + 28)
            let start = local + 30 + localName + localExtra
            guard start + compressed <= bytes.count else { throw fail("\(name): extends past the end of the file") }
            entries[name] = (start, size, compressed, method)
            p += 46 + nameLength + extra + comment
        }
    }

    func contents(_ name: String) throws -> [UInt8] {
        guard let e = entries[name] else { throw fail("the archive has no member \(name)") }
        let raw = Array(bytes[e.offset..<(e.offset + e.compressed)])
        switch e.method {
        case 0: return raw
        case 8:
            do { return try Gzip.inflateRaw(raw, expectedSize: e.size) } catch { throw fail("\(name): \(error)") }
        default: throw fail("\(name): zip compression method \(e.method) is not supported")
        }
    }
}

/// A value on the pickle machine's stack.
indirect enum PickleValue {
    case none, bool(Bool), int(Int), float(Double), string(String), bytes([UInt8])
    case tuple([PickleValue]), list([PickleValue]), dict([(PickleValue, PickleValue)])
    case global(String), storage(type: String, key: String), tensor(Tensor), mark

    var kind: String {
        switch self {
        case .none: return "None"
        case .bool: return "a bool"
        case .int: return "an int"
        case .float: return "a float"
        case .string: return "a string"
        case .bytes: return "bytes"
        case .tuple: return "a tuple"
        case .list: return "a list"
        case .dict: return "a dict"
        case .global(let g): return "the global \(g)"
        case .storage: return "a storage"
        case .tensor: return "a tensor"
        case .mark: return "a mark"
        }
    }
}

/// The subset of the pickle protocol (2–4) `torch.save` state dicts use.
struct Unpickler {
    let bytes: [UInt8]
    let fail: (String) -> TorchCheckpointError
    let storageBytes: (String) throws -> [UInt8]
    var pos = 0
    var stack: [PickleValue] = []
    var memo: [Int: PickleValue] = [:]
    var storages: [String: [UInt8]] = [:]

    init(bytes: [UInt8], fail: @escaping (String) -> TorchCheckpointError, storage: @escaping (String) throws -> [UInt8]) {
        self.bytes = bytes
        self.fail = fail
        storageBytes = storage
    }

    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, pos + n <= bytes.count else { throw fail("truncated pickle (data.pkl)") }
        defer { pos += n }
        return bytes[pos..<(pos + n)]
    }
    mutating func uint(_ n: Int) throws -> Int { try take(n).reversed().reduce(0) { $0 << 8 | Int($1) } }
    mutating func line() throws -> String {
        guard let end = bytes[pos...].firstIndex(of: 0x0A) else { throw fail("truncated pickle (data.pkl)") }
        defer { pos = end + 1 }
        return String(decoding: bytes[pos..<end], as: UTF8.self)
    }
    mutating func pop() throws -> PickleValue { guard let v = stack.popLast() else { throw fail("malformed pickle (stack underflow)") }; return v }
    mutating func popToMark() throws -> [PickleValue] {
        guard let m = stack.lastIndex(where: { if case .mark = $0 { return true }; return false }) else { throw fail("malformed pickle (no mark)") }
        let items = Array(stack[(m + 1)...])
        stack.removeSubrange(m...)
        return items
    }

    mutating func run() throws -> PickleValue {
        while true {
            let op = try take(1).first!
            switch op {
            case 0x80: _ = try take(1)                                   // PROTO
            case 0x95: _ = try take(8)                                   // FRAME
            case 0x2E: return try pop()                                  // STOP
            case 0x28: stack.append(.mark)                               // MARK
            case 0x4E: stack.append(.none)                               // NONE
            case 0x88: stack.append(.bool(true))                         // NEWTRUE
            case 0x89: stack.append(.bool(false))                        // NEWFALSE
            case 0x4B: stack.append(.int(try uint(1)))                   // BININT1
            case 0x4D: stack.append(.int(try uint(2)))                   // BININT2
            case 0x4A: stack.append(.int(Int(Int32(truncatingIfNeeded: try uint(4)))))   // BININT
            case 0x8A:                                                   // LONG1
                let n = try uint(1)
                let b = try take(n)
                guard n <= 8 else { throw fail("an integer of \(n) bytes in the pickle") }
                var v = b.reversed().reduce(0) { $0 << 8 | Int($1) }
                if n > 0 && n < 8 && b.last! & 0x80 != 0 { v -= 1 << (8 * n) }
                stack.append(.int(v))
            case 0x47:                                                   // BINFLOAT (big-endian)
                stack.append(.float(Double(bitPattern: UInt64(try take(8).reduce(0) { $0 << 8 | Int($1) }))))
            case 0x58: stack.append(.string(String(decoding: try take(try uint(4)), as: UTF8.self)))   // BINUNICODE
            case 0x8C: stack.append(.string(String(decoding: try take(try uint(1)), as: UTF8.self)))   // SHORT_BINUNICODE
            case 0x54: stack.append(.string(String(decoding: try take(try uint(4)), as: UTF8.self)))   // BINSTRING
            case 0x55: stack.append(.string(String(decoding: try take(try uint(1)), as: UTF8.self)))   // SHORT_BINSTRING
            case 0x43: stack.append(.bytes(Array(try take(try uint(1)))))                              // SHORT_BINBYTES
            case 0x42: stack.append(.bytes(Array(try take(try uint(4)))))                              // BINBYTES
            case 0x29: stack.append(.tuple([]))                          // EMPTY_TUPLE
            case 0x85: stack.append(.tuple([try pop()]))                 // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); stack.append(.tuple([a, b]))                  // TUPLE2
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(.tuple([a, b, c])) // TUPLE3
            case 0x74: stack.append(.tuple(try popToMark()))             // TUPLE
            case 0x5D: stack.append(.list([]))                           // EMPTY_LIST
            case 0x7D: stack.append(.dict([]))                           // EMPTY_DICT
            case 0x61:                                                   // APPEND
                let v = try pop()
                guard case .list(var l) = try pop() else { throw fail("malformed pickle (APPEND to a non-list)") }
                l.append(v); stack.append(.list(l))
            case 0x65:                                                   // APPENDS
                let items = try popToMark()
                guard case .list(var l) = try pop() else { throw fail("malformed pickle (APPENDS to a non-list)") }
                l += items; stack.append(.list(l))
            case 0x73:                                                   // SETITEM
                let v = try pop(), k = try pop()
                guard case .dict(var d) = try pop() else { throw fail("malformed pickle (SETITEM on a non-dict)") }
                d.append((k, v)); stack.append(.dict(d))
            case 0x75:                                                   // SETITEMS
                let items = try popToMark()
                guard items.count % 2 == 0, case .dict(var d) = try pop() else { throw fail("malformed pickle (SETITEMS)") }
                for i in stride(from: 0, to: items.count, by: 2) { d.append((items[i], items[i + 1])) }
                stack.append(.dict(d))
            case 0x71: guard let top = stack.last else { throw fail("malformed pickle") }; memo[try uint(1)] = top     // BINPUT
            case 0x72: guard let top = stack.last else { throw fail("malformed pickle") }; memo[try uint(4)] = top     // LONG_BINPUT
            case 0x94: guard let top = stack.last else { throw fail("malformed pickle") }; memo[memo.count] = top      // MEMOIZE
            case 0x68: guard let v = memo[try uint(1)] else { throw fail("malformed pickle (unknown memo)") }; stack.append(v)  // BINGET
            case 0x6A: guard let v = memo[try uint(4)] else { throw fail("malformed pickle (unknown memo)") }; stack.append(v)  // LONG_BINGET
            case 0x63: let module = try line(), name = try line(); stack.append(.global("\(module).\(name)"))                // GLOBAL
            case 0x93:                                                   // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else { throw fail("malformed pickle (STACK_GLOBAL)") }
                stack.append(.global("\(module).\(name)"))
            case 0x51:                                                   // BINPERSID
                guard case .tuple(let pid) = try pop(), pid.count >= 3, case .string("storage") = pid[0],
                      case .global(let type) = pid[1], case .string(let key) = pid[2] else { throw fail("a persistent id that is not a tensor storage") }
                stack.append(.storage(type: type, key: key))
            case 0x52:                                                   // REDUCE
                guard case .tuple(let args) = try pop(), case .global(let callable) = try pop() else { throw fail("malformed pickle (REDUCE)") }
                stack.append(try call(callable, args))
            case 0x62: _ = try pop()                                     // BUILD: state of an OrderedDict / tensor; nothing to set
            default:
                throw fail(String(format: "pickle opcode 0x%02x is not one a state dict uses", op))
            }
        }
    }

    /// The only callables a state dict needs; anything else is refused.
    mutating func call(_ callable: String, _ args: [PickleValue]) throws -> PickleValue {
        switch callable {
        case "collections.OrderedDict": return .dict([])
        case "torch._utils._rebuild_parameter":
            guard let t = args.first, case .tensor = t else { throw fail("_rebuild_parameter without a tensor") }
            return t
        case "torch._utils._rebuild_tensor_v2":
            guard args.count >= 4, case .storage(let type, let key) = args[0], case .int(let offset) = args[1],
                  case .tuple(let sizeItems) = args[2], case .tuple(let strideItems) = args[3] else { throw fail("a malformed _rebuild_tensor_v2 call") }
            let size = try sizeItems.map { v -> Int in guard case .int(let i) = v, i >= 0 else { throw fail("a tensor size that is not a count") }; return i }
            let stride = try strideItems.map { v -> Int in guard case .int(let i) = v, i >= 0 else { throw fail("a tensor stride that is not a count") }; return i }
            guard size.count == stride.count else { throw fail("a tensor with \(size.count) sizes and \(stride.count) strides") }
            return .tensor(try tensor(type: type, key: key, offset: offset, size: size, stride: stride))
        default:
            throw fail("the pickle calls \(callable), which a state dict does not; refused (Sculpt never runs pickled code)")
        }
    }

    mutating func tensor(type: String, key: String, offset: Int, size: [Int], stride: [Int]) throws -> Tensor {
        let width: Int
        switch type {
        case "torch.FloatStorage", "torch.HalfStorage", "torch.BFloat16Storage", "torch.DoubleStorage":
            width = type == "torch.DoubleStorage" ? 8 : type == "torch.FloatStorage" ? 4 : 2
        default: throw fail("storage \(type) is not a floating-point type Sculpt reads")
        }
        if storages[key] == nil { storages[key] = try storageBytes(key) }
        let raw = storages[key]!
        let count = size.reduce(1, *)
        var last = offset
        for (n, s) in zip(size, stride) where n > 0 { last += (n - 1) * s }
        guard count == 0 || (last + 1) * width <= raw.count else { throw fail("tensor over storage \(key) reaches past its \(raw.count) bytes") }
        var values = [Float](repeating: 0, count: count)
        var index = [Int](repeating: 0, count: size.count)
        for i in 0..<count {
            var element = offset
            for d in 0..<size.count { element += index[d] * stride[d] }
            let b = element * width
            switch width {
            case 4: values[i] = Float(bitPattern: UInt32(raw[b]) | UInt32(raw[b + 1]) << 8 | UInt32(raw[b + 2]) << 16 | UInt32(raw[b + 3]) << 24)
            case 8:
                var bits: UInt64 = 0
                for k in 0..<8 { bits |= UInt64(raw[b + k]) << (8 * k) }
                values[i] = Float(Double(bitPattern: bits))
            default:
                let bits = UInt16(raw[b]) | UInt16(raw[b + 1]) << 8
                values[i] = type == "torch.HalfStorage" ? float16BitsToFloat(bits) : bfloat16BitsToFloat(bits)
            }
            var d = size.count - 1
            while d >= 0 { index[d] += 1; if index[d] < size[d] { break }; index[d] = 0; d -= 1 }
        }
        return Tensor(shape: size, data: values)
    }
}
