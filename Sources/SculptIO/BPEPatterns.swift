import Foundation

// The split patterns of byte-level BPE pre-tokenizers: hand-written scanners for the common
// regexes (GPT-2's, LLaMA-3's, Qwen2's, single digits), Swift `Regex` for any other pattern.
//
// Semantics are Oniguruma's (what `tokenizers` uses): leftmost match, alternatives tried in
// order, greedy quantifiers with backtracking, non-overlapping matches scanned left to right.
// The scanners below implement the exact outcome of that search for their pattern; the tests
// compare them with Swift `Regex` on random text and with `tokenizers` on fixed strings.

/// A compiled split pattern.
enum BPEPattern: Sendable {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    /// (LLaMA-3 with 3 digits, Qwen2 with 1).
    case llama3(maxDigits: Int)
    /// Runs of `\p{N}` of at most `maxRun` characters (`\p{N}` is 1, `\p{N}+` is `Int.max`).
    case numbers(maxRun: Int)
    /// A literal string (tokenizer.json's `{"String": …}` patterns).
    case literal([Unicode.Scalar])
    /// Any other regex, run by Swift `Regex` on Unicode scalars.
    case regex(BPERegex)

    static let gpt2Source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Source = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Source = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The pattern for regex `source`: a scanner when one implements it, else Swift `Regex`.
    /// Throws a one-line description when Swift cannot compile the regex.
    static func compile(regex source: String) throws(BPEPatternError) -> BPEPattern {
        switch source {
        case gpt2Source: return .gpt2
        case llama3Source: return .llama3(maxDigits: 3)
        case qwen2Source: return .llama3(maxDigits: 1)
        case #"\p{N}"#: return .numbers(maxRun: 1)
        case #"\p{N}+"#: return .numbers(maxRun: Int.max)
        default: return .regex(try BPERegex(source))
        }
    }

    /// Appends the matches of the pattern inside `text[range]` (absolute indices, in order,
    /// non-overlapping; empty matches included) to `out`.
    func matches(in text: [Unicode.Scalar], _ range: Range<Int>, into out: inout [Range<Int>]) {
        switch self {
        case .gpt2: BPEScanners.gpt2(text, range.lowerBound, range.upperBound, into: &out)
        case .llama3(let digits): BPEScanners.llama3(text, range.lowerBound, range.upperBound, maxDigits: digits, into: &out)
        case .numbers(let maxRun): BPEScanners.numbers(text, range.lowerBound, range.upperBound, maxRun: maxRun, into: &out)
        case .literal(let needle): BPEScanners.literal(needle, text, range.lowerBound, range.upperBound, into: &out)
        case .regex(let regex): regex.matches(in: text, range, into: &out)
        }
    }
}

/// A regex Swift could not compile.
struct BPEPatternError: Error, Sendable {
    let message: String
}

/// A Swift `Regex` with Oniguruma-like options: Unicode-scalar semantics, `^`/`$` at line
/// boundaries (Ruby syntax), simple word boundaries.
struct BPERegex: Sendable {
    let source: String
    // `Regex` is not marked Sendable, but it is an immutable value: its compiled program is
    // built once (with an atomic initialisation) and only read afterwards. It is compiled here,
    // before the value can be shared, by one match on a short string.
    nonisolated(unsafe) private let regex: Regex<AnyRegexOutput>

    init(_ source: String) throws(BPEPatternError) {
        self.source = source
        do {
            regex = try Regex(Self.escapingNonASCII(source))
                .matchingSemantics(.unicodeScalar)
                .anchorsMatchLineEndings()
                .wordBoundaryKind(.simple)
            _ = "a 1".firstMatch(of: regex)
        } catch {
            throw BPEPatternError(message: "regex \(StrictJSON.displayQuoted(source)) is not supported (\(error))")
        }
    }

    /// `source` with every non-ASCII character written as `\x{…}`, and class ranges whose bound
    /// changes under NFC (`Ὗ-ώ`, ώ U+1F7D being canonically U+03CE) rewritten: Swift `Regex`
    /// rejects such bounds, Oniguruma takes them as code points. Escapes also keep the code
    /// points safe from any Unicode normalization of the pattern text.
    static func escapingNonASCII(_ source: String) -> String {
        let s = unescapingHex(Array(source.unicodeScalars))
        func esc(_ v: UInt32) -> String { "\\x{" + String(v, radix: 16) + "}" }
        func stable(_ v: UInt32) -> Bool {
            guard let u = Unicode.Scalar(v) else { return false }
            return String(u).precomposedStringWithCanonicalMapping.unicodeScalars.elementsEqual([u])
        }
        var out = ""
        var inClass = false
        var i = 0
        while i < s.count {
            let c = s[i]
            if c == "\\" && i + 1 < s.count {
                out.unicodeScalars.append(c)
                out.unicodeScalars.append(s[i + 1])
                i += 2
                continue
            }
            if !inClass && c == "[" { inClass = true } else if inClass && c == "]" { inClass = false }
            if inClass && c.value >= 0x80 && i + 2 < s.count && s[i + 1] == "-" && s[i + 2].value >= 0x80 {
                var lo = c.value, hi = s[i + 2].value
                var prefix = "", suffix = ""
                while lo <= hi && !stable(lo) { prefix += esc(lo); lo += 1 }
                while hi >= lo && !stable(hi) { suffix = esc(hi) + suffix; hi -= 1 }
                out += prefix + (lo <= hi ? esc(lo) + "-" + esc(hi) : "") + suffix
                i += 3
                continue
            }
            if c.value >= 0x80 { out += esc(c.value) } else { out.unicodeScalars.append(c) }
            i += 1
        }
        return out
    }

    /// `\x{HEX}` escapes of non-ASCII code points turned into the characters themselves.
    private static func unescapingHex(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        var i = 0
        while i < s.count {
            if s[i] == "\\" && i + 1 < s.count {
                if s[i + 1] == "x", i + 2 < s.count, s[i + 2] == "{", let close = s[(i + 3)...].firstIndex(of: "}"),
                   let v = UInt32(String(String.UnicodeScalarView(s[(i + 3)..<close])), radix: 16), v >= 0x80,
                   let u = Unicode.Scalar(v) {
                    out.append(u)
                    i = close + 1
                    continue
                }
                out.append(s[i])
                out.append(s[i + 1])
                i += 2
                continue
            }
            out.append(s[i])
            i += 1
        }
        return out
    }

    func matches(in text: [Unicode.Scalar], _ range: Range<Int>, into out: inout [Range<Int>]) {
        guard !range.isEmpty else { return }
        var string = String()
        string.unicodeScalars.append(contentsOf: text[range])
        let scalars = string.unicodeScalars
        var index = string.startIndex
        var offset = range.lowerBound
        for match in string.matches(of: regex) {
            offset += scalars.distance(from: index, to: match.range.lowerBound)
            let start = offset
            offset += scalars.distance(from: match.range.lowerBound, to: match.range.upperBound)
            index = match.range.upperBound
            out.append(start..<offset)
        }
    }
}

/// Hand-written matchers with the exact outcome of the Oniguruma search for their regex.
enum BPEScanners {
    private static let L = BPECharClass.letter
    private static let N = BPECharClass.number
    private static let S = BPECharClass.whitespace

    @inline(__always)
    private static func flags(_ s: Unicode.Scalar) -> UInt16 { BPECharClass.flags(s) }

    /// End of the run of characters with any of `mask` starting at `from`.
    @inline(__always)
    private static func runEnd(_ t: [Unicode.Scalar], _ from: Int, _ hi: Int, _ mask: UInt16) -> Int {
        var q = from
        while q < hi && flags(t[q]) & mask != 0 { q += 1 }
        return q
    }

    /// End of the run of "other" characters (`[^\s\p{L}\p{N}]`) starting at `from`.
    @inline(__always)
    private static func otherEnd(_ t: [Unicode.Scalar], _ from: Int, _ hi: Int) -> Int {
        var q = from
        while q < hi && flags(t[q]) & (L | N | S) == 0 { q += 1 }
        return q
    }

    /// The match of `\s+(?!\S)|\s+` at whitespace position `p`.
    @inline(__always)
    private static func whitespaceMatchEnd(_ t: [Unicode.Scalar], _ p: Int, _ hi: Int) -> Int {
        let e = runEnd(t, p, hi, S)
        if e == hi || e - p < 2 { return e }
        return e - 1  // leave the last space to the following word
    }

    static func gpt2(_ t: [Unicode.Scalar], _ lo: Int, _ hi: Int, into out: inout [Range<Int>]) {
        var p = lo
        while p < hi {
            let c = t[p]
            // 's|'t|'re|'ve|'m|'ll|'d
            if c == "'" && p + 1 < hi {
                let n1 = t[p + 1]
                if n1 == "s" || n1 == "t" || n1 == "m" || n1 == "d" { out.append(p..<(p + 2)); p += 2; continue }
                if p + 2 < hi {
                    let n2 = t[p + 2]
                    if (n1 == "r" && n2 == "e") || (n1 == "v" && n2 == "e") || (n1 == "l" && n2 == "l") {
                        out.append(p..<(p + 3)); p += 3; continue
                    }
                }
            }
            //  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+
            let q = (c == " " && p + 1 < hi) ? p + 1 : p
            let f = flags(t[q])
            var end = -1
            if f & L != 0 {
                end = runEnd(t, q + 1, hi, L)
            } else if f & N != 0 {
                end = runEnd(t, q + 1, hi, N)
            } else if f & S == 0 {
                end = otherEnd(t, q + 1, hi)
            }
            if end < 0 { end = whitespaceMatchEnd(t, p, hi) }  // \s+(?!\S) | \s+
            out.append(p..<end)
            p = end
        }
    }

    @inline(__always)
    private static func asciiLower(_ s: Unicode.Scalar) -> UInt32 {
        let v = s.value
        if v == 0x17F { return 0x73 }  // ſ case-folds to s
        return (v &- 0x41 < 26) ? v + 0x20 : v
    }

    static func llama3(_ t: [Unicode.Scalar], _ lo: Int, _ hi: Int, maxDigits: Int, into out: inout [Range<Int>]) {
        var p = lo
        while p < hi {
            let c = t[p]
            // (?i:'s|'t|'re|'ve|'m|'ll|'d)
            if c == "'" && p + 1 < hi {
                let n1 = asciiLower(t[p + 1])
                if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 { out.append(p..<(p + 2)); p += 2; continue }
                if p + 2 < hi {
                    let n2 = asciiLower(t[p + 2])
                    if (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) {
                        out.append(p..<(p + 3)); p += 3; continue
                    }
                }
            }
            let f = flags(c)
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if f & L != 0 {
                let end = runEnd(t, p + 1, hi, L)
                out.append(p..<end); p = end; continue
            }
            if f & N == 0 && c != "\r" && c != "\n" && p + 1 < hi && flags(t[p + 1]) & L != 0 {
                let end = runEnd(t, p + 2, hi, L)
                out.append(p..<end); p = end; continue
            }
            // \p{N}{1,maxDigits}
            if f & N != 0 {
                var end = p + 1
                while end < hi && end - p < maxDigits && flags(t[end]) & N != 0 { end += 1 }
                out.append(p..<end); p = end; continue
            }
            //  ?[^\s\p{L}\p{N}]+[\r\n]*
            let q = (c == " " && p + 1 < hi && flags(t[p + 1]) & (L | N | S) == 0) ? p + 1 : p
            if flags(t[q]) & (L | N | S) == 0 {
                var end = otherEnd(t, q + 1, hi)
                while end < hi && (t[end] == "\r" || t[end] == "\n") { end += 1 }
                out.append(p..<end); p = end; continue
            }
            // \s*[\r\n]+ : up to and including the last line break of the whitespace run
            let e = runEnd(t, p, hi, S)
            var k = e - 1
            while k >= p && t[k] != "\r" && t[k] != "\n" { k -= 1 }
            if k >= p { out.append(p..<(k + 1)); p = k + 1; continue }
            // \s+(?!\S) | \s+
            let end = whitespaceMatchEnd(t, p, hi)
            out.append(p..<end)
            p = end
        }
    }

    static func numbers(_ t: [Unicode.Scalar], _ lo: Int, _ hi: Int, maxRun: Int, into out: inout [Range<Int>]) {
        var p = lo
        while p < hi {
            guard flags(t[p]) & N != 0 else { p += 1; continue }
            var end = p + 1
            while end < hi && end - p < maxRun && flags(t[end]) & N != 0 { end += 1 }
            out.append(p..<end)
            p = end
        }
    }

    static func literal(_ needle: [Unicode.Scalar], _ t: [Unicode.Scalar], _ lo: Int, _ hi: Int, into out: inout [Range<Int>]) {
        let n = needle.count
        guard n > 0, hi - lo >= n else { return }
        var p = lo
        while p + n <= hi {
            if t[p] == needle[0] {
                var k = 1
                while k < n && t[p + k] == needle[k] { k += 1 }
                if k == n { out.append(p..<(p + n)); p += n; continue }
            }
            p += 1
        }
    }
}
