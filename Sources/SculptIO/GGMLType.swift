// The ggml tensor element types as they appear in GGUF tensor infos, with their block
// geometry (from ggml's type traits: ggml.c / ggml-common.h).

/// A ggml tensor type. Raw values are ggml's `enum ggml_type` numbers.
///
/// Every type stores `blockSize` consecutive elements of a row (along GGUF's `ne[0]`) in
/// `bytesPerBlock` bytes; plain types have a block size of 1.
public enum GGMLType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q4_1 = 3
    case q5_0 = 6
    case q5_1 = 7
    case q8_0 = 8
    case q8_1 = 9
    case q2_K = 10
    case q3_K = 11
    case q4_K = 12
    case q5_K = 13
    case q6_K = 14
    case q8_K = 15
    case iq2_XXS = 16
    case iq2_XS = 17
    case iq3_XXS = 18
    case iq1_S = 19
    case iq4_NL = 20
    case iq3_S = 21
    case iq2_S = 22
    case iq4_XS = 23
    case i8 = 24
    case i16 = 25
    case i32 = 26
    case i64 = 27
    case f64 = 28
    case iq1_M = 29
    case bf16 = 30
    case tq1_0 = 34
    case tq2_0 = 35

    /// The super-block size of the k-quants.
    public static let kBlockSize = 256

    /// The conventional upper-case name ("F32", "Q4_K", "IQ2_XXS", "BF16").
    public var name: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .q4_0: return "Q4_0"
        case .q4_1: return "Q4_1"
        case .q5_0: return "Q5_0"
        case .q5_1: return "Q5_1"
        case .q8_0: return "Q8_0"
        case .q8_1: return "Q8_1"
        case .q2_K: return "Q2_K"
        case .q3_K: return "Q3_K"
        case .q4_K: return "Q4_K"
        case .q5_K: return "Q5_K"
        case .q6_K: return "Q6_K"
        case .q8_K: return "Q8_K"
        case .iq2_XXS: return "IQ2_XXS"
        case .iq2_XS: return "IQ2_XS"
        case .iq3_XXS: return "IQ3_XXS"
        case .iq1_S: return "IQ1_S"
        case .iq4_NL: return "IQ4_NL"
        case .iq3_S: return "IQ3_S"
        case .iq2_S: return "IQ2_S"
        case .iq4_XS: return "IQ4_XS"
        case .i8: return "I8"
        case .i16: return "I16"
        case .i32: return "I32"
        case .i64: return "I64"
        case .f64: return "F64"
        case .iq1_M: return "IQ1_M"
        case .bf16: return "BF16"
        case .tq1_0: return "TQ1_0"
        case .tq2_0: return "TQ2_0"
        }
    }

    public var description: String { name }

    /// Elements per block (1 for plain types, 32 for the legacy quants, 256 for k-quants).
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16, .f64, .i8, .i16, .i32, .i64: return 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1, .iq4_NL: return 32
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K,
             .iq2_XXS, .iq2_XS, .iq3_XXS, .iq1_S, .iq3_S, .iq2_S, .iq4_XS, .iq1_M, .tq1_0, .tq2_0:
            return GGMLType.kBlockSize
        }
    }

    /// Bytes per block (ggml's `type_size`).
    public var bytesPerBlock: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .f64, .i64: return 8
        case .i8: return 1
        case .i16: return 2
        case .i32: return 4
        case .q4_0: return 18        // f16 d, 16 bytes of nibbles
        case .q4_1: return 20        // f16 d, f16 m, 16 bytes of nibbles
        case .q5_0: return 22        // f16 d, u32 high bits, 16 bytes of nibbles
        case .q5_1: return 24        // f16 d, f16 m, u32 high bits, 16 bytes of nibbles
        case .q8_0: return 34        // f16 d, 32 int8
        case .q8_1: return 36        // f16 d, f16 s, 32 int8
        case .q2_K: return 84        // 16 scales, 64 quants, f16 d, f16 dmin
        case .q3_K: return 110       // 32 hmask, 64 quants, 12 scales, f16 d
        case .q4_K: return 144       // f16 d, f16 dmin, 12 scales, 128 quants
        case .q5_K: return 176       // f16 d, f16 dmin, 12 scales, 32 qh, 128 qs
        case .q6_K: return 210       // 128 ql, 64 qh, 16 int8 scales, f16 d
        case .q8_K: return 292       // f32 d, 256 int8, 16 int16 bsums
        case .iq2_XXS: return 66
        case .iq2_XS: return 74
        case .iq3_XXS: return 98
        case .iq1_S: return 50
        case .iq4_NL: return 18
        case .iq3_S: return 110
        case .iq2_S: return 82
        case .iq4_XS: return 136
        case .iq1_M: return 56
        case .tq1_0: return 54
        case .tq2_0: return 66
        }
    }

    /// Whether `dequantizeRow` (and so `GGUFFile.tensor`) can convert this type to Float32.
    /// (Q8_1 is excluded: ggml has no reference dequantizer for it; it never appears in model files.)
    public var canDequantize: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64, .i8, .i16, .i32, .i64,
             .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K:
            return true
        default:
            return false
        }
    }

    /// Whether `GGUFWriter` can produce this type from Float32 values.
    public var canQuantize: Bool {
        switch self {
        case .f32, .f16, .bf16, .q8_0, .q4_0, .q4_1: return true
        default: return false
        }
    }

    /// Parses a name such as "q8_0", "Q4_K" or "bf16" (case-insensitive).
    public init?(name: String) {
        let upper = name.uppercased()
        guard let t = GGMLType.allCases.first(where: { $0.name == upper }) else { return nil }
        self = t
    }

    /// Bytes taken by `elements` elements of one row (nil when `elements` is not a multiple of
    /// the block size, or on overflow).
    public func rowBytes(_ elements: Int) -> Int? {
        guard elements >= 0, elements % blockSize == 0 else { return nil }
        let (n, o) = (elements / blockSize).multipliedReportingOverflow(by: bytesPerBlock)
        return o ? nil : n
    }
}
