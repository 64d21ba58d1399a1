// Unicode character classes of the regexes in byte-level BPE pre-tokenizers (`\p{L}`, `\p{N}`,
// `\s`, ...), as Hugging Face `tokenizers` sees them.
//
// `tokenizers` matches its patterns with Oniguruma, whose tables are Unicode 16.0; Swift 6.3's
// are newer. Probing every code point through `tokenizers` 0.23.3 showed that Swift's general
// categories restricted to code points assigned in Unicode ≤ 16.0 agree with Oniguruma's
// `\s \p{L} \p{Lu} \p{Ll} \p{Lt} \p{Lm} \p{Lo} \p{M} \p{N} \p{P} \p{S}` on all 1,112,064 code
// points, except U+0295 (Ll for Oniguruma, Lo in Unicode 17). The hand-written scanners use
// these classes; the general regex fallback (Swift `Regex`) uses Swift's own tables.

enum BPECharClass {
    static let letter: UInt16 = 1 << 0
    static let number: UInt16 = 1 << 1
    static let whitespace: UInt16 = 1 << 2
    static let upper: UInt16 = 1 << 3
    static let lower: UInt16 = 1 << 4
    static let title: UInt16 = 1 << 5
    static let modifier: UInt16 = 1 << 6
    static let otherLetter: UInt16 = 1 << 7
    static let mark: UInt16 = 1 << 8
    static let punctuation: UInt16 = 1 << 9
    static let symbol: UInt16 = 1 << 10

    /// Flags of the Basic Multilingual Plane, computed once.
    private static let bmp: [UInt16] = {
        var table = [UInt16](repeating: 0, count: 0x10000)
        for v in 0..<0x10000 {
            if let s = Unicode.Scalar(UInt32(v)) { table[v] = compute(s) }
        }
        return table
    }()

    /// The class flags of `s`.
    @inline(__always)
    static func flags(_ s: Unicode.Scalar) -> UInt16 {
        let v = s.value
        return v < 0x10000 ? bmp[Int(v)] : compute(s)
    }

    static func compute(_ s: Unicode.Scalar) -> UInt16 {
        let p = s.properties
        if s.value == 0x295 { return letter | lower }
        if let age = p.age, age.major > 16 { return 0 }
        var f: UInt16 = p.isWhitespace ? whitespace : 0
        switch p.generalCategory {
        case .uppercaseLetter: f |= letter | upper
        case .lowercaseLetter: f |= letter | lower
        case .titlecaseLetter: f |= letter | title
        case .modifierLetter: f |= letter | modifier
        case .otherLetter: f |= letter | otherLetter
        case .nonspacingMark, .spacingMark, .enclosingMark: f |= mark
        case .decimalNumber, .letterNumber, .otherNumber: f |= number
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: f |= punctuation
        case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol: f |= symbol
        default: break
        }
        return f
    }
}
