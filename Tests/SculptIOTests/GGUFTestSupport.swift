import Foundation
import XCTest
@testable import SculptIO
import SculptCore

/// Builds GGUF bytes field by field, including invalid files the writer refuses to make.
struct RawGGUF {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func str(_ s: String) {
        u64(UInt64(s.utf8.count))
        bytes.append(contentsOf: Array(s.utf8))
    }
    mutating func pad(to alignment: Int) {
        while bytes.count % alignment != 0 { bytes.append(0) }
    }

    /// A tensor info entry.
    struct Info {
        var name: String
        var ne: [UInt64]
        var type: UInt32
        var offset: UInt64
        var nDims: UInt32? = nil
    }

    /// magic, version, counts, key/values given as (key, type, payload writer), tensor infos,
    /// padding to `alignment`, then `dataBytes` bytes of data (a ramp).
    static func file(magic: String = "GGUF", version: UInt32 = 3, tensorCount: UInt64? = nil, kvCount: UInt64? = nil,
                     kvs: [(String, UInt32, (inout RawGGUF) -> Void)] = [], infos: [Info] = [],
                     alignment: Int = 32, dataBytes: Int = 0) -> [UInt8] {
        var r = RawGGUF()
        r.bytes.append(contentsOf: Array(magic.utf8))
        r.u32(version)
        r.u64(tensorCount ?? UInt64(infos.count))
        r.u64(kvCount ?? UInt64(kvs.count))
        for (key, type, payload) in kvs {
            r.str(key)
            r.u32(type)
            payload(&r)
        }
        for i in infos {
            r.str(i.name)
            r.u32(i.nDims ?? UInt32(i.ne.count))
            for d in i.ne { r.u64(d) }
            r.u32(i.type)
            r.u64(i.offset)
        }
        if dataBytes > 0 {
            r.pad(to: alignment)
            for k in 0..<dataBytes { r.u8(UInt8(truncatingIfNeeded: k &* 37 &+ 11)) }
        }
        return r.bytes
    }
}

/// Asserts that `body` throws a GGUFError whose one-line description contains every fragment.
func assertGGUFError(_ fragments: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected a GGUFError containing \(fragments)", file: file, line: line)
    } catch let e as GGUFError {
        let text = e.description
        XCTAssertFalse(text.contains("\n"), "description has more than one line: \(text)", file: file, line: line)
        for f in fragments {
            XCTAssertTrue(text.contains(f), "\"\(text)\" does not contain \"\(f)\"", file: file, line: line)
        }
    } catch {
        XCTFail("expected a GGUFError, got \(error)", file: file, line: line)
    }
}

/// Little-endian f16 bytes of `v`.
func f16Bytes(_ v: Float) -> [UInt8] {
    let b = floatToFloat16Bits(v)
    return [UInt8(b & 0xFF), UInt8(b >> 8)]
}

/// Dequantizes raw blocks of `type` into an array.
func dequantized(_ type: GGMLType, _ bytes: [UInt8], count: Int) throws -> [Float] {
    var out = [Float](repeating: .nan, count: count)
    try bytes.withUnsafeBytes { src in
        try out.withUnsafeMutableBufferPointer { dst in
            try dequantizeRow(type: type, from: src.baseAddress!, count: count, into: dst.baseAddress!)
        }
    }
    return out
}

/// Quantizes Floats into raw blocks of `type`.
func quantized(_ type: GGMLType, _ values: [Float]) throws -> [UInt8] {
    var out = [UInt8](repeating: 0xAA, count: type.rowBytes(values.count) ?? 0)
    try values.withUnsafeBufferPointer { src in
        try out.withUnsafeMutableBytes { dst in
            try quantizeRow(type: type, from: src.baseAddress!, count: values.count, into: dst.baseAddress!)
        }
    }
    return out
}
