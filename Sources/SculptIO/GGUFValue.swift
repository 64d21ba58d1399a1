// GGUF metadata values: the 13 value types of the format and typed accessors for them.

/// The type tag of a GGUF metadata value (`enum gguf_type`, stored as a u32).
public enum GGUFValueType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case uint8 = 0
    case int8 = 1
    case uint16 = 2
    case int16 = 3
    case uint32 = 4
    case int32 = 5
    case float32 = 6
    case bool = 7
    case string = 8
    case array = 9
    case uint64 = 10
    case int64 = 11
    case float64 = 12

    public var description: String {
        switch self {
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .uint16: return "uint16"
        case .int16: return "int16"
        case .uint32: return "uint32"
        case .int32: return "int32"
        case .float32: return "float32"
        case .bool: return "bool"
        case .string: return "string"
        case .array: return "array"
        case .uint64: return "uint64"
        case .int64: return "int64"
        case .float64: return "float64"
        }
    }

    /// Encoded size of one value of a fixed-size type (nil for string and array).
    public var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64: return 8
        case .string, .array: return nil
        }
    }

    /// The fewest bytes one encoded value of this type can take (a string is at least its
    /// u64 length, an array its u32 type and u64 count).
    var minimumEncodedSize: Int { fixedSize ?? (self == .string ? 8 : 12) }
}

/// A GGUF metadata value.
///
/// Arrays carry their element type so that empty arrays keep it and writers can reproduce
/// them; every element of `.array(t, values)` has type `t` (nested arrays have `t == .array`).
public enum GGUFValue: Sendable, Equatable, CustomStringConvertible {
    case uint8(UInt8)
    case int8(Int8)
    case uint16(UInt16)
    case int16(Int16)
    case uint32(UInt32)
    case int32(Int32)
    case float32(Float)
    case bool(Bool)
    case string(String)
    case uint64(UInt64)
    case int64(Int64)
    case float64(Double)
    indirect case array(GGUFValueType, [GGUFValue])

    /// The value's type tag.
    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .float32: return .float32
        case .bool: return .bool
        case .string: return .string
        case .uint64: return .uint64
        case .int64: return .int64
        case .float64: return .float64
        case .array: return .array
        }
    }

    /// Any integer value that fits in `Int` (nil for other types and for UInt64 values above `Int.max`).
    public var int: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return Int(exactly: v)
        case .int64(let v): return Int(exactly: v)
        default: return nil
        }
    }

    /// A float or integer value as Double (nil for bool, string and array).
    public var double: Double? {
        switch self {
        case .float32(let v): return Double(v)
        case .float64(let v): return v
        case .uint64(let v): return Double(v)
        case .int64(let v): return Double(v)
        default: return int.map(Double.init)
        }
    }

    /// A float or integer value as Float.
    public var float: Float? { double.map(Float.init) }

    /// A bool value.
    public var bool: Bool? {
        if case .bool(let v) = self { return v }
        return nil
    }

    /// A string value.
    public var string: String? {
        if case .string(let v) = self { return v }
        return nil
    }

    /// The elements of an array value.
    public var array: [GGUFValue]? {
        if case .array(_, let v) = self { return v }
        return nil
    }

    /// The element type of an array value.
    public var arrayElementType: GGUFValueType? {
        if case .array(let t, _) = self { return t }
        return nil
    }

    /// An array of strings.
    public var stringArray: [String]? { elements { $0.string } }

    /// An array of integers (each converted as by `int`).
    public var intArray: [Int]? { elements { $0.int } }

    /// An array of numbers as Floats.
    public var floatArray: [Float]? { elements { $0.float } }

    /// An array of numbers as Doubles.
    public var doubleArray: [Double]? { elements { $0.double } }

    /// An array of bools.
    public var boolArray: [Bool]? { elements { $0.bool } }

    private func elements<T>(_ convert: (GGUFValue) -> T?) -> [T]? {
        guard case .array(_, let values) = self else { return nil }
        var out: [T] = []
        out.reserveCapacity(values.count)
        for v in values {
            guard let c = convert(v) else { return nil }
            out.append(c)
        }
        return out
    }

    /// A readable one-line rendering: numbers as numbers, strings quoted, arrays as
    /// `[type × count: first elements, …]` (at most 8 elements shown).
    public var description: String { render(limit: 8) }

    /// `description` showing at most `limit` array elements per level.
    public func render(limit: Int) -> String {
        switch self {
        case .uint8(let v): return String(v)
        case .int8(let v): return String(v)
        case .uint16(let v): return String(v)
        case .int16(let v): return String(v)
        case .uint32(let v): return String(v)
        case .int32(let v): return String(v)
        case .uint64(let v): return String(v)
        case .int64(let v): return String(v)
        case .float32(let v): return "\(v)"
        case .float64(let v): return "\(v)"
        case .bool(let v): return v ? "true" : "false"
        case .string(let v): return StrictJSON.displayQuoted(v)
        case .array(let t, let values):
            let shown = values.prefix(max(0, limit)).map { $0.render(limit: limit) }
            if values.isEmpty { return "[\(t) × 0]" }
            let more = values.count > shown.count ? ", …" : ""
            return "[\(t) × \(values.count): " + shown.joined(separator: ", ") + more + "]"
        }
    }
}
