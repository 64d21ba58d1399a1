// The BPE model of Hugging Face `tokenizers` (`models::bpe::BPE`): a word (one pre-token,
// already in byte-level characters) starts as one symbol per character and the pair of
// adjacent symbols with the lowest merge rank is merged, leftmost first, until no pair has a
// merge. Symbols are token ids; the merge table maps an id pair to (rank, merged id).

/// A vocabulary key compared by Unicode scalars (Swift `String` equality would merge
/// canonically equivalent spellings, which are distinct tokens).
struct BPEExactKey: Hashable, Sendable {
    let string: String

    init(_ string: String) { self.string = string }

    static func == (a: BPEExactKey, b: BPEExactKey) -> Bool { a.string.utf8.elementsEqual(b.string.utf8) }

    func hash(into hasher: inout Hasher) {
        var s = string
        s.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

/// A problem with the model's vocabulary or merges: the JSON field and what is wrong.
struct BPEModelError: Error {
    let field: String
    let message: String
}

struct BPEModel: Sendable {
    /// Token → id for the model vocabulary.
    let vocab: [BPEExactKey: Int32]
    /// id → token; ids are dense, `0..<tokens.count`.
    let tokens: [String]
    /// (left id << 32 | right id) → (rank << 32 | merged id).
    let merges: [UInt64: UInt64]
    /// Ids of the one-character tokens for characters below U+0144 (the byte-level alphabet), -1 if absent.
    private let smallScalarIds: [Int32]
    private let otherScalarIds: [UInt32: Int32]
    let unkId: Int32?
    let fuseUnk: Bool
    /// Ids of `<0x00>` … `<0xFF>` when byte fallback is on and all of them exist.
    private let byteFallbackIds: [Int32]?
    let ignoreMerges: Bool

    static let removed = Int32.min

    /// - Parameters:
    ///   - tokens: the vocabulary, index = id.
    ///   - merges: pairs in rank order; a repeated pair takes its last rank, as in Hugging Face.
    ///   - allowDuplicateTokens: whether a spelling may occur twice (GGUF) instead of failing.
    init(tokens: [String], merges: [(String, String)], unkToken: String?, fuseUnk: Bool, byteFallback: Bool,
         ignoreMerges: Bool, mergesField: String = "model.merges", vocabField: String = "model.vocab",
         allowDuplicateTokens: Bool = false) throws(BPEModelError) {
        var vocab: [BPEExactKey: Int32] = [:]
        vocab.reserveCapacity(tokens.count)
        var small = [Int32](repeating: -1, count: 0x144)
        var other: [UInt32: Int32] = [:]
        for (i, token) in tokens.enumerated() {
            let id = Int32(i)
            // A repeated spelling maps to its last id (llama.cpp's GGUF reader does the same).
            if vocab.updateValue(id, forKey: BPEExactKey(token)) != nil && !allowDuplicateTokens {
                throw BPEModelError(field: vocabField, message: "token \(StrictJSON.displayQuoted(token)) appears twice")
            }
            var it = token.unicodeScalars.makeIterator()
            if let s = it.next(), it.next() == nil {
                if s.value < 0x144 { small[Int(s.value)] = id } else { other[s.value] = id }
            }
        }
        var table: [UInt64: UInt64] = [:]
        table.reserveCapacity(merges.count)
        for (rank, (a, b)) in merges.enumerated() {
            guard let ia = vocab[BPEExactKey(a)], let ib = vocab[BPEExactKey(b)], let im = vocab[BPEExactKey(a + b)] else {
                throw BPEModelError(field: "\(mergesField)[\(rank)]",
                                    message: "merge \(StrictJSON.displayQuoted(a + " " + b)) uses a token that is not in \(vocabField)")
            }
            table[Self.key(ia, ib)] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: im))
        }
        var unkId: Int32? = nil
        if let unkToken {
            guard let id = vocab[BPEExactKey(unkToken)] else {
                throw BPEModelError(field: "model.unk_token", message: "\(StrictJSON.displayQuoted(unkToken)) is not in \(vocabField)")
            }
            unkId = id
        }
        var fallback: [Int32]? = nil
        if byteFallback {
            var ids: [Int32] = []
            for b in 0..<256 {
                let hex = String(b, radix: 16, uppercase: true)
                guard let id = vocab[BPEExactKey("<0x" + (hex.count < 2 ? "0" + hex : hex) + ">")] else { ids = []; break }
                ids.append(id)
            }
            if ids.count == 256 { fallback = ids }
        }
        self.vocab = vocab
        self.tokens = tokens
        self.merges = table
        self.smallScalarIds = small
        self.otherScalarIds = other
        self.unkId = unkId
        self.fuseUnk = fuseUnk
        self.byteFallbackIds = fallback
        self.ignoreMerges = ignoreMerges
    }

    @inline(__always)
    static func key(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }

    @inline(__always)
    private func singleId(_ s: Unicode.Scalar) -> Int32? {
        let v = s.value
        if v < 0x144 {
            let id = smallScalarIds[Int(v)]
            return id >= 0 ? id : nil
        }
        return otherScalarIds[v]
    }

    /// Reusable buffers of one encoding call.
    struct Scratch {
        var ids: [Int32] = []
        var next: [Int32] = []
        var prev: [Int32] = []
        var heap: [UInt64] = []
    }

    /// Appends the ids of the word `text[range]` to `out`.
    func encodeWord(_ text: [Unicode.Scalar], _ range: Range<Int>, into out: inout [Int32], _ scratch: inout Scratch) {
        guard !range.isEmpty else { return }
        if range.count == 1, let id = singleId(text[range.lowerBound]) { out.append(id); return }
        if ignoreMerges {
            var word = String.UnicodeScalarView()
            word.append(contentsOf: text[range])
            if let id = vocab[BPEExactKey(String(word))] { out.append(id); return }
        }
        // Initial symbols, with unknown characters as in `BPE::merge_word`.
        scratch.ids.removeAll(keepingCapacity: true)
        var pendingUnk = false
        for s in text[range] {
            if let id = singleId(s) {
                if pendingUnk, let unk = unkId { scratch.ids.append(unk) }
                pendingUnk = false
                scratch.ids.append(id)
                continue
            }
            if let fallback = byteFallbackIds {
                for b in UTF8.encode(s)! { scratch.ids.append(fallback[Int(b)]) }
                continue
            }
            if unkId != nil {
                if pendingUnk && !fuseUnk { scratch.ids.append(unkId!) }
                pendingUnk = true
            }
        }
        if pendingUnk, let unk = unkId { scratch.ids.append(unk) }
        merge(&scratch)
        var i: Int32 = scratch.ids.isEmpty ? -1 : 0
        while i >= 0 {
            out.append(scratch.ids[Int(i)])
            i = scratch.next[Int(i)]
        }
    }

    /// Merges `scratch.ids` in place; the result is the chain `0, next[0], …`.
    private func merge(_ s: inout Scratch) {
        let n = s.ids.count
        s.next.removeAll(keepingCapacity: true)
        s.prev.removeAll(keepingCapacity: true)
        for i in 0..<n {
            s.next.append(i + 1 < n ? Int32(i + 1) : -1)
            s.prev.append(Int32(i - 1))
        }
        guard n >= 2 else { return }
        s.heap.removeAll(keepingCapacity: true)
        for i in 0..<(n - 1) {
            if let m = merges[Self.key(s.ids[i], s.ids[i + 1])] { heapPush(&s.heap, (m >> 32) << 32 | UInt64(i)) }
        }
        while let top = heapPop(&s.heap) {
            let rank = top >> 32
            let pos = Int(top & 0xFFFF_FFFF)
            let left = s.ids[pos]
            if left == Self.removed { continue }
            let nx = Int(s.next[pos])
            if nx < 0 { continue }
            guard let m = merges[Self.key(left, s.ids[nx])], m >> 32 == rank else { continue }
            s.ids[pos] = Int32(bitPattern: UInt32(truncatingIfNeeded: m))
            s.ids[nx] = Self.removed
            let after = s.next[nx]
            s.next[pos] = after
            if after >= 0 { s.prev[Int(after)] = Int32(pos) }
            let before = s.prev[pos]
            if before >= 0, let m2 = merges[Self.key(s.ids[Int(before)], s.ids[pos])] {
                heapPush(&s.heap, (m2 >> 32) << 32 | UInt64(before))
            }
            if after >= 0, let m3 = merges[Self.key(s.ids[pos], s.ids[Int(after)])] {
                heapPush(&s.heap, (m3 >> 32) << 32 | UInt64(pos))
            }
        }
    }

    @inline(__always)
    private func heapPush(_ h: inout [UInt64], _ v: UInt64) {
        h.append(v)
        var i = h.count - 1
        while i > 0 {
            let parent = (i - 1) >> 1
            if h[parent] <= v { break }
            h[i] = h[parent]
            i = parent
        }
        h[i] = v
    }

    @inline(__always)
    private func heapPop(_ h: inout [UInt64]) -> UInt64? {
        guard let last = h.popLast() else { return nil }
        guard !h.isEmpty else { return last }
        let top = h[0]
        let n = h.count
        var i = 0
        while true {
            let l = 2 * i + 1
            if l >= n { break }
            let r = l + 1
            let c = (r < n && h[r] < h[l]) ? r : l
            if h[c] >= last { break }
            h[i] = h[c]
            i = c
        }
        h[i] = last
        return top
    }
}
