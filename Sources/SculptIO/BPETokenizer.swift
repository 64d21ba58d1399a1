import Foundation

// Byte-level BPE tokenizer (GPT-2, LLaMA-3, SmolLM, Qwen2, … families), id-for-id compatible
// with Hugging Face `tokenizers`.
//
// Encoding one text (Hugging Face's order):
//   1. added tokens that are not `normalized` are cut out of the raw text (leftmost-longest,
//      with their lstrip / rstrip / single_word flags) and map straight to their ids;
//   2. the normalizer runs on each remaining piece; `normalized` added tokens are cut out next;
//   3. the pre-tokenizer splits each piece into words and spells them in GPT-2's byte-level
//      characters (see `BPEPreTokenizer`);
//   4. the BPE model merges each word by rank (see `BPEModel`).
// Decoding maps tokens back to bytes (byte-level decoder) and replaces invalid UTF-8 with
// U+FFFD, like `String::from_utf8_lossy`.
//
// Loading is in BPETokenizer+Loading.swift, streaming decoding in BPEStreamingDecoder.swift.

/// A byte-level BPE tokenizer loaded from a Hugging Face tokenizer.json or GGUF metadata.
/// Immutable after loading; safe to share between threads.
public final class BPETokenizer: Sendable {
    /// Number of ids: one more than the largest id of the vocabulary and the added tokens.
    public let vocabularySize: Int
    /// The beginning-of-sequence token, if the tokenizer has one.
    public let bosTokenId: Int32?
    /// The end-of-sequence token, if the tokenizer has one.
    public let eosTokenId: Int32?
    /// The padding token, if the tokenizer has one.
    public let padTokenId: Int32?
    /// The unknown token, if the tokenizer has one.
    public let unknownTokenId: Int32?
    /// The ids of the special added tokens (`"special": true`, or GGUF control tokens).
    public let specialTokenIds: Set<Int32>
    /// What the tokenizer was loaded from (a path), for messages.
    public let source: String

    let model: BPEModel
    let normalizer: BPENormalizer
    let preTokenizer: BPEPreTokenizer
    let rawMatcher: WordPieceTokenizer.AddedTokenMatcher
    let normalizedMatcher: WordPieceTokenizer.AddedTokenMatcher
    /// Content of the added tokens by id.
    let addedTokens: [Int32: String]
    /// Ids put before / after the text by `encode(_:addSpecialTokens: true)`.
    let prefixIds: [Int32]
    let suffixIds: [Int32]
    /// Whether decoding joins tokens with a space (tokenizer.json without a decoder) instead of
    /// concatenating their bytes.
    let joinsWithSpace: Bool
    /// The decoded bytes of every id: `decodedBytes[decodedOffsets[id]..<decodedOffsets[id + 1]]`.
    private let decodedBytes: [UInt8]
    private let decodedOffsets: [Int32]

    /// Whether `encode(_:addSpecialTokens: true)` puts a BOS token first.
    public var addBOS: Bool { !prefixIds.isEmpty }
    /// Whether `encode(_:addSpecialTokens: true)` puts an EOS token last.
    public var addEOS: Bool { !suffixIds.isEmpty }

    struct AddedToken {
        let id: Int32
        let content: String
        let special: Bool
        let singleWord: Bool
        let lstrip: Bool
        let rstrip: Bool
        let normalized: Bool
    }

    init(model: BPEModel, normalizer: BPENormalizer, preTokenizer: BPEPreTokenizer, added: [AddedToken],
         bos: Int32?, eos: Int32?, pad: Int32?, prefixIds: [Int32], suffixIds: [Int32],
         byteLevelDecoder: Bool, source: String) {
        self.model = model
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.bosTokenId = bos
        self.eosTokenId = eos
        self.padTokenId = pad
        self.unknownTokenId = model.unkId
        self.prefixIds = prefixIds
        self.suffixIds = suffixIds
        self.joinsWithSpace = !byteLevelDecoder
        self.source = source

        var size = model.tokens.count
        var contents: [Int32: String] = [:]
        var special = Set<Int32>()
        for a in added {
            size = max(size, Int(a.id) + 1)
            contents[a.id] = a.content
            if a.special { special.insert(a.id) }
        }
        self.vocabularySize = size
        self.addedTokens = contents
        self.specialTokenIds = special

        typealias Pattern = WordPieceTokenizer.AddedTokenMatcher.Pattern
        rawMatcher = .init(tokens: added.filter { !$0.normalized }.map {
            Pattern(id: $0.id, scalars: Array($0.content.unicodeScalars), singleWord: $0.singleWord, lstrip: $0.lstrip, rstrip: $0.rstrip)
        })
        var normalizedPatterns: [Pattern] = []
        for a in added where a.normalized {
            var scalars = Array(a.content.unicodeScalars)
            normalizer.apply(&scalars)
            if !scalars.isEmpty {
                normalizedPatterns.append(Pattern(id: a.id, scalars: scalars, singleWord: a.singleWord, lstrip: a.lstrip, rstrip: a.rstrip))
            }
        }
        normalizedMatcher = .init(tokens: normalizedPatterns)

        // Decoded bytes of every id (ByteLevel decoder: a token whose characters are all
        // byte-level characters gives those bytes, any other token its own UTF-8).
        var bytes: [UInt8] = []
        var offsets: [Int32] = [0]
        bytes.reserveCapacity(size * 6)
        offsets.reserveCapacity(size + 1)
        for id in 0..<size {
            let token = contents[Int32(id)] ?? (id < model.tokens.count ? model.tokens[id] : "")
            let mark = bytes.count
            var mapped = byteLevelDecoder
            if byteLevelDecoder {
                for s in token.unicodeScalars {
                    guard let b = BPEByteLevel.byte(of: s) else { mapped = false; break }
                    bytes.append(b)
                }
            }
            if !mapped {
                bytes.removeSubrange(mark...)
                bytes.append(contentsOf: token.utf8)
            }
            offsets.append(Int32(bytes.count))
        }
        self.decodedBytes = bytes
        self.decodedOffsets = offsets
    }

    // MARK: - Vocabulary

    /// The id of `token` (exact Unicode scalars) among the added tokens or in the vocabulary.
    public func id(of token: String) -> Int32? {
        let scalars = Array(token.unicodeScalars)
        return rawMatcher.exactId(scalars) ?? normalizedMatcher.exactId(scalars) ?? model.vocab[BPEExactKey(token)]
    }

    /// The token string of `id` (byte-level spelling for vocabulary tokens), or nil when out of range.
    public func token(of id: Int32) -> String? {
        if let added = addedTokens[id] { return added }
        guard id >= 0, Int(id) < model.tokens.count else { return nil }
        return model.tokens[Int(id)]
    }

    /// Whether `id` is a special added token (skipped by `decode(_:skipSpecialTokens: true)`).
    public func isSpecial(_ id: Int32) -> Bool { specialTokenIds.contains(id) }

    // MARK: - Encoding

    struct Scratch {
        var raw: [Unicode.Scalar] = []
        var pieces: [WordPieceTokenizer.AddedTokenMatcher.Piece] = []
        var innerPieces: [WordPieceTokenizer.AddedTokenMatcher.Piece] = []
        var normalized: [Unicode.Scalar] = []
        var buffer: [Unicode.Scalar] = []
        var words: [Range<Int>] = []
        var pre = BPEPreTokenizer.Scratch()
        var merge = BPEModel.Scratch()
    }

    /// The token ids of `text`. Added and special tokens written in the text (such as
    /// `<|im_start|>`) are recognised and become their ids. With `addSpecialTokens`, the BOS
    /// token is put first when `addBOS` and the EOS token last when `addEOS`.
    public func encode(_ text: String, addSpecialTokens: Bool = false) -> [Int32] {
        var scratch = Scratch()
        var ids: [Int32] = []
        ids.reserveCapacity(text.utf8.count / 3 + 4)
        if addSpecialTokens { ids += prefixIds }
        scratch.raw.append(contentsOf: text.unicodeScalars)
        let raw = scratch.raw
        rawMatcher.split(raw, into: &scratch.pieces)
        for piece in scratch.pieces {
            switch piece {
            case .token(let id):
                ids.append(id)
            case .text(let range):
                scratch.normalized.removeAll(keepingCapacity: true)
                scratch.normalized.append(contentsOf: raw[range])
                normalizer.apply(&scratch.normalized)
                if normalizedMatcher.isEmpty {
                    encodeNormalized(scratch.normalized[...], into: &ids, &scratch)
                } else {
                    let normalized = scratch.normalized
                    normalizedMatcher.split(normalized, into: &scratch.innerPieces)
                    for inner in scratch.innerPieces {
                        switch inner {
                        case .token(let id): ids.append(id)
                        case .text(let r): encodeNormalized(normalized[r], into: &ids, &scratch)
                        }
                    }
                }
            }
        }
        if addSpecialTokens { ids += suffixIds }
        return ids
    }

    private func encodeNormalized(_ text: ArraySlice<Unicode.Scalar>, into ids: inout [Int32], _ scratch: inout Scratch) {
        guard !text.isEmpty else { return }
        scratch.buffer.removeAll(keepingCapacity: true)
        scratch.buffer.append(contentsOf: text)
        scratch.words.removeAll(keepingCapacity: true)
        scratch.words.append(0..<scratch.buffer.count)
        preTokenizer.run(&scratch.buffer, &scratch.words, &scratch.pre)
        for word in scratch.words {
            model.encodeWord(scratch.buffer, word, into: &ids, &scratch.merge)
        }
    }

    // MARK: - Decoding

    /// The text of `ids`: the exact inverse of `encode` for the text parts. Invalid UTF-8
    /// (from ids that split a character) becomes U+FFFD; ids out of range are skipped.
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        var first = true
        for id in ids {
            appendBytes(of: id, skipSpecialTokens: skipSpecialTokens, first: &first, to: &bytes)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the decoded bytes of `id` (with the separating space of a decoder-less tokenizer).
    func appendBytes(of id: Int32, skipSpecialTokens: Bool, first: inout Bool, to bytes: inout [UInt8]) {
        guard id >= 0, Int(id) < vocabularySize else { return }
        if skipSpecialTokens && specialTokenIds.contains(id) { return }
        if joinsWithSpace && !first { bytes.append(0x20) }
        first = false
        let lo = Int(decodedOffsets[Int(id)]), hi = Int(decodedOffsets[Int(id) + 1])
        bytes.append(contentsOf: decodedBytes[lo..<hi])
    }

    /// A decoder for generated ids that returns text as soon as it is complete.
    public func makeStreamingDecoder(skipSpecialTokens: Bool = false) -> StreamingDecoder {
        StreamingDecoder(tokenizer: self, skipSpecialTokens: skipSpecialTokens)
    }
}
