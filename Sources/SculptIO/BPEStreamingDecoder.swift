// Incremental decoding of generated ids: text is returned as soon as its bytes form complete
// UTF-8 characters; a character whose bytes are split across tokens is held back until its
// last byte arrives. The concatenation of everything returned (including `finish()`) equals
// `decode` of all the ids, with the same U+FFFD replacements.

/// Streaming decoder of a `BPETokenizer` (also reachable as `BPETokenizer.StreamingDecoder`).
public typealias BPEStreamingDecoder = BPETokenizer.StreamingDecoder

extension BPETokenizer {
    /// Decodes ids one at a time, never returning a partial character.
    public struct StreamingDecoder: Sendable {
        public let tokenizer: BPETokenizer
        public let skipSpecialTokens: Bool
        private var pending: [UInt8] = []
        private var first = true

        public init(tokenizer: BPETokenizer, skipSpecialTokens: Bool = false) {
            self.tokenizer = tokenizer
            self.skipSpecialTokens = skipSpecialTokens
        }

        /// Adds `id` and returns the text that became complete (possibly empty).
        public mutating func append(_ id: Int32) -> String {
            tokenizer.appendBytes(of: id, skipSpecialTokens: skipSpecialTokens, first: &first, to: &pending)
            let keep = Self.incompleteSuffixStart(pending)
            guard keep > 0 else { return "" }
            let text = String(decoding: pending[..<keep], as: UTF8.self)
            pending.removeSubrange(..<keep)
            return text
        }

        /// Returns whatever is held back (an unfinished character becomes U+FFFD) and resets.
        public mutating func finish() -> String {
            let text = String(decoding: pending, as: UTF8.self)
            pending.removeAll()
            first = true
            return text
        }

        /// Where a trailing, still completable UTF-8 sequence starts (`bytes.count` if none).
        static func incompleteSuffixStart(_ bytes: [UInt8]) -> Int {
            let n = bytes.count
            var i = n - 1
            // Find the last non-continuation byte among the last four.
            while i >= 0 && i >= n - 4 && bytes[i] & 0xC0 == 0x80 { i -= 1 }
            guard i >= 0, i >= n - 4 else { return n }
            let lead = bytes[i]
            let needed: Int
            switch lead {
            case 0xC2...0xDF: needed = 2
            case 0xE0...0xEF: needed = 3
            case 0xF0...0xF4: needed = 4
            default: return n  // ASCII, or a byte that can never start a character
            }
            let have = n - i
            guard have < needed else { return n }
            if have >= 2 {
                let second = bytes[i + 1]
                let ok: Bool
                switch lead {
                case 0xE0: ok = second >= 0xA0
                case 0xED: ok = second <= 0x9F
                case 0xF0: ok = second >= 0x90
                case 0xF4: ok = second <= 0x8F
                default: ok = true
                }
                if !ok { return n }
            }
            return i
        }
    }
}
