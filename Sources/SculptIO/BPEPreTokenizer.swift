// The pre-tokenizer of a byte-level BPE tokenizer: a sequence of steps, each refining the list
// of pieces of the (normalized) text, exactly as Hugging Face `tokenizers` applies `Split`,
// `Digits`, `ByteLevel` and `Sequence`. Pieces are ranges of one scalar buffer; `ByteLevel`
// rewrites the buffer (prefix space, then GPT-2's byte-to-unicode characters).

/// How a `Split` step treats the matched delimiters (Hugging Face's `SplitDelimiterBehavior`).
enum BPESplitBehavior: String, Sendable {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"
}

struct BPEPreTokenizer: Sendable {
    enum Step: Sendable {
        case split(BPEPattern, BPESplitBehavior, invert: Bool)
        case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    }

    let steps: [Step]

    /// `Digits`: numbers isolated one by one, or runs of numbers kept together.
    static func digits(individual: Bool) -> Step {
        .split(.numbers(maxRun: 1), individual ? .isolated : .contiguous, invert: false)
    }

    /// Reusable buffers of one encoding call.
    struct Scratch {
        var matches: [Range<Int>] = []
        var segments: [(Range<Int>, Bool)] = []
        var pieces: [Range<Int>] = []
        var buffer: [Unicode.Scalar] = []
    }

    /// Runs every step on `buffer`, whose pieces start as `pieces`.
    func run(_ buffer: inout [Unicode.Scalar], _ pieces: inout [Range<Int>], _ scratch: inout Scratch) {
        for step in steps {
            switch step {
            case .split(let pattern, let behavior, let invert):
                split(buffer, &pieces, pattern, behavior, invert, &scratch)
            case .byteLevel(let addPrefixSpace, let useRegex):
                if addPrefixSpace { prependSpaces(&buffer, &pieces, &scratch) }
                if useRegex { split(buffer, &pieces, .gpt2, .isolated, false, &scratch) }
                BPEByteLevel.encode(&buffer, &pieces, &scratch)
            }
        }
    }

    private func prependSpaces(_ buffer: inout [Unicode.Scalar], _ pieces: inout [Range<Int>], _ scratch: inout Scratch) {
        guard pieces.contains(where: { buffer[$0.lowerBound] != " " }) else { return }
        scratch.buffer.removeAll(keepingCapacity: true)
        scratch.pieces.removeAll(keepingCapacity: true)
        for piece in pieces {
            let start = scratch.buffer.count
            if buffer[piece.lowerBound] != " " { scratch.buffer.append(" ") }
            scratch.buffer.append(contentsOf: buffer[piece])
            scratch.pieces.append(start..<scratch.buffer.count)
        }
        swap(&buffer, &scratch.buffer)
        swap(&pieces, &scratch.pieces)
    }

    /// Hugging Face's `NormalizedString::split` on every piece.
    private func split(_ buffer: [Unicode.Scalar], _ pieces: inout [Range<Int>], _ pattern: BPEPattern,
                       _ behavior: BPESplitBehavior, _ invert: Bool, _ scratch: inout Scratch) {
        scratch.pieces.removeAll(keepingCapacity: true)
        for piece in pieces {
            scratch.matches.removeAll(keepingCapacity: true)
            pattern.matches(in: buffer, piece, into: &scratch.matches)
            // (range, isMatch) covering the piece.
            scratch.segments.removeAll(keepingCapacity: true)
            var previous = piece.lowerBound
            for m in scratch.matches {
                if previous < m.lowerBound { scratch.segments.append((previous..<m.lowerBound, invert)) }
                scratch.segments.append((m, !invert))
                previous = m.upperBound
            }
            if previous < piece.upperBound { scratch.segments.append((previous..<piece.upperBound, invert)) }
            Self.apply(behavior, scratch.segments, into: &scratch.pieces)
        }
        swap(&pieces, &scratch.pieces)
    }

    private static func apply(_ behavior: BPESplitBehavior, _ segments: [(Range<Int>, Bool)], into out: inout [Range<Int>]) {
        func push(_ r: Range<Int>) { if !r.isEmpty { out.append(r) } }
        switch behavior {
        case .isolated:
            for (r, _) in segments { push(r) }
        case .removed:
            for (r, isMatch) in segments where !isMatch { push(r) }
        case .contiguous:
            var merged: [Range<Int>] = []
            var previousMatch = false
            for (r, isMatch) in segments {
                if isMatch == previousMatch, let last = merged.last {
                    merged[merged.count - 1] = last.lowerBound..<r.upperBound
                } else {
                    merged.append(r)
                }
                previousMatch = isMatch
            }
            for r in merged { push(r) }
        case .mergedWithPrevious:
            var merged: [Range<Int>] = []
            var previousMatch = false
            for (r, isMatch) in segments {
                if isMatch && !previousMatch, let last = merged.last {
                    merged[merged.count - 1] = last.lowerBound..<r.upperBound
                } else {
                    merged.append(r)
                }
                previousMatch = isMatch
            }
            for r in merged { push(r) }
        case .mergedWithNext:
            var merged: [Range<Int>] = []  // built backwards
            var previousMatch = false
            for (r, isMatch) in segments.reversed() {
                if isMatch && !previousMatch, let last = merged.last {
                    merged[merged.count - 1] = r.lowerBound..<last.upperBound
                } else {
                    merged.append(r)
                }
                previousMatch = isMatch
            }
            for r in merged.reversed() { push(r) }
        }
    }
}

/// GPT-2's reversible map between bytes and printable characters (`bytes_to_unicode`).
enum BPEByteLevel {
    /// The character of each byte.
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt8(b))
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The byte of each character below U+0144, or -1.
    static let scalarToByte: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (b, s) in byteToScalar.enumerated() { table[Int(s.value)] = Int16(b) }
        return table
    }()

    /// The byte of byte-level character `s`, or nil.
    @inline(__always)
    static func byte(of s: Unicode.Scalar) -> UInt8? {
        let v = s.value
        guard v < 0x144 else { return nil }
        let b = scalarToByte[Int(v)]
        return b >= 0 ? UInt8(b) : nil
    }

    /// The byte-level spelling of `s` (its UTF-8 bytes as characters).
    static func encode(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        for b in s.utf8 { out.append(byteToScalar[Int(b)]) }
        return String(out)
    }

    /// Replaces every piece by its UTF-8 bytes spelled as byte-level characters.
    static func encode(_ buffer: inout [Unicode.Scalar], _ pieces: inout [Range<Int>], _ scratch: inout BPEPreTokenizer.Scratch) {
        scratch.buffer.removeAll(keepingCapacity: true)
        scratch.pieces.removeAll(keepingCapacity: true)
        for piece in pieces {
            let start = scratch.buffer.count
            for s in buffer[piece] {
                let v = s.value
                if v < 0x80 {
                    scratch.buffer.append(byteToScalar[Int(v)])
                } else {
                    for b in UTF8.encode(s)! { scratch.buffer.append(byteToScalar[Int(b)]) }
                }
            }
            scratch.pieces.append(start..<scratch.buffer.count)
        }
        swap(&buffer, &scratch.buffer)
        swap(&pieces, &scratch.pieces)
    }
}
