// Pure-Swift gzip (RFC 1952) and DEFLATE (RFC 1951) decompression.
//
// No C libraries: the inflater reads the input through a 64-bit bit buffer over an
// UnsafeRawBufferPointer and decodes Huffman codes with two-level lookup tables
// (10-bit root for literal/length codes, 8-bit root for distance codes), so one table
// lookup usually decodes one symbol. Every input is checked: malformed or truncated
// streams throw `CompressionError`, they never trap or read out of bounds.

import Foundation

// MARK: - Errors

/// A malformed, truncated or corrupted gzip/DEFLATE stream.
public struct CompressionError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The data does not start with the gzip magic bytes 1f 8b, or the header is malformed.
        case notGzip
        /// The gzip header is well formed but uses something this decoder does not support
        /// (a compression method other than DEFLATE, reserved flag bits).
        case unsupported
        /// The stream ends before it is complete.
        case truncated
        /// A block header has BTYPE = 3 (reserved).
        case invalidBlockType
        /// A stored block's LEN and NLEN fields disagree.
        case invalidStoredLength
        /// Code lengths that do not form a valid prefix code (over-subscribed or incomplete
        /// Huffman tables, too many symbols, a repeat with nothing to repeat, no end-of-block code).
        case invalidCodeLengths
        /// A code that is not assigned to any symbol (or a reserved symbol) was read.
        case invalidCode
        /// A back-reference reaches before the start of the output.
        case distanceTooFar
        /// The CRC-32 in the gzip trailer (or the header CRC-16) does not match the data.
        case crcMismatch
        /// The ISIZE field in the gzip trailer does not match the decompressed size.
        case sizeMismatch
        /// Bytes after the last gzip member that are neither another member nor zero padding.
        case trailingGarbage
    }

    public let kind: Kind
    public let message: String
    /// Byte offset in the compressed input near which the problem was found.
    public let offset: Int

    public init(_ kind: Kind, _ message: String, offset: Int) {
        self.kind = kind
        self.message = message
        self.offset = offset
    }

    public var description: String { "\(message) (at compressed byte offset \(offset))" }
}

// MARK: - Public API

public enum Gzip {
    /// Whether `data` starts with the gzip magic bytes (1f 8b).
    public static func isGzip(_ data: Data) -> Bool {
        data.count >= 2 && data[data.startIndex] == 0x1F && data[data.startIndex + 1] == 0x8B
    }

    /// Decompresses a gzip file: one or more concatenated members, each with its CRC-32 and
    /// length verified. Zero bytes after the last member are ignored.
    public static func decompress(_ data: Data) throws -> Data {
        let output = OutputBuffer()
        try data.withUnsafeBytes { raw in try decompressMembers(raw, into: output) }
        return output.takeData()
    }

    /// Decompresses `data` and passes the result to `body` without copying it into a `Data`
    /// or an `Array` first. The buffer is only valid during the call.
    public static func withDecompressed<R>(_ data: Data, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let output = OutputBuffer()
        try data.withUnsafeBytes { raw in try decompressMembers(raw, into: output) }
        // Keep the buffer alive until `body` returns (ARC may otherwise end it after `.ptr`).
        return try withExtendedLifetime(output) {
            try body(UnsafeRawBufferPointer(start: output.ptr, count: output.count))
        }
    }

    /// Inflates a raw DEFLATE stream (no gzip or zlib wrapper: a zip member's data).
    public static func inflateRaw(_ bytes: [UInt8], expectedSize: Int) throws -> [UInt8] {
        let output = OutputBuffer()
        output.reserve(min(expectedSize, bytes.count * 1032 + 1024))
        try bytes.withUnsafeBytes { raw in
            var inflater = Inflater(raw, start: 0)
            _ = try inflater.run(into: output)
        }
        return withExtendedLifetime(output) { Array(UnsafeRawBufferPointer(start: output.ptr, count: output.count)) }
    }

    /// Decompresses gzip data to a byte array.
    public static func decompressBytes(_ data: Data) throws -> [UInt8] {
        try withDecompressed(data) { Array($0) }
    }

    /// CRC-32 (ISO-HDLC, the gzip/zlib/PNG polynomial 0xEDB88320). Pass a previous result as
    /// `seed` to continue a running checksum: `crc32(b, seed: crc32(a)) == crc32(a + b)`.
    public static func crc32(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        CRC32.update(seed, bytes)
    }

    /// CRC-32 of a byte sequence (see `crc32(_:seed:)` for raw buffers).
    public static func crc32<Bytes: Sequence>(_ bytes: Bytes, seed: UInt32 = 0) -> UInt32 where Bytes.Element == UInt8 {
        if let crc = bytes.withContiguousStorageIfAvailable({ CRC32.update(seed, UnsafeRawBufferPointer($0)) }) {
            return crc
        }
        return Array(bytes).withUnsafeBytes { CRC32.update(seed, $0) }
    }

    static func decompressMembers(_ input: UnsafeRawBufferPointer, into output: OutputBuffer) throws {
        let n = input.count
        guard n >= 2, input[0] == 0x1F, input[1] == 0x8B else {
            throw CompressionError(.notGzip, "not gzip data: expected magic bytes 1f 8b, found \(hexPrefix(input))", offset: 0)
        }
        // Capacity hint from the last member's ISIZE (mod 2^32), bounded by the maximum
        // DEFLATE expansion ratio so a lying trailer cannot force a huge allocation.
        if n >= 18 {
            let isize = Int(readLE32(input, n - 4))
            output.reserve(min(isize, n * 1032 + 1024))
        }
        var pos = 0
        var member = 0
        while true {
            let start = output.count
            pos = try parseHeader(input, pos, member: member)
            var inflater = Inflater(input, start: pos)
            pos = try inflater.run(into: output)
            guard pos + 8 <= n else {
                throw CompressionError(.truncated, "truncated gzip stream: member \(member + 1) is missing its 8-byte CRC-32/ISIZE trailer", offset: n)
            }
            let expectedCRC = readLE32(input, pos)
            let expectedSize = readLE32(input, pos + 4)
            let produced = output.count - start
            let crc = CRC32.update(0, UnsafeRawBufferPointer(start: output.ptr + start, count: produced))
            guard crc == expectedCRC else {
                throw CompressionError(.crcMismatch, "gzip CRC-32 mismatch in member \(member + 1): trailer says \(hex32(expectedCRC)), data has \(hex32(crc))", offset: pos)
            }
            guard UInt32(truncatingIfNeeded: produced) == expectedSize else {
                throw CompressionError(.sizeMismatch, "gzip size mismatch in member \(member + 1): trailer says \(expectedSize) bytes (mod 2^32), decompressed \(produced)", offset: pos + 4)
            }
            pos += 8
            member += 1
            // Skip zero padding (as gzip and Python do); anything else must be another member.
            while pos < n && input[pos] == 0 { pos += 1 }
            if pos == n { return }
            guard pos + 1 < n, input[pos] == 0x1F, input[pos + 1] == 0x8B else {
                throw CompressionError(.trailingGarbage, "\(n - pos) bytes of trailing garbage after gzip member \(member)", offset: pos)
            }
        }
    }

    /// Parses a member header starting at `pos`; returns the offset of the DEFLATE data.
    static func parseHeader(_ input: UnsafeRawBufferPointer, _ start: Int, member: Int) throws -> Int {
        let n = input.count
        func need(_ k: Int, _ pos: Int, _ what: String) throws {
            if pos + k > n {
                throw CompressionError(.truncated, "truncated gzip header of member \(member + 1): missing \(what)", offset: n)
            }
        }
        try need(10, start, "fixed 10-byte header")
        guard input[start] == 0x1F, input[start + 1] == 0x8B else {
            throw CompressionError(.notGzip, "not gzip data: expected magic bytes 1f 8b, found \(hexPrefix(UnsafeRawBufferPointer(rebasing: input[start...])))", offset: start)
        }
        guard input[start + 2] == 8 else {
            throw CompressionError(.unsupported, "unsupported gzip compression method \(input[start + 2]) (only 8 = DEFLATE exists)", offset: start + 2)
        }
        let flags = input[start + 3]
        guard flags & 0xE0 == 0 else {
            throw CompressionError(.unsupported, "gzip header has reserved flag bits set (flags = \(hex8(flags)))", offset: start + 3)
        }
        var pos = start + 10
        if flags & 0x04 != 0 { // FEXTRA
            try need(2, pos, "FEXTRA length")
            let xlen = Int(input[pos]) | Int(input[pos + 1]) << 8
            try need(2 + xlen, pos, "FEXTRA field (\(xlen) bytes)")
            pos += 2 + xlen
        }
        for (bit, name) in [(UInt8(0x08), "file name"), (UInt8(0x10), "comment")] where flags & bit != 0 {
            while pos < n && input[pos] != 0 { pos += 1 }
            try need(1, pos, "end of zero-terminated \(name)")
            pos += 1
        }
        if flags & 0x02 != 0 { // FHCRC
            try need(2, pos, "header CRC-16")
            let stored = UInt16(input[pos]) | UInt16(input[pos + 1]) << 8
            let actual = UInt16(truncatingIfNeeded: CRC32.update(0, UnsafeRawBufferPointer(rebasing: input[start..<pos])))
            guard stored == actual else {
                throw CompressionError(.crcMismatch, "gzip header CRC-16 mismatch in member \(member + 1): header says \(hex16(stored)), header bytes have \(hex16(actual))", offset: pos)
            }
            pos += 2
        }
        return pos
    }
}

public enum Deflate {
    /// Decompresses a raw DEFLATE stream (no zlib or gzip wrapper). Bytes after the final
    /// block are ignored.
    public static func inflate(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8] {
        try inflate(bytes, consumed: nil)
    }

    /// As `inflate(_:)`, also reporting how many input bytes the stream occupied
    /// (up to and including the byte holding the final block's last bit).
    public static func inflate(_ bytes: UnsafeRawBufferPointer, consumed: UnsafeMutablePointer<Int>?) throws -> [UInt8] {
        let output = OutputBuffer()
        var inflater = Inflater(bytes, start: 0)
        let end = try inflater.run(into: output)
        consumed?.pointee = end
        return output.toArray()
    }

    /// Decompresses a raw DEFLATE stream held in a `Data` or byte array.
    public static func inflate<Bytes: ContiguousBytes>(_ bytes: Bytes) throws -> [UInt8] {
        try bytes.withUnsafeBytes { try inflate($0) }
    }
}

// MARK: - Output buffer

/// Growable byte buffer the inflater writes into. Always keeps `slack` spare bytes past
/// `capacity` so match copies may write 8 bytes at a time past the end of a match.
final class OutputBuffer {
    static let slack = 16
    private(set) var ptr: UnsafeMutablePointer<UInt8>
    var count = 0
    private(set) var capacity: Int

    init(capacity: Int = 1 << 16) {
        self.capacity = max(capacity, 1024)
        ptr = .allocate(capacity: self.capacity + OutputBuffer.slack)
    }

    deinit { ptr.deallocate() }

    func reserve(_ minimum: Int) {
        guard minimum > capacity else { return }
        let newPtr = UnsafeMutablePointer<UInt8>.allocate(capacity: minimum + OutputBuffer.slack)
        newPtr.update(from: ptr, count: count)
        ptr.deallocate()
        ptr = newPtr
        capacity = minimum
    }

    /// Makes room for at least `extra` more bytes, growing geometrically.
    func grow(toFit extra: Int) {
        let needed = count + extra
        guard needed > capacity else { return }
        reserve(max(needed, capacity + capacity / 2 + 1024))
    }

    /// Hands the bytes to a `Data` without copying; the buffer is empty afterwards.
    func takeData() -> Data {
        if count == 0 { return Data() }
        let data = Data(bytesNoCopy: ptr, count: count, deallocator: .custom { p, _ in p.deallocate() })
        capacity = 1024
        ptr = .allocate(capacity: capacity + OutputBuffer.slack)
        count = 0
        return data
    }

    func toArray() -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buf, initialized in
            if count > 0 { buf.baseAddress!.update(from: ptr, count: count) }
            initialized = count
        }
    }
}

// MARK: - Inflater

/// Table entry layout (UInt32):
///   bits 0..3   number of bits to consume for this code (in the root table or subtable)
///   bits 4..7   extra bits for length/distance symbols; subtable index bits for links
///   bits 8..11  flags
///   bits 16..31 value: literal byte, length/distance base, code-length symbol, or subtable offset
private let entryLiteral: UInt32 = 0x100
private let entryEndOfBlock: UInt32 = 0x200
private let entrySubtable: UInt32 = 0x400
private let entryInvalid: UInt32 = 0x800

private let litlenRootBits = 10
private let distRootBits = 8
private let codelenRootBits = 7
// Sizes that suffice for any complete code (zlib's ENOUGH_LENS/ENOUGH_DISTS for these
// root sizes are 1332 and 402); construction still checks bounds.
private let litlenTableCapacity = 2048
private let distTableCapacity = 1024
private let codelenTableCapacity = 128

private let lengthBase: [UInt32] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
                                    35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
private let lengthExtra: [UInt32] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
                                     3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
private let distBase: [UInt32] = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
                                  257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
                                  8193, 12289, 16385, 24577]
private let distExtra: [UInt32] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
                                   7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
private let codelenOrder: [Int] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

/// Per-symbol entry templates (everything but the code length).
private let litlenInfo: [UInt32] = (0..<288).map { s in
    if s < 256 { return UInt32(s) << 16 | entryLiteral }
    if s == 256 { return entryEndOfBlock }
    if s < 286 { return lengthBase[s - 257] << 16 | lengthExtra[s - 257] << 4 }
    return entryInvalid // 286, 287: reserved
}
private let distInfo: [UInt32] = (0..<32).map { s in
    s < 30 ? distBase[s] << 16 | distExtra[s] << 4 : entryInvalid // 30, 31: reserved
}
private let codelenInfo: [UInt32] = (0..<19).map { UInt32($0) << 16 | entryLiteral }

enum TableKind { case litlen, dist, codelen }

/// One DEFLATE stream decoder: the bit reader state over the input (tables live in `run`).
struct Inflater {
    let input: UnsafeRawPointer
    let inputCount: Int
    /// Next input byte to load into the bit buffer.
    var inPos: Int
    /// Zero bytes appended to the bit buffer after the input ran out.
    var overrun = 0
    var bitbuf: UInt64 = 0
    var bitcount = 0

    init(_ bytes: UnsafeRawBufferPointer, start: Int) {
        // An empty buffer may have no base address; nothing is ever read through it then.
        input = bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 0x10)!
        inputCount = bytes.count
        inPos = start
    }

    /// Byte offset of the first input byte not yet consumed (counting a partly used byte as
    /// consumed). May exceed `inputCount` if zero padding was consumed.
    var consumedBytes: Int { inPos + overrun - bitcount / 8 }

    /// Bits consumed from the start of the buffer (may exceed the input if padding was used).
    var consumedBits: Int { (inPos + overrun) * 8 - bitcount }

    func error(_ kind: CompressionError.Kind, _ message: String) -> CompressionError {
        // A bad code decoded from (or peeked into) the zero padding past the end of the
        // input means the real problem is that the stream was cut short.
        if consumedBits > inputCount * 8 || (overrun > 0 && consumedBits + 15 > inputCount * 8) {
            return CompressionError(.truncated, "truncated DEFLATE stream: input ends before the final block is complete", offset: inputCount)
        }
        return CompressionError(kind, message, offset: min(consumedBytes, inputCount))
    }

    /// Decodes the whole stream, appending to `output`. Returns the input offset just past
    /// the final block (byte aligned).
    mutating func run(into output: OutputBuffer) throws -> Int {
        guard inPos < inputCount else {
            throw CompressionError(.truncated, "truncated DEFLATE stream: no data", offset: inputCount)
        }
        let tables = UnsafeMutablePointer<UInt32>.allocate(capacity: litlenTableCapacity + distTableCapacity + codelenTableCapacity)
        defer { tables.deallocate() }
        let litTable = tables
        let distTable = tables + litlenTableCapacity
        let codelenTable = distTable + distTableCapacity
        let lengths = UnsafeMutablePointer<UInt8>.allocate(capacity: 320)
        defer { lengths.deallocate() }
        let memberStart = output.count
        var fixedBuilt = false

        while true {
            try refill()
            let header = Int(bitbuf & 7)
            bitbuf >>= 3; bitcount -= 3
            let final = header & 1 != 0
            switch header >> 1 {
            case 0:
                try storedBlock(into: output)
            case 1:
                if !fixedBuilt {
                    for i in 0..<144 { lengths[i] = 8 }
                    for i in 144..<256 { lengths[i] = 9 }
                    for i in 256..<280 { lengths[i] = 7 }
                    for i in 280..<288 { lengths[i] = 8 }
                    try buildTable(lengths, 288, .litlen, litTable)
                    for i in 0..<32 { lengths[i] = 5 }
                    try buildTable(lengths, 32, .dist, distTable)
                    fixedBuilt = true
                }
                try huffmanBlock(litTable, distTable, output, memberStart)
            case 2:
                fixedBuilt = false
                try readDynamicTables(lengths, litTable, distTable, codelenTable)
                try huffmanBlock(litTable, distTable, output, memberStart)
            default:
                throw error(.invalidBlockType, "invalid DEFLATE block type 3 (reserved)")
            }
            if final { break }
        }
        // Discard the partial byte, then give back whole bytes still in the buffer.
        bitbuf >>= UInt64(bitcount & 7)
        bitcount &= ~7
        let end = consumedBytes
        if end > inputCount {
            throw CompressionError(.truncated, "truncated DEFLATE stream: input ends inside the final block", offset: inputCount)
        }
        return end
    }

    // MARK: Bit reader

    /// Ensures at least 56 bits are buffered. Past the end of input, zero bytes are fed in;
    /// more than 8 of those (one full buffer) means real data was missing.
    @inline(__always)
    mutating func refill() throws {
        if inPos + 8 <= inputCount {
            bitbuf |= UInt64(littleEndian: input.loadUnaligned(fromByteOffset: inPos, as: UInt64.self)) &<< UInt64(bitcount)
            inPos += (63 - bitcount) >> 3
            bitcount |= 56
        } else {
            try refillSlow()
        }
    }

    @inline(never)
    mutating func refillSlow() throws {
        while bitcount <= 56 {
            if inPos < inputCount {
                bitbuf |= UInt64(input.load(fromByteOffset: inPos, as: UInt8.self)) &<< UInt64(bitcount)
                inPos += 1
            } else {
                overrun += 1
                if overrun > 8 {
                    throw CompressionError(.truncated, "truncated DEFLATE stream: input ends before the final block is complete", offset: inputCount)
                }
            }
            bitcount += 8
        }
    }

    @inline(__always)
    mutating func bits(_ n: Int) -> Int {
        let v = Int(truncatingIfNeeded: bitbuf) & ((1 << n) - 1)
        bitbuf >>= UInt64(n); bitcount -= n
        return v
    }

    // MARK: Blocks

    mutating func storedBlock(into output: OutputBuffer) throws {
        bitbuf >>= UInt64(bitcount & 7)
        bitcount &= ~7
        try refill()
        let len = bits(16)
        let nlen = bits(16)
        // Hand the whole bytes still buffered back to the input and copy directly.
        let pos = consumedBytes
        guard pos <= inputCount else {
            throw CompressionError(.truncated, "truncated DEFLATE stream: stored block header cut off", offset: inputCount)
        }
        guard len == ~nlen & 0xFFFF else {
            throw CompressionError(.invalidStoredLength, "invalid stored block lengths: LEN \(len) does not match NLEN \(nlen)", offset: pos - 4)
        }
        inPos = pos; overrun = 0; bitbuf = 0; bitcount = 0
        guard len <= inputCount - pos else {
            throw CompressionError(.truncated, "truncated DEFLATE stream: stored block of \(len) bytes has only \(inputCount - pos) left", offset: inputCount)
        }
        output.grow(toFit: len)
        (output.ptr + output.count).update(from: input.advanced(by: pos).assumingMemoryBound(to: UInt8.self), count: len)
        output.count += len
        inPos += len
    }

    mutating func readDynamicTables(_ lengths: UnsafeMutablePointer<UInt8>, _ litTable: UnsafeMutablePointer<UInt32>,
                                    _ distTable: UnsafeMutablePointer<UInt32>, _ codelenTable: UnsafeMutablePointer<UInt32>) throws {
        try refill()
        let hlit = bits(5) + 257
        let hdist = bits(5) + 1
        let hclen = bits(4) + 4
        guard hlit <= 286, hdist <= 30 else {
            throw error(.invalidCodeLengths, "invalid dynamic block header: \(hlit) literal/length codes (max 286), \(hdist) distance codes (max 30)")
        }
        for i in 0..<19 { lengths[i] = 0 }
        for i in 0..<hclen {
            if bitcount < 3 { try refill() }
            lengths[codelenOrder[i]] = UInt8(bits(3))
        }
        try buildTable(lengths, 19, .codelen, codelenTable)

        let total = hlit + hdist
        var i = 0
        while i < total {
            try refill() // 7-bit code + up to 7 extra bits
            let e = codelenTable[Int(truncatingIfNeeded: bitbuf) & ((1 << codelenRootBits) - 1)]
            if e & entryInvalid != 0 {
                throw error(.invalidCodeLengths, "invalid code in the code-length sequence of a dynamic block")
            }
            _ = bits(Int(e & 15))
            let sym = Int(e >> 16)
            if sym < 16 {
                lengths[i] = UInt8(sym); i += 1
                continue
            }
            var value: UInt8 = 0
            var repeatCount: Int
            switch sym {
            case 16:
                guard i > 0 else {
                    throw error(.invalidCodeLengths, "invalid dynamic block: code length repeat (16) with no previous length")
                }
                value = lengths[i - 1]
                repeatCount = 3 + bits(2)
            case 17: repeatCount = 3 + bits(3)
            default: repeatCount = 11 + bits(7)
            }
            guard repeatCount <= total - i else {
                throw error(.invalidCodeLengths, "invalid dynamic block: code length repeat runs past the \(total) lengths")
            }
            for _ in 0..<repeatCount { lengths[i] = value; i += 1 }
        }
        guard lengths[256] != 0 else {
            throw error(.invalidCodeLengths, "invalid dynamic block: no code for end-of-block")
        }
        try buildTable(lengths, hlit, .litlen, litTable)
        try buildTable(lengths + hlit, hdist, .dist, distTable)
    }

    /// Builds a canonical-Huffman decode table for `n` symbols with the given code lengths
    /// (each 0...15). Codes longer than the root size go to subtables appended after the root.
    func buildTable(_ lengths: UnsafePointer<UInt8>, _ n: Int, _ kind: TableKind, _ table: UnsafeMutablePointer<UInt32>) throws {
        let rootBits: Int, capacity: Int, name: String
        switch kind {
        case .litlen: rootBits = litlenRootBits; capacity = litlenTableCapacity; name = "literal/length"
        case .dist: rootBits = distRootBits; capacity = distTableCapacity; name = "distance"
        case .codelen: rootBits = codelenRootBits; capacity = codelenTableCapacity; name = "code-length"
        }
        let rootSize = 1 << rootBits
        try withUnsafeTemporaryAllocation(of: Int.self, capacity: 16 * 3 + 320) { scratch in
            let count = scratch.baseAddress!
            let offsets = count + 16
            let nextCode = offsets + 16
            let sorted = nextCode + 16
            for l in 0..<16 { count[l] = 0 }
            for s in 0..<n { count[Int(lengths[s])] += 1 }
            count[0] = 0
            var left = 1
            var maxLen = 0
            for l in 1..<16 {
                left <<= 1
                left -= count[l]
                if left < 0 {
                    throw error(.invalidCodeLengths, "invalid \(name) code lengths: over-subscribed Huffman code")
                }
                if count[l] > 0 { maxLen = l }
            }
            for i in 0..<rootSize { table[i] = entryInvalid }
            if maxLen == 0 { return } // no codes at all: any use is an invalid code
            // Incomplete codes are only legal as a single 1-bit code (as zlib allows).
            if left > 0 && (kind == .codelen || maxLen != 1) {
                throw error(.invalidCodeLengths, "invalid \(name) code lengths: incomplete Huffman code")
            }
            offsets[1] = 0
            for l in 1..<15 { offsets[l + 1] = offsets[l] + count[l] }
            for s in 0..<n where lengths[s] != 0 {
                let l = Int(lengths[s])
                sorted[offsets[l]] = s
                offsets[l] += 1
            }
            var code = 0
            nextCode[0] = 0
            for l in 1..<16 {
                code = (code + count[l - 1]) << 1
                nextCode[l] = code
            }
            let numCodes = offsets[15] // after the loop above, offsets[15] is one past the end
            let info: [UInt32]
            switch kind {
            case .litlen: info = litlenInfo
            case .dist: info = distInfo
            case .codelen: info = codelenInfo
            }
            // `count` now tracks codes of each length not yet placed (for subtable sizing).
            var tableEnd = rootSize
            var currentPrefix = -1
            var subBase = 0
            var subBits = 0
            for i in 0..<numCodes {
                let s = sorted[i]
                let len = Int(lengths[s])
                let c = nextCode[len]
                nextCode[len] += 1
                let template = info[s]
                if len <= rootBits {
                    var j = reverseBits(c, len)
                    let step = 1 << len
                    let e = template | UInt32(len)
                    while j < rootSize { table[j] = e; j += step }
                } else {
                    let prefix = c >> (len - rootBits)
                    if prefix != currentPrefix {
                        // New subtable: as many index bits as needed to hold the remaining
                        // codes that share this root prefix.
                        var bitsNeeded = len - rootBits
                        var room = 1 << bitsNeeded
                        while bitsNeeded + rootBits < maxLen {
                            room -= count[bitsNeeded + rootBits]
                            if room <= 0 { break }
                            bitsNeeded += 1
                            room <<= 1
                        }
                        guard tableEnd + (1 << bitsNeeded) <= capacity, tableEnd < 1 << 16 else {
                            throw error(.invalidCodeLengths, "invalid \(name) code lengths: Huffman table too large")
                        }
                        currentPrefix = prefix
                        subBase = tableEnd
                        subBits = bitsNeeded
                        tableEnd += 1 << subBits
                        for k in subBase..<tableEnd { table[k] = entryInvalid }
                        table[reverseBits(prefix, rootBits)] = UInt32(subBase) << 16 | entrySubtable | UInt32(subBits) << 4 | UInt32(rootBits)
                    }
                    let subLen = len - rootBits
                    guard subLen <= subBits else {
                        throw error(.invalidCodeLengths, "invalid \(name) code lengths")
                    }
                    var j = reverseBits(c & ((1 << subLen) - 1), subLen)
                    let step = 1 << subLen
                    let e = template | UInt32(subLen)
                    while j < 1 << subBits { table[subBase + j] = e; j += step }
                }
                count[len] -= 1
            }
        }
    }

    /// Decodes literal/length and distance codes until end-of-block. The hot loop keeps the
    /// bit reader and output cursor in locals (stored back before any call or throw).
    mutating func huffmanBlock(_ lit: UnsafeMutablePointer<UInt32>, _ dist: UnsafeMutablePointer<UInt32>,
                               _ output: OutputBuffer, _ memberStart: Int) throws {
        let litMask = (1 << litlenRootBits) - 1
        let distMask = (1 << distRootBits) - 1
        let input = self.input
        let fastEnd = inputCount - 8
        var bitbuf = self.bitbuf
        var bitcount = self.bitcount
        var inPos = self.inPos
        var out = output.ptr
        var outPos = output.count
        var outLimit = output.capacity - 258 // room for one full match past outPos
        defer {
            self.bitbuf = bitbuf; self.bitcount = bitcount; self.inPos = inPos
            output.count = outPos
        }
        while true {
            if outPos > outLimit {
                output.count = outPos
                output.grow(toFit: 258 + 1)
                out = output.ptr
                outLimit = output.capacity - 258
            }
            // 56+ bits cover the longest literal/length code + extra + distance code + extra (48).
            if bitcount < 48 {
                if inPos <= fastEnd {
                    bitbuf |= UInt64(littleEndian: input.loadUnaligned(fromByteOffset: inPos, as: UInt64.self)) &<< UInt64(bitcount)
                    inPos &+= (63 &- bitcount) >> 3
                    bitcount |= 56
                } else {
                    self.bitbuf = bitbuf; self.bitcount = bitcount; self.inPos = inPos
                    try refillSlow()
                    bitbuf = self.bitbuf; bitcount = self.bitcount; inPos = self.inPos
                }
            }
            var e = lit[Int(truncatingIfNeeded: bitbuf) & litMask]
            if e & entrySubtable != 0 {
                let rb = Int(e & 15)
                bitbuf &>>= UInt64(rb); bitcount &-= rb
                e = lit[Int(e >> 16) &+ (Int(truncatingIfNeeded: bitbuf) & ((1 &<< Int((e >> 4) & 15)) &- 1))]
            }
            let n = Int(e & 15)
            bitbuf &>>= UInt64(n); bitcount &-= n
            if e & entryLiteral != 0 {
                out[outPos] = UInt8(truncatingIfNeeded: e >> 16)
                outPos &+= 1
                // The buffer still holds >= 33 bits: a second literal needs no refill.
                let e2 = lit[Int(truncatingIfNeeded: bitbuf) & litMask]
                if e2 & entryLiteral != 0 {
                    let n2 = Int(e2 & 15)
                    bitbuf &>>= UInt64(n2); bitcount &-= n2
                    out[outPos] = UInt8(truncatingIfNeeded: e2 >> 16)
                    outPos &+= 1
                }
                continue
            }
            if e & (entryEndOfBlock | entryInvalid) != 0 {
                if e & entryEndOfBlock != 0 { return }
                self.bitbuf = bitbuf; self.bitcount = bitcount; self.inPos = inPos
                throw error(.invalidCode, "invalid literal/length code")
            }
            // Length.
            let lenExtra = Int((e >> 4) & 15)
            let length = Int(e >> 16) &+ (Int(truncatingIfNeeded: bitbuf) & ((1 &<< lenExtra) &- 1))
            bitbuf &>>= UInt64(lenExtra); bitcount &-= lenExtra
            // Distance.
            var d = dist[Int(truncatingIfNeeded: bitbuf) & distMask]
            if d & entrySubtable != 0 {
                let rb = Int(d & 15)
                bitbuf &>>= UInt64(rb); bitcount &-= rb
                d = dist[Int(d >> 16) &+ (Int(truncatingIfNeeded: bitbuf) & ((1 &<< Int((d >> 4) & 15)) &- 1))]
            }
            if d & entryInvalid != 0 {
                self.bitbuf = bitbuf; self.bitcount = bitcount; self.inPos = inPos
                throw error(.invalidCode, "invalid distance code")
            }
            let dn = Int(d & 15)
            bitbuf &>>= UInt64(dn); bitcount &-= dn
            let distExtra = Int((d >> 4) & 15)
            let distance = Int(d >> 16) &+ (Int(truncatingIfNeeded: bitbuf) & ((1 &<< distExtra) &- 1))
            bitbuf &>>= UInt64(distExtra); bitcount &-= distExtra
            guard distance <= outPos &- memberStart else {
                self.bitbuf = bitbuf; self.bitcount = bitcount; self.inPos = inPos
                throw error(.distanceTooFar, "invalid distance \(distance): only \(outPos - memberStart) bytes of output so far")
            }
            copyMatch(out + outPos, distance, length)
            outPos &+= length
        }
    }
}

/// Copies `length` bytes from `distance` bytes back. The output buffer has at least
/// `OutputBuffer.slack` spare bytes past the match, so 8-byte chunks may overshoot.
@inline(__always)
private func copyMatch(_ dst: UnsafeMutablePointer<UInt8>, _ distance: Int, _ length: Int) {
    let src = dst - distance
    if distance >= 8 {
        let d = UnsafeMutableRawPointer(dst)
        let s = UnsafeRawPointer(src)
        var i = 0
        repeat {
            d.storeBytes(of: s.loadUnaligned(fromByteOffset: i, as: UInt64.self), toByteOffset: i, as: UInt64.self)
            i += 8
        } while i < length
    } else if distance == 1 {
        dst.update(repeating: src.pointee, count: length)
    } else {
        for i in 0..<length { dst[i] = src[i] }
    }
}

@inline(__always)
private func reverseBits(_ code: Int, _ length: Int) -> Int {
    Int(truncatingIfNeeded: UInt32(truncatingIfNeeded: code).bitReversed() >> UInt32(32 - length))
}

private extension UInt32 {
    func bitReversed() -> UInt32 {
        var v = self
        v = ((v >> 1) & 0x5555_5555) | ((v & 0x5555_5555) << 1)
        v = ((v >> 2) & 0x3333_3333) | ((v & 0x3333_3333) << 2)
        v = ((v >> 4) & 0x0F0F_0F0F) | ((v & 0x0F0F_0F0F) << 4)
        return v.byteSwapped
    }
}

// MARK: - CRC-32

enum CRC32 {
    /// Slicing-by-8 tables: table[k][b] is the CRC of byte b followed by k zero bytes.
    static let table: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            t[i] = c
        }
        for i in 0..<256 {
            for k in 1..<8 {
                let prev = t[(k - 1) * 256 + i]
                t[k * 256 + i] = (prev >> 8) ^ t[Int(prev & 0xFF)]
            }
        }
        return t
    }()

    static func update(_ seed: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return seed }
        return table.withUnsafeBufferPointer { tp in
            let t = tp.baseAddress!
            var crc = ~seed
            var p = 0
            let n = bytes.count
            while p + 8 <= n {
                let w = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: p, as: UInt64.self))
                let lo = UInt32(truncatingIfNeeded: w) ^ crc
                let hi = UInt32(truncatingIfNeeded: w >> 32)
                crc = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                    ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                    ^ t[1 * 256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                p += 8
            }
            while p < n {
                crc = (crc >> 8) ^ t[Int((crc ^ UInt32(base.load(fromByteOffset: p, as: UInt8.self))) & 0xFF)]
                p += 1
            }
            return ~crc
        }
    }
}

// MARK: - Helpers

private func readLE32(_ b: UnsafeRawBufferPointer, _ i: Int) -> UInt32 {
    UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
}

private func hex8(_ v: UInt8) -> String { "0x" + String(v, radix: 16, uppercase: false) }
private func hex16(_ v: UInt16) -> String { String(format: "0x%04x", v) }
private func hex32(_ v: UInt32) -> String { String(format: "0x%08x", v) }

private func hexPrefix(_ b: UnsafeRawBufferPointer) -> String {
    if b.isEmpty { return "no data (empty input)" }
    return b.prefix(4).map { String(format: "%02x", $0) }.joined(separator: " ")
}
