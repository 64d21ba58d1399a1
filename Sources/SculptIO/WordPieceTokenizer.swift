import Foundation

// BERT WordPiece tokenizer, id-for-id compatible with Hugging Face `tokenizers`
// (BertNormalizer + BertPreTokenizer + WordPiece + TemplateProcessing/BertProcessing).
//
// Pipeline for one text (the order is Hugging Face's):
//   1. added/special tokens that are not normalized ("[CLS]", "[MASK]", ...) are cut out of the
//      raw text (leftmost-longest match) and map straight to their ids;
//   2. BertNormalizer on each remaining piece: clean text (drop U+0000, U+FFFD and control
//      characters Cc/Cf/Co except \t \n \r; map whitespace to ' '), surround CJK ideographs
//      with spaces, strip accents (NFD then drop Mn), lowercase (full mapping, may expand);
//   3. added tokens marked `normalized` are cut out of the normalized text;
//   4. BertPreTokenizer: split on whitespace, isolate every punctuation character;
//   5. WordPiece: greedy longest-match-first with the "##" continuation prefix; a word longer
//      than `maxInputCharsPerWord` Unicode scalars, or one that cannot be covered, is [UNK].
// Everything works on Unicode scalars (Rust `char`s), never on Swift `Character`s.
//
// Checked against `tokenizers` 0.23.3 (the library behind transformers' fast tokenizer): the
// normalizer and pre-tokenizer on every one of the 1,112,064 code points, 30k random mixed-script
// texts (with special tokens, controls, marks, emoji, long words), 200k combining-mark
// sequences, and cased / no-strip / no-clean normalizer variants — all identical. Character
// classes come from tables extracted from Hugging Face (see `UnicodeClass`), NFD from Foundation
// with a Unicode 9.0 cut-off (see `Normalizer.stripAccents`), lowercasing from Swift's
// `lowercaseMapping` (equal to Rust's `char::to_lowercase` on every code point with Swift 6.3).

/// A failure to load a tokenizer; the description is one line and names the file.
public struct TokenizerError: Error, CustomStringConvertible, Sendable {
    /// Path of the file (or directory) the problem is about.
    public let file: String
    public let reason: String

    public init(file: String, reason: String) {
        self.file = file
        self.reason = reason
    }

    public var description: String { "\(file): \(reason)" }
}

/// A padded batch of encoded texts, row-major `batchSize × sequenceLength`.
public struct TokenizedBatch: Sendable {
    public let batchSize: Int
    public let sequenceLength: Int
    public let inputIds: [Int32]
    public let attentionMask: [Int32]
    public let tokenTypeIds: [Int32]

    public init(batchSize: Int, sequenceLength: Int, inputIds: [Int32], attentionMask: [Int32], tokenTypeIds: [Int32]) {
        precondition(inputIds.count == batchSize * sequenceLength)
        precondition(attentionMask.count == inputIds.count && tokenTypeIds.count == inputIds.count)
        self.batchSize = batchSize
        self.sequenceLength = sequenceLength
        self.inputIds = inputIds
        self.attentionMask = attentionMask
        self.tokenTypeIds = tokenTypeIds
    }

    /// Number of real (non-padding) tokens in row `row`.
    public func length(ofRow row: Int) -> Int {
        var n = 0
        for j in 0..<sequenceLength where attentionMask[row * sequenceLength + j] != 0 { n += 1 }
        return n
    }
}

public struct WordPieceTokenizer: Sendable {
    /// The settings of Hugging Face's `BertNormalizer`.
    public struct NormalizerOptions: Sendable, Equatable {
        public var cleanText: Bool
        public var handleChineseChars: Bool
        /// `nil` means "same as `lowercase`" (Hugging Face's default).
        public var stripAccents: Bool?
        public var lowercase: Bool

        public init(cleanText: Bool = true, handleChineseChars: Bool = true, stripAccents: Bool? = nil, lowercase: Bool = true) {
            self.cleanText = cleanText
            self.handleChineseChars = handleChineseChars
            self.stripAccents = stripAccents
            self.lowercase = lowercase
        }

        /// No normalization at all (a tokenizer.json with `"normalizer": null`).
        public static let identity = NormalizerOptions(cleanText: false, handleChineseChars: false, stripAccents: false, lowercase: false)

        public var effectiveStripAccents: Bool { stripAccents ?? lowercase }
    }

    public let normalizer: NormalizerOptions
    public let unkToken: String
    public let continuingSubwordPrefix: String
    public let maxInputCharsPerWord: Int
    /// Number of ids: one more than the largest id in the vocabulary and added tokens.
    public let vocabularySize: Int
    public let unkId: Int32
    public let clsId: Int32
    public let sepId: Int32
    public let padId: Int32
    /// `truncation.max_length` of tokenizer.json, if any. Informational only: like
    /// `transformers`' `AutoTokenizer`, `encode` truncates only when given `maxLength`.
    public let configuredTruncationLength: Int?
    /// `padding.strategy.Fixed` of tokenizer.json, if any. Informational only (see above).
    public let configuredPaddingLength: Int?

    private let vocab: VocabTrie
    private let idToToken: [String]
    private let rawMatcher: AddedTokenMatcher  // added tokens matched on the raw text
    private let normalizedMatcher: AddedTokenMatcher  // added tokens matched after normalization
    private let prefixIds: [Int32]
    private let prefixTypeIds: [Int32]
    private let suffixIds: [Int32]
    private let suffixTypeIds: [Int32]
    private let sequenceTypeId: Int32
    private let padTypeId: Int32

    // MARK: - Loading

    /// Loads a Hugging Face `tokenizer.json` with a WordPiece model.
    public init(tokenizerJSON url: URL) throws {
        let path = url.path
        let root: StrictJSON.Value
        do {
            root = try Self.parseJSON(try Self.readBytes(url))
        } catch let error as StrictJSON.ParseError {
            throw TokenizerError(file: path, reason: "not valid JSON (\(error))")
        }
        guard case .object = root else {
            throw TokenizerError(file: path, reason: "expected a JSON object at the top level but found \(root.kindDescription)")
        }
        func fail(_ reason: String) -> TokenizerError { TokenizerError(file: path, reason: reason) }

        guard let model = root[first: "model"], case .object = model else {
            throw fail("no \"model\" object (not a Hugging Face tokenizer.json?)")
        }
        if let type = model[first: "type"]?.stringValue, type != "WordPiece" {
            throw fail("model type \"\(type)\" is not supported (only WordPiece)")
        }
        guard let vocabMembers = model[first: "vocab"]?.objectMembers else {
            throw fail("model.vocab is missing or not an object")
        }
        var entries: [(String, Int32)] = []
        entries.reserveCapacity(vocabMembers.count)
        for member in vocabMembers {
            let token = member.key, value = member.value
            guard let id = value.integralValue, id >= 0, id <= Int(Int32.max) else {
                throw fail("model.vocab[\"\(token)\"] is not a non-negative integer id")
            }
            entries.append((token, Int32(id)))
        }
        if entries.isEmpty { throw fail("model.vocab is empty") }

        let unkToken = model[first: "unk_token"]?.stringValue ?? "[UNK]"
        let prefix = model[first: "continuing_subword_prefix"]?.stringValue ?? "##"
        let maxChars = model[first: "max_input_chars_per_word"]?.integralValue ?? 100

        // Normalizer.
        var options = NormalizerOptions.identity
        if let n = root[first: "normalizer"], !n.isNull {
            let type = n[first: "type"]?.stringValue ?? "?"
            guard type == "BertNormalizer" else {
                throw fail("normalizer type \"\(type)\" is not supported (only BertNormalizer)")
            }
            options = NormalizerOptions(
                cleanText: n[first: "clean_text"]?.boolValue ?? true,
                handleChineseChars: n[first: "handle_chinese_chars"]?.boolValue ?? true,
                stripAccents: n[first: "strip_accents"]?.boolValue,
                lowercase: n[first: "lowercase"]?.boolValue ?? true)
        }
        if let p = root[first: "pre_tokenizer"], !p.isNull {
            let type = p[first: "type"]?.stringValue ?? "?"
            guard type == "BertPreTokenizer" else {
                throw fail("pre_tokenizer type \"\(type)\" is not supported (only BertPreTokenizer)")
            }
        }

        // Added tokens.
        var added: [AddedTokenSpec] = []
        if let list = root[first: "added_tokens"]?.arrayValue {
            for item in list {
                guard let content = item[first: "content"]?.stringValue, let id = item[first: "id"]?.integralValue,
                      id >= 0, id <= Int(Int32.max) else {
                    throw fail("malformed entry in added_tokens")
                }
                added.append(AddedTokenSpec(
                    id: Int32(id), content: content,
                    singleWord: item[first: "single_word"]?.boolValue ?? false,
                    lstrip: item[first: "lstrip"]?.boolValue ?? false,
                    rstrip: item[first: "rstrip"]?.boolValue ?? false,
                    normalized: item[first: "normalized"]?.boolValue ?? false))
            }
        }

        let trie = VocabTrie(entries: entries, continuingPrefix: prefix)
        func vocabId(_ token: String) -> Int32? {
            trie.id(of: token) ?? added.first(where: { $0.content.unicodeScalars.elementsEqual(token.unicodeScalars) })?.id
        }

        // Post-processor: special tokens around a single sequence.
        var prefixIds: [Int32] = [], prefixTypes: [Int32] = [], suffixIds: [Int32] = [], suffixTypes: [Int32] = []
        var sequenceType: Int32 = 0
        let post = root[first: "post_processor"] ?? .null
        switch post[first: "type"]?.stringValue {
        case nil:
            // No post-processor: fall back to the BERT convention.
            guard let cls = vocabId("[CLS]"), let sep = vocabId("[SEP]") else {
                throw fail("no post_processor and no [CLS]/[SEP] in the vocabulary")
            }
            prefixIds = [cls]; prefixTypes = [0]; suffixIds = [sep]; suffixTypes = [0]
        case "BertProcessing"?:
            guard let cls = post[first: "cls"]?.arrayValue, cls.count == 2, let clsId = cls[1].integralValue,
                  let sep = post[first: "sep"]?.arrayValue, sep.count == 2, let sepId = sep[1].integralValue else {
                throw fail("malformed BertProcessing post_processor")
            }
            prefixIds = [Int32(clsId)]; prefixTypes = [0]; suffixIds = [Int32(sepId)]; suffixTypes = [0]
        case "TemplateProcessing"?:
            guard let single = post[first: "single"]?.arrayValue else { throw fail("post_processor.single is missing") }
            var seenSequence = false
            for piece in single {
                if let seq = piece[first: "Sequence"] {
                    if seenSequence { throw fail("post_processor.single has two sequences") }
                    seenSequence = true
                    sequenceType = Int32(seq[first: "type_id"]?.integralValue ?? 0)
                } else if let special = piece[first: "SpecialToken"], let name = special[first: "id"]?.stringValue {
                    let typeId = Int32(special[first: "type_id"]?.integralValue ?? 0)
                    var ids: [Int32] = []
                    if let idList = post[first: "special_tokens"]?[first: name]?[first: "ids"]?.arrayValue {
                        for v in idList {
                            guard let i = v.integralValue else { throw fail("malformed post_processor.special_tokens") }
                            ids.append(Int32(i))
                        }
                    } else if let i = vocabId(name) {
                        ids = [i]
                    } else {
                        throw fail("post_processor special token \"\(name)\" has no id")
                    }
                    if seenSequence {
                        suffixIds += ids; suffixTypes += Array(repeating: typeId, count: ids.count)
                    } else {
                        prefixIds += ids; prefixTypes += Array(repeating: typeId, count: ids.count)
                    }
                } else {
                    throw fail("unrecognised item in post_processor.single")
                }
            }
            if !seenSequence { throw fail("post_processor.single has no sequence") }
        case let other?:
            throw fail("post_processor type \"\(other)\" is not supported")
        }

        // Truncation and padding settings.
        let truncation = root[first: "truncation"]?[first: "max_length"]?.integralValue
        var fixedPadding: Int? = nil
        var padId: Int32? = nil
        var padType: Int32 = 0
        if let padding = root[first: "padding"], !padding.isNull {
            fixedPadding = padding[first: "strategy"]?[first: "Fixed"]?.integralValue
            if let p = padding[first: "pad_id"]?.integralValue { padId = Int32(p) }
            padType = Int32(padding[first: "pad_type_id"]?.integralValue ?? 0)
            if padId == nil, let token = padding[first: "pad_token"]?.stringValue { padId = vocabId(token) }
        }

        guard let unkId = trie.id(of: unkToken) else {
            throw fail("the unknown token \"\(unkToken)\" is not in model.vocab")
        }
        let clsId = prefixIds.first ?? vocabId("[CLS]") ?? unkId
        let sepId = suffixIds.last ?? vocabId("[SEP]") ?? unkId
        self.init(
            trie: trie, entries: entries, added: added, options: options, unkToken: unkToken,
            unkId: unkId, prefix: prefix, maxChars: maxChars,
            clsId: clsId, sepId: sepId, padId: padId ?? vocabId("[PAD]") ?? 0,
            prefixIds: prefixIds, prefixTypeIds: prefixTypes, suffixIds: suffixIds, suffixTypeIds: suffixTypes,
            sequenceTypeId: sequenceType, padTypeId: padType,
            truncation: truncation, fixedPadding: fixedPadding)
    }

    /// Builds a tokenizer from a BERT `vocab.txt` (one token per line, id = line number), like
    /// `transformers`' `BertTokenizer`. The special tokens that occur in the vocabulary are
    /// never split (matched on the raw text, like Hugging Face's added tokens).
    public init(
        vocabTXT url: URL,
        lowercase: Bool = true,
        stripAccents: Bool? = nil,
        handleChineseChars: Bool = true,
        unkToken: String = "[UNK]",
        clsToken: String = "[CLS]",
        sepToken: String = "[SEP]",
        padToken: String = "[PAD]",
        maskToken: String = "[MASK]",
        maxInputCharsPerWord: Int = 100
    ) throws {
        let path = url.path
        let bytes = try Self.readBytes(url)
        // One token per line, id = line index (BOM skipped, "\r\n" accepted, no token after a
        // final newline); later duplicates win, as in Hugging Face.
        var entries: [(String, Int32)] = []
        for (index, range) in TextLines.splitLines(bytes).enumerated() {
            entries.append((String(decoding: bytes[range], as: UTF8.self), Int32(index)))
        }
        if entries.isEmpty { throw TokenizerError(file: path, reason: "the vocabulary is empty") }
        let trie = VocabTrie(entries: entries, continuingPrefix: "##")
        guard let unkId = trie.id(of: unkToken) else {
            throw TokenizerError(file: path, reason: "the unknown token \"\(unkToken)\" is not in the vocabulary")
        }
        guard let clsId = trie.id(of: clsToken), let sepId = trie.id(of: sepToken) else {
            throw TokenizerError(file: path, reason: "\"\(clsToken)\" or \"\(sepToken)\" is not in the vocabulary")
        }
        var added: [AddedTokenSpec] = []
        for token in [padToken, unkToken, clsToken, sepToken, maskToken] {
            if let id = trie.id(of: token), !added.contains(where: { $0.id == id }) {
                added.append(AddedTokenSpec(id: id, content: token, singleWord: false, lstrip: false, rstrip: false, normalized: false))
            }
        }
        self.init(
            trie: trie, entries: entries, added: added,
            options: NormalizerOptions(cleanText: true, handleChineseChars: handleChineseChars, stripAccents: stripAccents, lowercase: lowercase),
            unkToken: unkToken, unkId: unkId, prefix: "##", maxChars: maxInputCharsPerWord,
            clsId: clsId, sepId: sepId, padId: trie.id(of: padToken) ?? 0,
            prefixIds: [clsId], prefixTypeIds: [0], suffixIds: [sepId], suffixTypeIds: [0],
            sequenceTypeId: 0, padTypeId: 0, truncation: nil, fixedPadding: nil)
    }

    /// Loads the tokenizer of a Hugging Face model directory: `tokenizer.json` if present, else
    /// `vocab.txt` with the options of `tokenizer_config.json` (`do_lower_case`, `strip_accents`,
    /// `tokenize_chinese_chars`, special tokens) and `special_tokens_map.json` when present.
    public static func load(modelDirectory: URL) throws -> WordPieceTokenizer {
        let fm = FileManager.default
        let json = modelDirectory.appendingPathComponent("tokenizer.json")
        if fm.fileExists(atPath: json.path) {
            return try WordPieceTokenizer(tokenizerJSON: json)
        }
        let vocab = modelDirectory.appendingPathComponent("vocab.txt")
        guard fm.fileExists(atPath: vocab.path) else {
            throw TokenizerError(file: modelDirectory.path, reason: "neither tokenizer.json nor vocab.txt found")
        }
        func readObject(_ name: String) throws -> StrictJSON.Value? {
            let url = modelDirectory.appendingPathComponent(name)
            guard fm.fileExists(atPath: url.path) else { return nil }
            do {
                let value = try parseJSON(try readBytes(url))
                guard case .object = value else {
                    throw TokenizerError(file: url.path, reason: "expected a JSON object")
                }
                return value
            } catch let error as StrictJSON.ParseError {
                throw TokenizerError(file: url.path, reason: "not valid JSON (\(error))")
            }
        }
        let config = try readObject("tokenizer_config.json")
        let specialMap = try readObject("special_tokens_map.json")
        // Token entries are either strings or {"content": ...} objects.
        func token(_ key: String, _ fallback: String) -> String {
            for source in [specialMap, config] {
                if let v = source?[first: key] {
                    if let s = v.stringValue { return s }
                    if let s = v[first: "content"]?.stringValue { return s }
                }
            }
            return fallback
        }
        let lowercase = config?[first: "do_lower_case"]?.boolValue ?? true
        return try WordPieceTokenizer(
            vocabTXT: vocab,
            lowercase: lowercase,
            stripAccents: config?[first: "strip_accents"]?.boolValue,
            handleChineseChars: config?[first: "tokenize_chinese_chars"]?.boolValue ?? true,
            unkToken: token("unk_token", "[UNK]"),
            clsToken: token("cls_token", "[CLS]"),
            sepToken: token("sep_token", "[SEP]"),
            padToken: token("pad_token", "[PAD]"),
            maskToken: token("mask_token", "[MASK]"))
    }

    private init(
        trie: VocabTrie, entries: [(String, Int32)], added: [AddedTokenSpec], options: NormalizerOptions,
        unkToken: String, unkId: Int32, prefix: String, maxChars: Int,
        clsId: Int32, sepId: Int32, padId: Int32,
        prefixIds: [Int32], prefixTypeIds: [Int32], suffixIds: [Int32], suffixTypeIds: [Int32],
        sequenceTypeId: Int32, padTypeId: Int32, truncation: Int?, fixedPadding: Int?
    ) {
        self.vocab = trie
        self.normalizer = options
        self.unkToken = unkToken
        self.unkId = unkId
        self.continuingSubwordPrefix = prefix
        self.maxInputCharsPerWord = maxChars
        self.clsId = clsId
        self.sepId = sepId
        self.padId = padId
        self.prefixIds = prefixIds
        self.prefixTypeIds = prefixTypeIds
        self.suffixIds = suffixIds
        self.suffixTypeIds = suffixTypeIds
        self.sequenceTypeId = sequenceTypeId
        self.padTypeId = padTypeId
        self.configuredTruncationLength = truncation
        self.configuredPaddingLength = fixedPadding

        var size = 0
        for (_, id) in entries { size = max(size, Int(id) + 1) }
        for a in added { size = max(size, Int(a.id) + 1) }
        self.vocabularySize = size
        var names = Array(repeating: "", count: size)
        for (token, id) in entries.reversed() { names[Int(id)] = token }  // first spelling wins for id → token
        for a in added { names[Int(a.id)] = a.content }
        self.idToToken = names

        self.rawMatcher = AddedTokenMatcher(tokens: added.filter { !$0.normalized }.map {
            AddedTokenMatcher.Pattern(id: $0.id, scalars: Array($0.content.unicodeScalars), singleWord: $0.singleWord, lstrip: $0.lstrip, rstrip: $0.rstrip)
        })
        // Normalized added tokens are matched in their normalized spelling, as Hugging Face does.
        var normalizedPatterns: [AddedTokenMatcher.Pattern] = []
        for a in added where a.normalized {
            var buffer: [Unicode.Scalar] = []
            Normalizer.normalize(Array(a.content.unicodeScalars)[...], options: options, into: &buffer)
            if !buffer.isEmpty {
                normalizedPatterns.append(.init(id: a.id, scalars: buffer, singleWord: a.singleWord, lstrip: a.lstrip, rstrip: a.rstrip))
            }
        }
        self.normalizedMatcher = AddedTokenMatcher(tokens: normalizedPatterns)
    }

    /// Parses a tokenizer file: a leading byte-order mark is skipped and invalid Unicode in
    /// strings becomes U+FFFD; the nesting limit is generous (tokenizer.json nests shallowly).
    static func parseJSON(_ bytes: [UInt8]) throws -> StrictJSON.Value {
        try StrictJSON.parse(bytes, maxDepth: 512, options: .lenientText)
    }

    static func readBytes(_ url: URL) throws -> [UInt8] {
        do {
            return [UInt8](try Data(contentsOf: url))
        } catch {
            let fm = FileManager.default
            var isDirectory: ObjCBool = false
            if !fm.fileExists(atPath: url.path, isDirectory: &isDirectory) {
                throw TokenizerError(file: url.path, reason: "no such file")
            }
            if isDirectory.boolValue { throw TokenizerError(file: url.path, reason: "is a directory, not a file") }
            throw TokenizerError(file: url.path, reason: "cannot be read (\(error.localizedDescription))")
        }
    }

    // MARK: - Vocabulary

    /// The id of `token` in the vocabulary (exact Unicode scalars) or among the added tokens.
    public func id(of token: String) -> Int32? {
        if let id = vocab.id(of: token) { return id }
        let scalars = Array(token.unicodeScalars)
        return rawMatcher.exactId(scalars) ?? normalizedMatcher.exactId(scalars)
    }

    /// The token string of `id`, or nil when out of range.
    public func token(of id: Int32) -> String? {
        guard id >= 0, Int(id) < idToToken.count else { return nil }
        return idToToken[Int(id)]
    }

    // MARK: - Encoding

    /// The wordpieces of `text` (no [CLS]/[SEP]); unknown words are `unkToken`.
    public func tokenize(_ text: String) -> [String] {
        var ids: [Int32] = []
        var scratch = Scratch()
        appendContentIds(of: text, to: &ids, scratch: &scratch)
        return ids.map { idToToken[Int($0)] }
    }

    /// Ids `encode` adds around the text ([CLS] and [SEP]: 2 for BERT).
    public var specialTokenCount: Int { prefixIds.count + suffixIds.count }

    /// Refuses a user's `--max-length` shorter than the special tokens: `encode` would return
    /// more ids than asked for. `source` names the model directory in the error.
    public func checkMaxLength(_ maxLength: Int?, source: String) throws {
        guard let maxLength, maxLength < max(specialTokenCount, 1) else { return }
        throw TokenizerError(file: source, reason: "--max-length \(maxLength) is shorter than the \(specialTokenCount) special tokens the tokenizer adds ([CLS] and [SEP]); use at least \(max(specialTokenCount, 1))")
    }

    /// Token ids of `text`: `[CLS] … [SEP]` when `addSpecialTokens`. With `maxLength`, the
    /// wordpieces are cut from the right so that the result (special tokens included) has at
    /// most `maxLength` ids and still ends with [SEP]; a `maxLength` smaller than the number of
    /// special tokens keeps the special tokens only.
    public func encode(_ text: String, maxLength: Int? = nil, addSpecialTokens: Bool = true) -> [Int32] {
        var scratch = Scratch()
        return encode(text, maxLength: maxLength, addSpecialTokens: addSpecialTokens, scratch: &scratch).ids
    }

    /// Encodes and pads a batch. Every row is `encode(text, maxLength:, addSpecialTokens:)`;
    /// rows are padded on the right with `padId` (attention mask 0) to the longest row when
    /// `padToLongest`, otherwise to `maxLength` (or to the longest row when `maxLength` is nil).
    public func encodeBatch(_ texts: [String], maxLength: Int?, padToLongest: Bool = true, addSpecialTokens: Bool = true) -> TokenizedBatch {
        var scratch = Scratch()
        var rows: [(ids: [Int32], types: [Int32])] = []
        rows.reserveCapacity(texts.count)
        var longest = 0
        for text in texts {
            let row = encode(text, maxLength: maxLength, addSpecialTokens: addSpecialTokens, scratch: &scratch)
            longest = max(longest, row.ids.count)
            rows.append(row)
        }
        let length = (!padToLongest && maxLength != nil) ? max(longest, maxLength!) : longest
        var ids = [Int32](repeating: padId, count: rows.count * length)
        var mask = [Int32](repeating: 0, count: rows.count * length)
        var types = [Int32](repeating: padTypeId, count: rows.count * length)
        for (r, row) in rows.enumerated() {
            let base = r * length
            for j in 0..<row.ids.count {
                ids[base + j] = row.ids[j]
                mask[base + j] = 1
                types[base + j] = row.types[j]
            }
        }
        return TokenizedBatch(batchSize: rows.count, sequenceLength: length, inputIds: ids, attentionMask: mask, tokenTypeIds: types)
    }

    private func encode(_ text: String, maxLength: Int?, addSpecialTokens: Bool, scratch: inout Scratch) -> (ids: [Int32], types: [Int32]) {
        var content: [Int32] = []
        appendContentIds(of: text, to: &content, scratch: &scratch)
        let specials = addSpecialTokens ? prefixIds.count + suffixIds.count : 0
        if let maxLength {
            let budget = max(0, maxLength - specials)
            if content.count > budget { content.removeLast(content.count - budget) }
        }
        guard addSpecialTokens else {
            return (content, Array(repeating: sequenceTypeId, count: content.count))
        }
        var ids = prefixIds
        ids.reserveCapacity(specials + content.count)
        ids += content
        ids += suffixIds
        var types = prefixTypeIds
        types.reserveCapacity(ids.count)
        types += Array(repeating: sequenceTypeId, count: content.count)
        types += suffixTypeIds
        return (ids, types)
    }

    /// Reusable buffers for one encoding call chain.
    struct Scratch {
        var raw: [Unicode.Scalar] = []
        var normalized: [Unicode.Scalar] = []
        var pieces: [AddedTokenMatcher.Piece] = []
        var innerPieces: [AddedTokenMatcher.Piece] = []
    }

    func appendContentIds(of text: String, to ids: inout [Int32], scratch: inout Scratch) {
        scratch.raw.removeAll(keepingCapacity: true)
        scratch.raw.append(contentsOf: text.unicodeScalars)
        let raw = scratch.raw
        rawMatcher.split(raw, into: &scratch.pieces)
        for piece in scratch.pieces {
            switch piece {
            case .token(let id):
                ids.append(id)
            case .text(let range):
                Normalizer.normalize(raw[range], options: normalizer, into: &scratch.normalized)
                if normalizedMatcher.isEmpty {
                    appendWordPieces(scratch.normalized[...], to: &ids)
                } else {
                    let normalized = scratch.normalized
                    normalizedMatcher.split(normalized, into: &scratch.innerPieces)
                    for inner in scratch.innerPieces {
                        switch inner {
                        case .token(let id): ids.append(id)
                        case .text(let r): appendWordPieces(normalized[r], to: &ids)
                        }
                    }
                }
            }
        }
    }

    /// BertPreTokenizer + WordPiece over normalized text.
    private func appendWordPieces(_ text: ArraySlice<Unicode.Scalar>, to ids: inout [Int32]) {
        var wordStart = -1
        var i = text.startIndex
        let end = text.endIndex
        while i < end {
            let s = text[i]
            if UnicodeClass.isWhitespace(s) {
                if wordStart >= 0 { appendWord(text[wordStart..<i], to: &ids); wordStart = -1 }
            } else if UnicodeClass.isPunctuation(s) {
                if wordStart >= 0 { appendWord(text[wordStart..<i], to: &ids); wordStart = -1 }
                appendWord(text[i..<(i + 1)], to: &ids)
            } else if wordStart < 0 {
                wordStart = i
            }
            i += 1
        }
        if wordStart >= 0 { appendWord(text[wordStart..<end], to: &ids) }
    }

    /// Greedy longest-match-first WordPiece for one word.
    private func appendWord(_ word: ArraySlice<Unicode.Scalar>, to ids: inout [Int32]) {
        if word.count > maxInputCharsPerWord { ids.append(unkId); return }
        let mark = ids.count
        var start = word.startIndex
        let end = word.endIndex
        while start < end {
            var node = start == word.startIndex ? VocabTrie.root : vocab.continuationNode
            var bestEnd = -1
            var bestId: Int32 = -1
            var i = start
            while node >= 0, i < end {
                node = vocab.child(node, word[i])
                i += 1
                if node >= 0 {
                    let id = vocab.tokenIds[Int(node)]
                    if id >= 0 { bestEnd = i; bestId = id }
                }
            }
            if bestEnd < 0 {
                ids.removeSubrange(mark...)
                ids.append(unkId)
                return
            }
            ids.append(bestId)
            start = bestEnd
        }
    }
}

extension WordPieceTokenizer {
    // MARK: - Vocabulary trie

    /// A trie over Unicode scalars; each node may carry a token id. Greedy longest match is a walk
    /// from the root (word start) or from the node of "##" (continuation).
    struct VocabTrie: Sendable {
        static let root: Int32 = 0
        /// Children of the root for ASCII scalars (the common case), -1 when absent.
        private var rootASCII = [Int32](repeating: -1, count: 128)
        /// (node << 21 | scalar) → child node.
        private var edges: [UInt64: Int32] = [:]
        private(set) var tokenIds: [Int32] = [-1]
        /// Node reached by the continuation prefix, or -1 if no token starts with it.
        private(set) var continuationNode: Int32 = -1

        init(entries: [(String, Int32)], continuingPrefix: String) {
            edges.reserveCapacity(entries.count * 4)
            for (token, id) in entries {
                var node = VocabTrie.root
                for s in token.unicodeScalars {
                    if let next = childOrNil(node, s) {
                        node = next
                    } else {
                        let next = Int32(tokenIds.count)
                        tokenIds.append(-1)
                        if node == VocabTrie.root && s.value < 128 {
                            rootASCII[Int(s.value)] = next
                        } else {
                            edges[UInt64(UInt32(bitPattern: node)) << 21 | UInt64(s.value)] = next
                        }
                        node = next
                    }
                }
                if node != VocabTrie.root { tokenIds[Int(node)] = id }  // later duplicates win, as in HF
            }
            var node = VocabTrie.root
            for s in continuingPrefix.unicodeScalars {
                guard node >= 0 else { break }
                node = child(node, s)
            }
            continuationNode = continuingPrefix.isEmpty ? VocabTrie.root : node
        }

        private func childOrNil(_ node: Int32, _ s: Unicode.Scalar) -> Int32? {
            let c = child(node, s)
            return c >= 0 ? c : nil
        }

        @inline(__always)
        func child(_ node: Int32, _ s: Unicode.Scalar) -> Int32 {
            if node == VocabTrie.root && s.value < 128 { return rootASCII[Int(s.value)] }
            return edges[UInt64(UInt32(bitPattern: node)) << 21 | UInt64(s.value)] ?? -1
        }

        func id(of token: String) -> Int32? {
            var node = VocabTrie.root
            for s in token.unicodeScalars {
                node = child(node, s)
                if node < 0 { return nil }
            }
            let id = tokenIds[Int(node)]
            return id >= 0 ? id : nil
        }
    }

    // MARK: - Added tokens

    struct AddedTokenSpec: Sendable {
        let id: Int32
        let content: String
        let singleWord: Bool
        let lstrip: Bool
        let rstrip: Bool
        let normalized: Bool
    }

    /// Leftmost-longest matching of added tokens (Hugging Face uses Aho-Corasick, LeftmostLongest).
    struct AddedTokenMatcher: Sendable {
        struct Pattern: Sendable {
            let id: Int32
            let scalars: [Unicode.Scalar]
            let singleWord: Bool
            let lstrip: Bool
            let rstrip: Bool
        }
        enum Piece {
            case text(Range<Int>)
            case token(Int32)
        }

        /// Patterns grouped by first scalar, longest first.
        private let byFirst: [UInt32: [Pattern]]
        private var asciiFirst: (UInt64, UInt64) = (0, 0)
        private let hasNonASCIIFirst: Bool

        var isEmpty: Bool { byFirst.isEmpty }

        init(tokens: [Pattern]) {
            var groups: [UInt32: [Pattern]] = [:]
            var nonASCII = false
            for t in tokens where !t.scalars.isEmpty {
                let first = t.scalars[0].value
                groups[first, default: []].append(t)
                if first < 64 { asciiFirst.0 |= 1 << first } else if first < 128 { asciiFirst.1 |= 1 << (first - 64) } else { nonASCII = true }
            }
            for key in groups.keys { groups[key]!.sort { $0.scalars.count > $1.scalars.count } }
            byFirst = groups
            hasNonASCIIFirst = nonASCII
        }

        func exactId(_ scalars: [Unicode.Scalar]) -> Int32? {
            guard let first = scalars.first, let group = byFirst[first.value] else { return nil }
            return group.first(where: { $0.scalars == scalars })?.id
        }

        @inline(__always)
        private func mayStart(_ s: Unicode.Scalar) -> Bool {
            let v = s.value
            if v < 64 { return asciiFirst.0 & (1 << v) != 0 }
            if v < 128 { return asciiFirst.1 & (1 << (v - 64)) != 0 }
            return hasNonASCIIFirst
        }

        /// Splits `text` into text ranges and matched tokens, in order; empty text ranges are omitted.
        func split(_ text: [Unicode.Scalar], into pieces: inout [Piece]) {
            pieces.removeAll(keepingCapacity: true)
            let n = text.count
            var textStart = 0  // start of the pending text range
            var i = 0
            while i < n {
                guard mayStart(text[i]), let group = byFirst[text[i].value] else { i += 1; continue }
                var matched: Pattern? = nil
                for p in group where i + p.scalars.count <= n {
                    var ok = true
                    for k in 1..<p.scalars.count where text[i + k] != p.scalars[k] { ok = false; break }
                    if !ok { continue }
                    if p.singleWord {
                        let before = i > 0 && UnicodeClass.isWordCharacter(text[i - 1])
                        let after = i + p.scalars.count < n && UnicodeClass.isWordCharacter(text[i + p.scalars.count])
                        if before || after { continue }
                    }
                    matched = p
                    break
                }
                guard let p = matched else { i += 1; continue }
                var start = i
                var stop = i + p.scalars.count
                if p.lstrip { while start > textStart, UnicodeClass.isWhitespace(text[start - 1]) { start -= 1 } }
                if p.rstrip { while stop < n, UnicodeClass.isWhitespace(text[stop]) { stop += 1 } }
                if start > textStart { pieces.append(.text(textStart..<start)) }
                pieces.append(.token(p.id))
                textStart = stop
                i = stop
            }
            if textStart < n { pieces.append(.text(textStart..<n)) }
        }
    }

    // MARK: - Normalizer and character classes

    enum Normalizer {
        /// BertNormalizer: clean text, CJK spacing, strip accents, lowercase — in that order.
        static func normalize(_ input: ArraySlice<Unicode.Scalar>, options: NormalizerOptions, into out: inout [Unicode.Scalar]) {
            out.removeAll(keepingCapacity: true)
            out.reserveCapacity(input.count + 8)
            var nonASCII = false
            let clean = options.cleanText
            let chinese = options.handleChineseChars
            for s in input {
                let v = s.value
                if v < 0x80 {
                    if clean {
                        if v == 0x20 || v == 0x09 || v == 0x0A || v == 0x0D { out.append(" "); continue }
                        if v < 0x20 || v == 0x7F { continue }  // Cc (incl. U+0000, \v, \f)
                    }
                    out.append(s)
                    continue
                }
                nonASCII = true
                if clean {
                    if UnicodeClass.isRemovedByCleanText(s) { continue }
                    if UnicodeClass.isWhitespace(s) { out.append(" "); continue }
                }
                if chinese && UnicodeClass.isChineseChar(v) {
                    out.append(" "); out.append(s); out.append(" ")
                    continue
                }
                out.append(s)
            }
            if options.effectiveStripAccents && nonASCII {
                stripAccents(&out)
            }
            if options.lowercase {
                if !nonASCII {
                    for k in out.indices where out[k].value &- 0x41 < 26 {
                        out[k] = Unicode.Scalar(out[k].value + 0x20)!
                    }
                } else {
                    var lowered: [Unicode.Scalar] = []
                    lowered.reserveCapacity(out.count)
                    for s in out {
                        let v = s.value
                        if v < 0x80 {
                            lowered.append(v &- 0x41 < 26 ? Unicode.Scalar(v + 0x20)! : s)
                        } else if s.properties.changesWhenLowercased {
                            lowered.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
                        } else {
                            lowered.append(s)
                        }
                    }
                    out = lowered
                }
            }
        }

        /// NFD, then drop nonspacing marks (Mn) — Hugging Face's strip_accents.
        ///
        /// Hugging Face's NFD (crate `unicode-normalization-alignments`) has Unicode 9.0 data, Swift's
        /// is newer: a code point assigned after 9.0 is, for Hugging Face, an undecomposed starter
        /// even when Swift decomposes it (U+11938) or gives it a combining class (U+1DF6, U+0897…)
        /// and reorders marks around it. Such code points are copied unchanged and the runs between
        /// them are normalized by Foundation (splitting at a starter cannot change an NFD result).
        /// Verified against `tokenizers` 0.23.3 on every code point and 200k mark sequences.
        static func stripAccents(_ scalars: inout [Unicode.Scalar]) {
            var result: [Unicode.Scalar] = []
            result.reserveCapacity(scalars.count + 8)
            var runStart = 0
            func flush(_ end: Int) {
                guard runStart < end else { return }
                var string = String()
                string.unicodeScalars.append(contentsOf: scalars[runStart..<end])
                for s in string.decomposedStringWithCanonicalMapping.unicodeScalars where !UnicodeClass.isNonspacingMark(s) {
                    result.append(s)
                }
            }
            for (k, s) in scalars.enumerated() where s.value >= 0x7FD && isNewerThanUnicode9(s) {
                flush(k)
                if !UnicodeClass.isNonspacingMark(s) { result.append(s) }
                runStart = k + 1
            }
            flush(scalars.count)
            scalars = result
        }

        @inline(__always)
        static func isNewerThanUnicode9(_ s: Unicode.Scalar) -> Bool {
            guard let age = s.properties.age else { return false }  // unassigned: NFD leaves it alone
            return age.major > 9
        }
    }

    /// Character classes exactly as Hugging Face `tokenizers` (0.2x) computes them. Its
    /// BertNormalizer/BertPreTokenizer take general categories from the `unicode_categories` crate,
    /// whose tables are from an old Unicode version (≈8.0), so Swift's own (newer) categories would
    /// disagree on dozens of code points (e.g. U+2E43 is punctuation in Swift, not for HF; U+166D is the
    /// reverse). The tables below were extracted by probing every code point through `tokenizers`
    /// 0.23.3 (normalizer and pre-tokenizer separately) and are stored as sorted inclusive
    /// [first, last] pairs.
    enum UnicodeClass {
        /// Removed by clean_text: U+0000, U+FFFD and controls (Cc, Cf, Co) except \t \n \r.
        @inline(__always)
        static func isRemovedByCleanText(_ s: Unicode.Scalar) -> Bool {
            let v = s.value
            if v < 0x80 { return (v < 0x20 && v != 0x09 && v != 0x0A && v != 0x0D) || v == 0x7F }
            return inRanges(v, removedByCleanText)
        }

        /// Rust `char::is_whitespace` (the White_Space property); \t \n \r included.
        @inline(__always)
        static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
            let v = s.value
            if v < 0x80 { return v == 0x20 || (v >= 0x09 && v <= 0x0D) }
            return inRanges(v, whitespace)
        }

        /// BERT punctuation: the ASCII non-alphanumeric printable ranges plus Unicode P*.
        @inline(__always)
        static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
            let v = s.value
            if v < 0x80 {
                return (v >= 33 && v <= 47) || (v >= 58 && v <= 64) || (v >= 91 && v <= 96) || (v >= 123 && v <= 126)
            }
            return inRanges(v, punctuation)
        }

        /// Nonspacing mark (Mn): removed by strip_accents after NFD.
        @inline(__always)
        static func isNonspacingMark(_ s: Unicode.Scalar) -> Bool {
            let v = s.value
            return v >= 0x300 && inRanges(v, nonspacingMark)
        }

        /// CJK ideographs that handle_chinese_chars surrounds with spaces. Note Hugging Face's range
        /// 0x2B920...0x2CEAF (Google's BERT has 0x2B820...0x2CEAF).
        @inline(__always)
        static func isChineseChar(_ v: UInt32) -> Bool {
            v >= 0x3400 && inRanges(v, chinese)
        }

        /// Regex `\w` (for single_word added tokens).
        static func isWordCharacter(_ s: Unicode.Scalar) -> Bool {
            let p = s.properties
            if p.isAlphabetic || p.isJoinControl { return true }
            switch p.generalCategory {
            case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
            default: return false
            }
        }

        /// Whether `v` lies in one of the sorted inclusive pairs of `table`.
        @inline(__always)
        static func inRanges(_ v: UInt32, _ table: [UInt32]) -> Bool {
            var lo = 0
            var hi = table.count / 2  // number of pairs
            if hi == 0 || v < table[0] || v > table[table.count - 1] { return false }
            while lo < hi {
                let mid = (lo + hi) >> 1
                if table[2 * mid + 1] < v { lo = mid + 1 } else { hi = mid }
            }
            return lo < table.count / 2 && table[2 * lo] <= v
        }

        // MARK: tables (generated from tokenizers 0.23.3; see above)

        /// Removed by clean_text (non-ASCII part): U+FFFD and Hugging Face's `is_control` (Cc, Cf, Co of its Unicode tables).
        static let removedByCleanText: [UInt32] = [
            0x80, 0x9F, 0xAD, 0xAD, 0x600, 0x605, 0x61C, 0x61C, 0x6DD, 0x6DD, 0x70F, 0x70F,
            0x180E, 0x180E, 0x200B, 0x200F, 0x202A, 0x202E, 0x2060, 0x2064, 0x2066, 0x206F, 0xE000, 0xF8FF,
            0xFEFF, 0xFEFF, 0xFFF9, 0xFFFB, 0xFFFD, 0xFFFD, 0x110BD, 0x110BD, 0x1BCA0, 0x1BCA3, 0x1D173, 0x1D17A,
            0xE0001, 0xE0001, 0xE0020, 0xE007F, 0xF0000, 0xFFFFD, 0x100000, 0x10FFFD,
        ]

        /// Rust `char::is_whitespace` (White_Space), non-ASCII part.
        static let whitespace: [UInt32] = [
            0x85, 0x85, 0xA0, 0xA0, 0x1680, 0x1680, 0x2000, 0x200A, 0x2028, 0x2029, 0x202F, 0x202F,
            0x205F, 0x205F, 0x3000, 0x3000,
        ]

        /// Unicode P* per Hugging Face's tables, non-ASCII part (the ASCII part is BERT's four ranges).
        static let punctuation: [UInt32] = [
            0xA1, 0xA1, 0xA7, 0xA7, 0xAB, 0xAB, 0xB6, 0xB7, 0xBB, 0xBB, 0xBF, 0xBF,
            0x37E, 0x37E, 0x387, 0x387, 0x55A, 0x55F, 0x589, 0x58A, 0x5BE, 0x5BE, 0x5C0, 0x5C0,
            0x5C3, 0x5C3, 0x5C6, 0x5C6, 0x5F3, 0x5F4, 0x609, 0x60A, 0x60C, 0x60D, 0x61B, 0x61B,
            0x61E, 0x61F, 0x66A, 0x66D, 0x6D4, 0x6D4, 0x700, 0x70D, 0x7F7, 0x7F9, 0x830, 0x83E,
            0x85E, 0x85E, 0x964, 0x965, 0x970, 0x970, 0xAF0, 0xAF0, 0xDF4, 0xDF4, 0xE4F, 0xE4F,
            0xE5A, 0xE5B, 0xF04, 0xF12, 0xF14, 0xF14, 0xF3A, 0xF3D, 0xF85, 0xF85, 0xFD0, 0xFD4,
            0xFD9, 0xFDA, 0x104A, 0x104F, 0x10FB, 0x10FB, 0x1360, 0x1368, 0x1400, 0x1400, 0x166D, 0x166E,
            0x169B, 0x169C, 0x16EB, 0x16ED, 0x1735, 0x1736, 0x17D4, 0x17D6, 0x17D8, 0x17DA, 0x1800, 0x180A,
            0x1944, 0x1945, 0x1A1E, 0x1A1F, 0x1AA0, 0x1AA6, 0x1AA8, 0x1AAD, 0x1B5A, 0x1B60, 0x1BFC, 0x1BFF,
            0x1C3B, 0x1C3F, 0x1C7E, 0x1C7F, 0x1CC0, 0x1CC7, 0x1CD3, 0x1CD3, 0x2010, 0x2027, 0x2030, 0x2043,
            0x2045, 0x2051, 0x2053, 0x205E, 0x207D, 0x207E, 0x208D, 0x208E, 0x2308, 0x230B, 0x2329, 0x232A,
            0x2768, 0x2775, 0x27C5, 0x27C6, 0x27E6, 0x27EF, 0x2983, 0x2998, 0x29D8, 0x29DB, 0x29FC, 0x29FD,
            0x2CF9, 0x2CFC, 0x2CFE, 0x2CFF, 0x2D70, 0x2D70, 0x2E00, 0x2E2E, 0x2E30, 0x2E42, 0x3001, 0x3003,
            0x3008, 0x3011, 0x3014, 0x301F, 0x3030, 0x3030, 0x303D, 0x303D, 0x30A0, 0x30A0, 0x30FB, 0x30FB,
            0xA4FE, 0xA4FF, 0xA60D, 0xA60F, 0xA673, 0xA673, 0xA67E, 0xA67E, 0xA6F2, 0xA6F7, 0xA874, 0xA877,
            0xA8CE, 0xA8CF, 0xA8F8, 0xA8FA, 0xA8FC, 0xA8FC, 0xA92E, 0xA92F, 0xA95F, 0xA95F, 0xA9C1, 0xA9CD,
            0xA9DE, 0xA9DF, 0xAA5C, 0xAA5F, 0xAADE, 0xAADF, 0xAAF0, 0xAAF1, 0xABEB, 0xABEB, 0xFD3E, 0xFD3F,
            0xFE10, 0xFE19, 0xFE30, 0xFE52, 0xFE54, 0xFE61, 0xFE63, 0xFE63, 0xFE68, 0xFE68, 0xFE6A, 0xFE6B,
            0xFF01, 0xFF03, 0xFF05, 0xFF0A, 0xFF0C, 0xFF0F, 0xFF1A, 0xFF1B, 0xFF1F, 0xFF20, 0xFF3B, 0xFF3D,
            0xFF3F, 0xFF3F, 0xFF5B, 0xFF5B, 0xFF5D, 0xFF5D, 0xFF5F, 0xFF65, 0x10100, 0x10102, 0x1039F, 0x1039F,
            0x103D0, 0x103D0, 0x1056F, 0x1056F, 0x10857, 0x10857, 0x1091F, 0x1091F, 0x1093F, 0x1093F, 0x10A50, 0x10A58,
            0x10A7F, 0x10A7F, 0x10AF0, 0x10AF6, 0x10B39, 0x10B3F, 0x10B99, 0x10B9C, 0x11047, 0x1104D, 0x110BB, 0x110BC,
            0x110BE, 0x110C1, 0x11140, 0x11143, 0x11174, 0x11175, 0x111C5, 0x111C9, 0x111CD, 0x111CD, 0x111DB, 0x111DB,
            0x111DD, 0x111DF, 0x11238, 0x1123D, 0x112A9, 0x112A9, 0x114C6, 0x114C6, 0x115C1, 0x115D7, 0x11641, 0x11643,
            0x1173C, 0x1173E, 0x12470, 0x12474, 0x16A6E, 0x16A6F, 0x16AF5, 0x16AF5, 0x16B37, 0x16B3B, 0x16B44, 0x16B44,
            0x1BC9F, 0x1BC9F, 0x1DA87, 0x1DA8B,
        ]

        /// General category Mn per Hugging Face's tables (what strip_accents removes after NFD).
        static let nonspacingMark: [UInt32] = [
            0x300, 0x36F, 0x483, 0x487, 0x591, 0x5BD, 0x5BF, 0x5BF, 0x5C1, 0x5C2, 0x5C4, 0x5C5,
            0x5C7, 0x5C7, 0x610, 0x61A, 0x64B, 0x65F, 0x670, 0x670, 0x6D6, 0x6DC, 0x6DF, 0x6E4,
            0x6E7, 0x6E8, 0x6EA, 0x6ED, 0x711, 0x711, 0x730, 0x74A, 0x7A6, 0x7B0, 0x7EB, 0x7F3,
            0x816, 0x819, 0x81B, 0x823, 0x825, 0x827, 0x829, 0x82D, 0x859, 0x85B, 0x8E3, 0x902,
            0x93A, 0x93A, 0x93C, 0x93C, 0x941, 0x948, 0x94D, 0x94D, 0x951, 0x957, 0x962, 0x963,
            0x981, 0x981, 0x9BC, 0x9BC, 0x9C1, 0x9C4, 0x9CD, 0x9CD, 0x9E2, 0x9E3, 0xA01, 0xA02,
            0xA3C, 0xA3C, 0xA41, 0xA42, 0xA47, 0xA48, 0xA4B, 0xA4D, 0xA51, 0xA51, 0xA70, 0xA71,
            0xA75, 0xA75, 0xA81, 0xA82, 0xABC, 0xABC, 0xAC1, 0xAC5, 0xAC7, 0xAC8, 0xACD, 0xACD,
            0xAE2, 0xAE3, 0xB01, 0xB01, 0xB3C, 0xB3C, 0xB3F, 0xB3F, 0xB41, 0xB44, 0xB4D, 0xB4D,
            0xB56, 0xB56, 0xB62, 0xB63, 0xB82, 0xB82, 0xBC0, 0xBC0, 0xBCD, 0xBCD, 0xC00, 0xC00,
            0xC3E, 0xC40, 0xC46, 0xC48, 0xC4A, 0xC4D, 0xC55, 0xC56, 0xC62, 0xC63, 0xC81, 0xC81,
            0xCBC, 0xCBC, 0xCBF, 0xCBF, 0xCC6, 0xCC6, 0xCCC, 0xCCD, 0xCE2, 0xCE3, 0xD01, 0xD01,
            0xD41, 0xD44, 0xD4D, 0xD4D, 0xD62, 0xD63, 0xDCA, 0xDCA, 0xDD2, 0xDD4, 0xDD6, 0xDD6,
            0xE31, 0xE31, 0xE34, 0xE3A, 0xE47, 0xE4E, 0xEB1, 0xEB1, 0xEB4, 0xEB9, 0xEBB, 0xEBC,
            0xEC8, 0xECD, 0xF18, 0xF19, 0xF35, 0xF35, 0xF37, 0xF37, 0xF39, 0xF39, 0xF71, 0xF7E,
            0xF80, 0xF84, 0xF86, 0xF87, 0xF8D, 0xF97, 0xF99, 0xFBC, 0xFC6, 0xFC6, 0x102D, 0x1030,
            0x1032, 0x1037, 0x1039, 0x103A, 0x103D, 0x103E, 0x1058, 0x1059, 0x105E, 0x1060, 0x1071, 0x1074,
            0x1082, 0x1082, 0x1085, 0x1086, 0x108D, 0x108D, 0x109D, 0x109D, 0x135D, 0x135F, 0x1712, 0x1714,
            0x1732, 0x1734, 0x1752, 0x1753, 0x1772, 0x1773, 0x17B4, 0x17B5, 0x17B7, 0x17BD, 0x17C6, 0x17C6,
            0x17C9, 0x17D3, 0x17DD, 0x17DD, 0x180B, 0x180D, 0x18A9, 0x18A9, 0x1920, 0x1922, 0x1927, 0x1928,
            0x1932, 0x1932, 0x1939, 0x193B, 0x1A17, 0x1A18, 0x1A1B, 0x1A1B, 0x1A56, 0x1A56, 0x1A58, 0x1A5E,
            0x1A60, 0x1A60, 0x1A62, 0x1A62, 0x1A65, 0x1A6C, 0x1A73, 0x1A7C, 0x1A7F, 0x1A7F, 0x1AB0, 0x1ABD,
            0x1B00, 0x1B03, 0x1B34, 0x1B34, 0x1B36, 0x1B3A, 0x1B3C, 0x1B3C, 0x1B42, 0x1B42, 0x1B6B, 0x1B73,
            0x1B80, 0x1B81, 0x1BA2, 0x1BA5, 0x1BA8, 0x1BA9, 0x1BAB, 0x1BAD, 0x1BE6, 0x1BE6, 0x1BE8, 0x1BE9,
            0x1BED, 0x1BED, 0x1BEF, 0x1BF1, 0x1C2C, 0x1C33, 0x1C36, 0x1C37, 0x1CD0, 0x1CD2, 0x1CD4, 0x1CE0,
            0x1CE2, 0x1CE8, 0x1CED, 0x1CED, 0x1CF4, 0x1CF4, 0x1CF8, 0x1CF9, 0x1DC0, 0x1DF5, 0x1DFC, 0x1DFF,
            0x20D0, 0x20DC, 0x20E1, 0x20E1, 0x20E5, 0x20F0, 0x2CEF, 0x2CF1, 0x2D7F, 0x2D7F, 0x2DE0, 0x2DFF,
            0x302A, 0x302D, 0x3099, 0x309A, 0xA66F, 0xA66F, 0xA674, 0xA67D, 0xA69E, 0xA69F, 0xA6F0, 0xA6F1,
            0xA802, 0xA802, 0xA806, 0xA806, 0xA80B, 0xA80B, 0xA825, 0xA826, 0xA8C4, 0xA8C4, 0xA8E0, 0xA8F1,
            0xA926, 0xA92D, 0xA947, 0xA951, 0xA980, 0xA982, 0xA9B3, 0xA9B3, 0xA9B6, 0xA9B9, 0xA9BC, 0xA9BC,
            0xA9E5, 0xA9E5, 0xAA29, 0xAA2E, 0xAA31, 0xAA32, 0xAA35, 0xAA36, 0xAA43, 0xAA43, 0xAA4C, 0xAA4C,
            0xAA7C, 0xAA7C, 0xAAB0, 0xAAB0, 0xAAB2, 0xAAB4, 0xAAB7, 0xAAB8, 0xAABE, 0xAABF, 0xAAC1, 0xAAC1,
            0xAAEC, 0xAAED, 0xAAF6, 0xAAF6, 0xABE5, 0xABE5, 0xABE8, 0xABE8, 0xABED, 0xABED, 0xFB1E, 0xFB1E,
            0xFE00, 0xFE0F, 0xFE20, 0xFE2F, 0x101FD, 0x101FD, 0x102E0, 0x102E0, 0x10376, 0x1037A, 0x10A01, 0x10A03,
            0x10A05, 0x10A06, 0x10A0C, 0x10A0F, 0x10A38, 0x10A3A, 0x10A3F, 0x10A3F, 0x10AE5, 0x10AE6, 0x11001, 0x11001,
            0x11038, 0x11046, 0x1107F, 0x11081, 0x110B3, 0x110B6, 0x110B9, 0x110BA, 0x11100, 0x11102, 0x11127, 0x1112B,
            0x1112D, 0x11134, 0x11173, 0x11173, 0x11180, 0x11181, 0x111B6, 0x111BE, 0x111CA, 0x111CC, 0x1122F, 0x11231,
            0x11234, 0x11234, 0x11236, 0x11237, 0x112DF, 0x112DF, 0x112E3, 0x112EA, 0x11300, 0x11301, 0x1133C, 0x1133C,
            0x11340, 0x11340, 0x11366, 0x1136C, 0x11370, 0x11374, 0x114B3, 0x114B8, 0x114BA, 0x114BA, 0x114BF, 0x114C0,
            0x114C2, 0x114C3, 0x115B2, 0x115B5, 0x115BC, 0x115BD, 0x115BF, 0x115C0, 0x115DC, 0x115DD, 0x11633, 0x1163A,
            0x1163D, 0x1163D, 0x1163F, 0x11640, 0x116AB, 0x116AB, 0x116AD, 0x116AD, 0x116B0, 0x116B5, 0x116B7, 0x116B7,
            0x1171D, 0x1171F, 0x11722, 0x11725, 0x11727, 0x1172B, 0x16AF0, 0x16AF4, 0x16B30, 0x16B36, 0x16F8F, 0x16F92,
            0x1BC9D, 0x1BC9E, 0x1D167, 0x1D169, 0x1D17B, 0x1D182, 0x1D185, 0x1D18B, 0x1D1AA, 0x1D1AD, 0x1D242, 0x1D244,
            0x1DA00, 0x1DA36, 0x1DA3B, 0x1DA6C, 0x1DA75, 0x1DA75, 0x1DA84, 0x1DA84, 0x1DA9B, 0x1DA9F, 0x1DAA1, 0x1DAAF,
            0x1E8D0, 0x1E8D6, 0xE0100, 0xE01EF,
        ]

        /// CJK ideograph ranges of Hugging Face's `is_chinese_char`.
        static let chinese: [UInt32] = [
            0x3400, 0x4DBF, 0x4E00, 0x9FFF, 0xF900, 0xFAFF, 0x20000, 0x2A6DF, 0x2A700, 0x2B81F, 0x2B920, 0x2CEAF,
            0x2F800, 0x2FA1F,
        ]
    }
}

private extension StrictJSON.Value {
    /// A number with no fractional part and magnitude below 9e15, as an Int: `3`, `3.0` and
    /// `3e0` all read as 3 (ids and lengths in tokenizer files).
    var integralValue: Int? {
        if let i = intValue { return i > -9_000_000_000_000_000 && i < 9_000_000_000_000_000 ? i : nil }
        guard case .number(let text) = self, let d = Double(text), d.rounded() == d, abs(d) < 9.0e15 else { return nil }
        return Int(d)
    }
}
