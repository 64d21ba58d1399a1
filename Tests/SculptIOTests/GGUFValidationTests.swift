#if canImport(SculptTestSupport)
import SculptTestSupport
#endif
import Foundation
import XCTest
@testable import SculptIO
import SculptCore

/// Every validation class of the reader: each malformed file is refused with a one-line
/// GGUFError that names the file and the field, key or tensor at fault.
final class GGUFValidationTests: XCTestCase {
    private let file = "model.gguf"

    private func open(_ bytes: [UInt8]) throws -> GGUFFile { try GGUFFile(bytes: bytes, name: file) }

    private func f32Info(_ name: String = "x", ne: [UInt64] = [8, 2], offset: UInt64 = 0) -> RawGGUF.Info {
        RawGGUF.Info(name: name, ne: ne, type: 0, offset: offset)
    }

    /// A small valid file: one string key and one 8×2 F32 tensor (64 bytes of data).
    private func valid() -> [UInt8] {
        RawGGUF.file(kvs: [("general.architecture", 8, { $0.str("llama") })], infos: [f32Info()], dataBytes: 64)
    }

    func testTheBaselineIsValid() throws {
        let f = try open(valid())
        XCTAssertEqual(f.version, 3)
        XCTAssertEqual(f["general.architecture"]?.string, "llama")
        XCTAssertEqual(f.tensorInfo("x")?.shape, [2, 8])
        XCTAssertEqual(try f.tensor("x").count, 16)
        // Version 2 has the same layout.
        var v2 = valid()
        v2[4] = 2
        XCTAssertEqual(try open(v2).version, 2)
    }

    func testFromDiskNamesThePath() throws {
        let dir = temporaryDirectory()
        let url = dir.appendingPathComponent("disk.gguf")
        try Data(valid()).write(to: url)
        XCTAssertEqual(try GGUFFile(path: url.path).tensors.count, 1)
        try Data(valid().prefix(30)).write(to: url)
        assertGGUFError([url.path, "tensor count 1 cannot fit in the 6 bytes after the header"]) { _ = try GGUFFile(path: url.path) }
        try Data().write(to: url)
        assertGGUFError([url.path, "truncated: magic"]) { _ = try GGUFFile(path: url.path) }
        assertGGUFError([dir.path + "/none.gguf", "cannot open"]) { _ = try GGUFFile(path: dir.path + "/none.gguf") }
        assertGGUFError([dir.path, "not a regular file"]) { _ = try GGUFFile(path: dir.path) }
    }

    func testTruncatedAtEveryCutPoint() throws {
        let bytes = valid()
        for cut in 0..<bytes.count {
            assertGGUFError([file]) { _ = try open(Array(bytes.prefix(cut))) }
        }
        assertGGUFError([file, "truncated: version needs 4 bytes at offset 4"]) { _ = try open(Array(bytes.prefix(6))) }
        assertGGUFError([file, "tensor count 1 cannot fit in the 2 bytes"]) { _ = try open(Array(bytes.prefix(26))) }
        let metadataOnly = RawGGUF.file(kvs: [("general.architecture", 8, { $0.str("llama") })])
        assertGGUFError([file, "truncated: metadata key #0 (string of 20 bytes) needs 20 bytes at offset 32 but the file has 37 bytes"]) {
            _ = try open(Array(metadataOnly.prefix(37)))
        }
        assertGGUFError([file, "truncated: metadata key \"general.architecture\" value length needs 8 bytes at offset 56"]) {
            _ = try open(Array(metadataOnly.prefix(60)))
        }
        assertGGUFError([file, "tensor \"x\"", "data [", "runs past the end of the file"]) { _ = try open(Array(bytes.dropLast())) }
    }

    func testWrongMagicAndVersions() throws {
        assertGGUFError([file, "not a GGUF file (magic \"GGML\")"]) { _ = try open(RawGGUF.file(magic: "GGML")) }
        assertGGUFError([file, "not a GGUF file (magic \"\\x00\\x01"]) { _ = try open([0, 1, 2, 3, 4, 5, 6, 7]) }
        assertGGUFError([file, "GGUF version 1 is not supported"]) { _ = try open(RawGGUF.file(version: 1)) }
        assertGGUFError([file, "unsupported GGUF version 4"]) { _ = try open(RawGGUF.file(version: 4)) }
        assertGGUFError([file, "big-endian"]) { _ = try open(RawGGUF.file(version: 3 << 24)) }
    }

    func testAbsurdCounts() throws {
        assertGGUFError([file, "tensor count 1152921504606846976 cannot fit"]) { _ = try open(RawGGUF.file(tensorCount: 1 << 60)) }
        assertGGUFError([file, "metadata count 18446744073709551615 cannot fit"]) { _ = try open(RawGGUF.file(kvCount: .max)) }
        assertGGUFError([file, "array of 1152921504606846976 uint32"]) {
            _ = try open(RawGGUF.file(kvs: [("a.b", 9, { $0.u32(4); $0.u64(1 << 60) })]))
        }
        assertGGUFError([file, "metadata key #0", "string of 1152921504606846976 bytes"]) {
            _ = try open(RawGGUF.file(kvs: [("", 8, { _ in })]).prefix(24) + {
                var r = RawGGUF()
                r.u64(1 << 60)
                return r.bytes + [UInt8](repeating: 65, count: 40)
            }())
        }
        assertGGUFError([file, "metadata key \"general.name\" value", "string of 18446744073709551615 bytes"]) {
            _ = try open(RawGGUF.file(kvs: [("general.name", 8, { $0.u64(.max) })]))
        }
        assertGGUFError([file, "tensor \"x\"", "n_dims 5 exceeds"]) {
            _ = try open(RawGGUF.file(infos: [RawGGUF.Info(name: "x", ne: [1, 1, 1, 1, 1], type: 0, offset: 0)]))
        }
    }

    func testBadMetadata() throws {
        assertGGUFError([file, "metadata key \"k\"", "unknown value type 13"]) { _ = try open(RawGGUF.file(kvs: [("k", 13, { $0.u8(0) })])) }
        assertGGUFError([file, "metadata key \"k\"", "unknown array element type 99"]) {
            _ = try open(RawGGUF.file(kvs: [("k", 9, { $0.u32(99); $0.u64(0) })]))
        }
        assertGGUFError([file, "metadata key \"k\"", "bool value 2"]) { _ = try open(RawGGUF.file(kvs: [("k", 7, { $0.u8(2) })])) }
        assertGGUFError([file, "metadata key \"k\"", "appears more than once"]) {
            _ = try open(RawGGUF.file(kvs: [("k", 0, { $0.u8(1) }), ("k", 0, { $0.u8(2) })]))
        }
        assertGGUFError([file, "metadata key #0", "not valid UTF-8"]) {
            var r = RawGGUF()
            r.bytes = Array("GGUF".utf8)
            r.u32(3); r.u64(0); r.u64(1)
            r.u64(2); r.u8(0xC3); r.u8(0x28); r.u32(0); r.u8(1)
            _ = try open(r.bytes)
        }
        // Invalid UTF-8 in a string value is replaced (vocabularies may hold such bytes) ...
        let lenient = RawGGUF.file(kvs: [("v", 8, { $0.u64(3); $0.u8(0x41); $0.u8(0xC3); $0.u8(0x28) })])
        XCTAssertEqual(try open(lenient)["v"]?.string, "A\u{FFFD}(")
        // ... but not in a tensor name.
        var badName = RawGGUF()
        badName.bytes = Array("GGUF".utf8)
        badName.u32(3); badName.u64(1); badName.u64(0)
        badName.u64(1); badName.u8(0xFF); badName.u32(1); badName.u64(1); badName.u32(0); badName.u64(0)
        assertGGUFError([file, "tensor #0", "not valid UTF-8"]) { _ = try open(badName.bytes + [UInt8](repeating: 0, count: 40)) }
        // Arrays nested too deeply.
        let deep = RawGGUF.file(kvs: [("deep", 9, { r in
            for _ in 0..<9 { r.u32(9); r.u64(1) }
            r.u32(0); r.u64(0)
        })])
        assertGGUFError([file, "metadata key \"deep\"", "nested deeper than 8"]) { _ = try open(deep) }
        let ok = RawGGUF.file(kvs: [("nest", 9, { r in
            for _ in 0..<7 { r.u32(9); r.u64(1) }
            r.u32(0); r.u64(2); r.u8(5); r.u8(6)
        })])
        XCTAssertEqual(try open(ok)["nest"]?.render(limit: 2).contains("[uint8 × 2: 5, 6]"), true)
    }

    func testAlignment() throws {
        assertGGUFError([file, "general.alignment", "not a power of two"]) {
            _ = try open(RawGGUF.file(kvs: [("general.alignment", 4, { $0.u32(48) })]))
        }
        assertGGUFError([file, "general.alignment", "not a power of two"]) {
            _ = try open(RawGGUF.file(kvs: [("general.alignment", 4, { $0.u32(0) })]))
        }
        assertGGUFError([file, "general.alignment", "must be a uint32, not string"]) {
            _ = try open(RawGGUF.file(kvs: [("general.alignment", 8, { $0.str("32") })]))
        }
        let f = try open(RawGGUF.file(kvs: [("general.alignment", 4, { $0.u32(8) })], infos: [f32Info(ne: [2]), f32Info("y", ne: [2], offset: 8)],
                                      alignment: 8, dataBytes: 16))
        XCTAssertEqual(f.alignment, 8)
        XCTAssertEqual(f.header.dataOffset % 8, 0)
    }

    func testBadTensorInfos() throws {
        assertGGUFError([file, "tensor \"x\"", "offset 16 is not a multiple of the alignment 32"]) {
            _ = try open(RawGGUF.file(infos: [f32Info(offset: 16)], dataBytes: 128))
        }
        assertGGUFError([file, "tensor \"x\"", "runs past the end of the file"]) {
            _ = try open(RawGGUF.file(infos: [f32Info(offset: 64)], dataBytes: 64))
        }
        assertGGUFError([file, "tensor \"x\"", "out of range"]) {
            _ = try open(RawGGUF.file(infos: [f32Info(offset: UInt64(Int.max) - 31)], dataBytes: 64))
        }
        assertGGUFError([file, "tensor \"x\"", "offset 18446744073709551584 is out of range"]) {
            _ = try open(RawGGUF.file(infos: [f32Info(offset: UInt64.max - 31)], dataBytes: 64))
        }
        assertGGUFError([file, "tensor \"x\"", "unknown quantization type 99"]) {
            _ = try open(RawGGUF.file(infos: [RawGGUF.Info(name: "x", ne: [32], type: 99, offset: 0)], dataBytes: 64))
        }
        assertGGUFError([file, "tensor \"x\"", "unknown quantization type 4"]) {
            _ = try open(RawGGUF.file(infos: [RawGGUF.Info(name: "x", ne: [32], type: 4, offset: 0)], dataBytes: 64))
        }
        assertGGUFError([file, "tensor \"x\"", "overflow"]) {
            _ = try open(RawGGUF.file(infos: [f32Info(ne: [1 << 32, 1 << 32])], dataBytes: 64))
        }
        assertGGUFError([file, "tensor \"x\"", "overflow"]) {
            _ = try open(RawGGUF.file(infos: [f32Info(ne: [1 << 30, 1 << 30, 4])], dataBytes: 64))  // elements fit, bytes do not
        }
        assertGGUFError([file, "tensor \"x\"", "ne[1] = 0 is not a valid dimension"]) {
            _ = try open(RawGGUF.file(infos: [f32Info(ne: [8, 0])], dataBytes: 64))
        }
        assertGGUFError([file, "tensor \"x\"", "ne[0] = 18446744073709551615 is not a valid dimension"]) {
            _ = try open(RawGGUF.file(infos: [f32Info(ne: [.max])], dataBytes: 64))
        }
        assertGGUFError([file, "tensor \"x\"", "appears more than once"]) {
            _ = try open(RawGGUF.file(infos: [f32Info(ne: [8]), f32Info(ne: [8], offset: 32)], dataBytes: 64))
        }
        assertGGUFError([file, "tensor \"q\"", "ne[0] = 48 is not a multiple of the Q4_K block size 256"]) {
            _ = try open(RawGGUF.file(infos: [RawGGUF.Info(name: "q", ne: [48, 2], type: 12, offset: 0)], dataBytes: 512))
        }
        assertGGUFError([file, "tensor \"q\"", "ne[0] = 40 is not a multiple of the Q8_0 block size 32"]) {
            _ = try open(RawGGUF.file(infos: [RawGGUF.Info(name: "q", ne: [40], type: 8, offset: 0)], dataBytes: 512))
        }
        assertGGUFError([file, "tensor \"y\"", "overlaps tensor \"x\""]) {
            _ = try open(RawGGUF.file(infos: [f32Info(ne: [16]), f32Info("y", ne: [8], offset: 32)], dataBytes: 128))
        }
        // The data section must follow the padding.
        let noData = RawGGUF.file(infos: [f32Info(ne: [1])])
        assertGGUFError([file, "truncated: padding before the data section"]) { _ = try open(noData) }
    }

    func testUnsupportedTensorTypeIsReportedOnRead() throws {
        let bytes = RawGGUF.file(infos: [RawGGUF.Info(name: "iq", ne: [256], type: 16, offset: 0)], dataBytes: 66)
        let f = try open(bytes)
        XCTAssertEqual(f.tensorInfo("iq")?.type, .iq2_XXS)
        XCTAssertEqual(try f.rawData("iq").count, 66)
        assertGGUFError([file, "tensor \"iq\"", "IQ2_XXS is not supported"]) { _ = try f.tensor("iq") }
    }

    func testEmptyFileWithoutTensorsNeedsNoDataSection() throws {
        let f = try open(RawGGUF.file())
        XCTAssertTrue(f.tensors.isEmpty)
        XCTAssertTrue(f.metadata.isEmpty)
        XCTAssertEqual(f.fileSize, 24)
    }
}
