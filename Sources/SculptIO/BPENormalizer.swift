import Foundation

// The normalizers a byte-level BPE tokenizer.json may name (Hugging Face `normalizers`):
// null, NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip and Sequence of these.
// Unicode normalization is Foundation's (its Unicode version may be newer than Hugging Face's
// `unicode-normalization` crate for code points assigned in the last versions).

indirect enum BPENormalizer: Sendable {
    case none
    case nfc, nfd, nfkc, nfkd
    case lowercase
    /// Prepends the string to a non-empty text.
    case prepend([Unicode.Scalar])
    /// Replaces every match of the pattern with the content.
    case replace(BPEPattern, [Unicode.Scalar])
    /// Removes leading and/or trailing whitespace.
    case strip(left: Bool, right: Bool)
    case sequence([BPENormalizer])

    var isNone: Bool {
        if case .none = self { return true }
        return false
    }

    /// Normalizes `text` in place.
    func apply(_ text: inout [Unicode.Scalar]) {
        switch self {
        case .none:
            return
        case .nfc, .nfd, .nfkc, .nfkd:
            // ASCII is invariant under every normalization form.
            if text.allSatisfy({ $0.value < 0x80 }) { return }
            var s = String()
            s.unicodeScalars.append(contentsOf: text)
            let normalized: String
            switch self {
            case .nfc: normalized = s.precomposedStringWithCanonicalMapping
            case .nfd: normalized = s.decomposedStringWithCanonicalMapping
            case .nfkc: normalized = s.precomposedStringWithCompatibilityMapping
            default: normalized = s.decomposedStringWithCompatibilityMapping
            }
            text = Array(normalized.unicodeScalars)
        case .lowercase:
            var out: [Unicode.Scalar] = []
            out.reserveCapacity(text.count)
            for s in text {
                let v = s.value
                if v < 0x80 {
                    out.append(v &- 0x41 < 26 ? Unicode.Scalar(v + 0x20)! : s)
                } else if s.properties.changesWhenLowercased {
                    out.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
                } else {
                    out.append(s)
                }
            }
            text = out
        case .prepend(let prefix):
            if !text.isEmpty { text.insert(contentsOf: prefix, at: 0) }
        case .replace(let pattern, let content):
            var matches: [Range<Int>] = []
            pattern.matches(in: text, 0..<text.count, into: &matches)
            guard !matches.isEmpty else { return }
            var out: [Unicode.Scalar] = []
            out.reserveCapacity(text.count)
            var previous = 0
            for m in matches {
                out.append(contentsOf: text[previous..<m.lowerBound])
                out.append(contentsOf: content)
                previous = m.upperBound
            }
            out.append(contentsOf: text[previous...])
            text = out
        case .strip(let left, let right):
            var lo = 0, hi = text.count
            if left { while lo < hi && text[lo].properties.isWhitespace { lo += 1 } }
            if right { while hi > lo && text[hi - 1].properties.isWhitespace { hi -= 1 } }
            if lo > 0 || hi < text.count { text = Array(text[lo..<hi]) }
        case .sequence(let list):
            for n in list { n.apply(&text) }
        }
    }
}
