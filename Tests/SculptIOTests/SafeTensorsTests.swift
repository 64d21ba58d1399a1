import Foundation
import XCTest
import SculptCore
@testable import SculptIO
import SculptTestSupport

/// A file with an arbitrary JSON header (padded to 8) and `dataCount` data bytes (0, 1, 2, ...).
private func safeTensorsBytes(header: String, dataCount: Int, headerLength: UInt64? = nil) -> [UInt8] {
    var json = Array(header.utf8)
    while json.count % 8 != 0 { json.append(0x20) }
    var out: [UInt8] = []
    withUnsafeBytes(of: (headerLength ?? UInt64(json.count)).littleEndian) { out.append(contentsOf: $0) }
    out += json
    out += (0..<dataCount).map { UInt8(truncatingIfNeeded: $0) }
    return out
}

final class SafeTensorsTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("sculpt-safetensors-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    private func write(_ bytes: [UInt8], _ name: String = "bad.safetensors") throws -> String {
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    /// Asserts that opening `bytes` as a file throws a one-line error naming the file and
    /// containing `fragments`; returns the description.
    @discardableResult
    private func assertRejects(_ bytes: [UInt8], _ fragments: String..., line: UInt = #line) throws -> String {
        let name = "case\(line).safetensors"
        let path = try write(bytes, name)
        do {
            _ = try SafeTensorsFile(path: path)
            XCTFail("accepted a malformed file", line: line)
            return ""
        } catch let error as SafeTensorsError {
            let text = error.description
            XCTAssertTrue(text.contains(name), "error does not name the file: \(text)", line: line)
            XCTAssertFalse(text.contains("\n"), "error is not one line: \(text)", line: line)
            for f in fragments { XCTAssertTrue(text.contains(f), "\"\(f)\" not in: \(text)", line: line) }
            // The in-memory parser reports the same error.
            let again = bytes.withUnsafeBytes { buf in
                Result { try SafeTensorsFile.parseHeader(bytes: buf, fileName: path) }
            }
            if case .failure(let e as SafeTensorsError) = again {
                if case .fileTooSmall = error {} else { XCTAssertEqual(e, error, line: line) }
            } else {
                XCTFail("parseHeader accepted what the file reader rejected", line: line)
            }
            return text
        }
    }

    // MARK: Round trips

    func testRoundTripAllDTypes() throws {
        var w = SafeTensorsWriter()
        let f32: [Float] = [1, -2.5, .pi, 0, -0.0, 1e-30, 3e38, .infinity]
        let halfExact: [Float] = [1, -2, 0.5, 65504, 0x1p-24, -0x1p-14, 0, 1.5, 3.25]  // representable in F16
        let bf16Exact: [Float] = [1, -2, 0.5, Float(3e38).bf16Rounded, (0x1.8p-130 as Float).bf16Rounded, 0x1p-133]
        try w.add(name: "f32", floats: f32, shape: [2, 4])
        try w.add(name: "f16.odd", floats: halfExact, shape: [9], as: .f16)  // 18 bytes: misaligns what follows
        try w.add(name: "f16.z", floats: Array(halfExact.prefix(4)), shape: [2, 2], as: .f16)
        try w.add(name: "bf16", floats: bf16Exact, shape: [3, 2], as: .bf16)
        try w.add(name: "f64", floats: [1.25, -3], shape: [2], as: .f64)
        try w.add(name: "i64", int64s: [Int64.min, -1, 0, 1, Int64.max], shape: [5])
        try w.add(name: "i32", int32s: [Int32.min, -7, 0, 9, Int32.max], shape: [5])
        try w.add(name: "u8", dtype: .u8, shape: [2, 2], bytes: [0, 1, 200, 255])
        try w.add(name: "i8", dtype: .i8, shape: [3], bytes: [0x80, 0xFF, 0x7F])
        try w.add(name: "i16", dtype: .i16, shape: [2], bytes: Data([0x00, 0x80, 0xFF, 0x7F]))
        try w.add(name: "u16", dtype: .u16, shape: [1], bytes: [0xFF, 0xFF])
        try w.add(name: "u32", dtype: .u32, shape: [1], bytes: [0xFF, 0xFF, 0xFF, 0xFF])
        try w.add(name: "u64.small", dtype: .u64, shape: [1], bytes: [5, 0, 0, 0, 0, 0, 0, 0])
        try w.add(name: "bool", dtype: .bool, shape: [3], bytes: [1, 0, 1])
        try w.add(name: "scalar", floats: [42], shape: [])
        try w.add(name: "empty", floats: [], shape: [0, 3])
        try w.add(name: "f8", dtype: .f8e4m3, shape: [2], bytes: [0x38, 0xB8])

        let url = dir.appendingPathComponent("all.safetensors")
        try w.write(to: url, metadata: ["format": "pt", "note": "quote \" and \\ and é"])
        let file = try SafeTensorsFile(url: url)

        XCTAssertEqual(file.names, w.names)
        XCTAssertEqual(file.names, file.names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        XCTAssertEqual(file.metadata, ["format": "pt", "note": "quote \" and \\ and é"])
        XCTAssertEqual(file.header.dataStart % 8, 0, "header must be padded to a multiple of 8")

        // Contiguous, in sorted-name order, covering the whole data buffer.
        var offset = 0
        for info in file.tensors {
            XCTAssertEqual(info.dataOffsets.lowerBound, offset, info.name)
            offset = info.dataOffsets.upperBound
        }
        XCTAssertEqual(file.header.dataStart + offset, file.fileSize)

        XCTAssertEqual(try file.info("f32").shape, [2, 4])
        XCTAssertEqual(try file.info("f32").dtype, .f32)
        XCTAssertEqual(try file.floats("f32").map(\.bitPattern), f32.map(\.bitPattern))
        XCTAssertEqual(try file.floats("f16.odd").map(\.bitPattern), halfExact.map(\.bitPattern))
        XCTAssertEqual(try file.floats("f16.z"), Array(halfExact.prefix(4)))
        XCTAssertEqual(try file.floats("bf16").map(\.bitPattern), bf16Exact.map(\.bitPattern))
        XCTAssertEqual(try file.floats("f64"), [1.25, -3])
        XCTAssertEqual(try file.info("f64").dtype, .f64)
        XCTAssertEqual(try file.int64s("i64"), [Int64.min, -1, 0, 1, Int64.max])
        XCTAssertEqual(try file.int32s("i32"), [Int32.min, -7, 0, 9, Int32.max])
        XCTAssertEqual(try file.int64s("i32"), [Int64(Int32.min), -7, 0, 9, Int64(Int32.max)])
        XCTAssertEqual(try file.int64s("u8"), [0, 1, 200, 255])
        XCTAssertEqual(try file.int32s("u8"), [0, 1, 200, 255])
        XCTAssertEqual(try file.int64s("i8"), [-128, -1, 127])
        XCTAssertEqual(try file.int64s("i16"), [-32768, 32767])
        XCTAssertEqual(try file.int32s("u16"), [65535])
        XCTAssertEqual(try file.int64s("u32"), [4_294_967_295])
        XCTAssertEqual(try file.int64s("u64.small"), [5])
        XCTAssertEqual(try file.int32s("bool"), [1, 0, 1])
        XCTAssertEqual(try file.ints("i32"), [Int(Int32.min), -7, 0, 9, Int(Int32.max)])
        XCTAssertEqual(try file.info("scalar").shape, [])
        XCTAssertEqual(try file.info("scalar").elementCount, 1)
        XCTAssertEqual(try file.floats("scalar"), [42])
        XCTAssertEqual(try file.info("empty").elementCount, 0)
        XCTAssertEqual(try file.floats("empty"), [])
        XCTAssertEqual(try file.rawData("f8"), Data([0x38, 0xB8]))
        XCTAssertEqual(try file.withRawBytes("u8") { Array($0) }, [0, 1, 200, 255])

        // Narrowing that does not fit names the element.
        XCTAssertThrowsError(try file.int32s("i64")) { error in
            XCTAssertEqual(error as? SafeTensorsError,
                           .valueOutOfRange(file: url.path, tensor: "i64", index: 0, target: "Int32"))
            XCTAssertTrue("\(error)".contains("\"i64\""))
        }
        XCTAssertThrowsError(try file.floats("i64")) { error in
            XCTAssertEqual("\(error)", "\(url.path): tensor \"i64\": cannot read I64 as Float")
        }
        XCTAssertThrowsError(try file.int64s("f32"))
        XCTAssertThrowsError(try file.floats("nope")) { error in
            XCTAssertEqual("\(error)", "\(url.path): no tensor named \"nope\"")
        }

        // copyFloats into caller storage, with a size check.
        var storage = [Float](repeating: 0, count: 9)
        try storage.withUnsafeMutableBufferPointer { try file.copyFloats("f16.odd", into: $0) }
        XCTAssertEqual(storage, halfExact)
        var wrong = [Float](repeating: 0, count: 8)
        XCTAssertThrowsError(try wrong.withUnsafeMutableBufferPointer { try file.copyFloats("f16.odd", into: $0) })
    }

    func testHalfPrecisionStorageRoundsToNearestEven() throws {
        var rng = SafeTensorsTestRNG(seed: 11)
        let values = (0..<1001).map { _ in Float(Int(rng.next() % 2_000_001) - 1_000_000) * 1e-3 }
        var w = SafeTensorsWriter()
        try w.add(name: "h", floats: values, shape: [7, 11, 13], as: .f16)
        try w.add(name: "b", floats: values, shape: [1001], as: .bf16)
        let url = dir.appendingPathComponent("rounding.safetensors")
        try w.write(to: url)
        let file = try SafeTensorsFile(url: url)
        XCTAssertEqual(try file.floats("h"), floatsFromFloat16Bits(float16Bits(values)))
        XCTAssertEqual(try file.floats("b"), floatsFromBFloat16Bits(bfloat16Bits(values)))
        XCTAssertEqual(try file.withRawBytes("h") { Array($0.bindMemory(to: UInt16.self)) }, float16Bits(values))
        XCTAssertEqual(file.metadata, ["format": "pt"])
    }

    func testSerializedEqualsWrittenFileAndParsesFromMemory() throws {
        var w = SafeTensorsWriter()
        try w.add(name: "b", int64s: [1, 2, 3], shape: [3])
        try w.add(name: "a", floats: [1, 2], shape: [1, 2], as: .bf16)
        let data = try w.serialized(metadata: [:])
        let url = dir.appendingPathComponent("mem.safetensors")
        try w.write(to: url, metadata: [:])
        XCTAssertEqual(try Data(contentsOf: url), data)
        let header = try data.withUnsafeBytes { try SafeTensorsFile.parseHeader(bytes: $0, fileName: "mem") }
        XCTAssertEqual(header.names, ["a", "b"])
        XCTAssertEqual(header.metadata, [:])
        XCTAssertEqual(header.tensors["a"]?.dataOffsets, 0..<4)
        XCTAssertEqual(header.tensors["b"]?.dataOffsets, 4..<28)
        XCTAssertEqual(header.tensors["b"]?.fileRange, (header.dataStart + 4)..<(header.dataStart + 28))
        let json = String(decoding: data[8..<header.dataStart], as: UTF8.self)
        XCTAssertEqual(json.trimmingCharacters(in: .whitespaces),
                       #"{"a":{"dtype":"BF16","shape":[1,2],"data_offsets":[0,4]},"b":{"dtype":"I64","shape":[3],"data_offsets":[4,28]}}"#)
    }

    func testStreamingProducerAndItsByteCountCheck() throws {
        let count = 3_000_000  // 12 MB, several writer buffers
        var w = SafeTensorsWriter()
        try w.add(name: "big", dtype: .f32, shape: [count]) { emit in
            var chunk = [Float](repeating: 0, count: 100_000)
            var i = 0
            while i < count {
                let n = min(chunk.count, count - i)
                for k in 0..<n { chunk[k] = Float(i + k) }
                try chunk.withUnsafeBytes { try emit(UnsafeRawBufferPointer(rebasing: $0.prefix(n * 4))) }
                i += n
            }
        }
        try w.add(name: "small", floats: [7], shape: [1], as: .f16)
        let url = dir.appendingPathComponent("stream.safetensors")
        try w.write(to: url)
        let file = try SafeTensorsFile(url: url)
        let big = try file.floats("big")
        XCTAssertEqual(big.count, count)
        XCTAssertEqual(big[2_999_999], 2_999_999)
        XCTAssertEqual(big[123_457], 123_457)
        XCTAssertEqual(try file.floats("small"), [7])

        // A producer that under-delivers fails the write and leaves the old file in place.
        var bad = SafeTensorsWriter()
        try bad.add(name: "short", dtype: .f32, shape: [4]) { emit in
            try [Float](repeating: 1, count: 3).withUnsafeBytes { try emit($0) }
        }
        XCTAssertThrowsError(try bad.write(to: url)) { error in
            XCTAssertEqual("\(error)", "\(url.path): tensor \"short\": producer wrote 12 of the 16 bytes of its shape")
        }
        var over = SafeTensorsWriter()
        try over.add(name: "long", dtype: .u8, shape: [2]) { emit in try [UInt8](repeating: 1, count: 3).withUnsafeBytes { try emit($0) } }
        XCTAssertThrowsError(try over.write(to: url))
        XCTAssertEqual(try SafeTensorsFile(url: url).names, ["big", "small"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["stream.safetensors"])
    }

    func testWriterRejectsInconsistentTensors() throws {
        var w = SafeTensorsWriter()
        try w.add(name: "x", floats: [1, 2, 3], shape: [3])
        XCTAssertThrowsError(try w.add(name: "x", floats: [1], shape: [1])) { error in
            XCTAssertEqual("\(error)", "safetensors writer: tensor \"x\": added more than once")
        }
        XCTAssertThrowsError(try w.add(name: "y", floats: [1, 2], shape: [3])) { error in
            XCTAssertEqual("\(error)", "safetensors writer: tensor \"y\": 2 values given for shape [3] × F32, which needs 3 values")
        }
        XCTAssertThrowsError(try w.add(name: "z", dtype: .f16, shape: [2], bytes: [1, 2, 3]))
        XCTAssertThrowsError(try w.add(name: "n", floats: [], shape: [-1, 0]))
        XCTAssertThrowsError(try w.add(name: "o", dtype: .f64, shape: [1 << 40, 1 << 30], bytes: []))
        XCTAssertThrowsError(try w.add(name: "__metadata__", floats: [1], shape: [1]))
        XCTAssertThrowsError(try w.add(name: "", floats: [1], shape: [1]))
        XCTAssertThrowsError(try w.add(name: "i", floats: [1], shape: [1], as: .i32))
        XCTAssertEqual(w.names, ["x"])
    }

    func testNamesWithUnusualCharactersRoundTrip() throws {
        var w = SafeTensorsWriter()
        let names = ["a\"b", "back\\slash", "new\nline", "ünï.cödé", "tab\t", "Z", "_"]
        for (i, n) in names.enumerated() { try w.add(name: n, int32s: [Int32(i)], shape: [1]) }
        let url = dir.appendingPathComponent("names.safetensors")
        try w.write(to: url)
        let file = try SafeTensorsFile(url: url)
        XCTAssertEqual(Set(file.names), Set(names))
        for (i, n) in names.enumerated() { XCTAssertEqual(try file.int32s(n), [Int32(i)]) }
        // Error messages keep control characters out of the line.
        XCTAssertThrowsError(try file.floats("new\nline")) { XCTAssertFalse("\($0)".contains("\n")) }
    }

    func testConcurrentReads() throws {
        var w = SafeTensorsWriter()
        for i in 0..<8 { try w.add(name: "t\(i)", floats: (0..<1000).map { Float($0 * i) }, shape: [1000], as: .bf16) }
        let url = dir.appendingPathComponent("concurrent.safetensors")
        try w.write(to: url)
        let file = try SafeTensorsFile(url: url)
        final class Sums: @unchecked Sendable {
            let lock = NSLock()
            var values = [Float](repeating: -1, count: 64)
        }
        let sums = Sums()
        DispatchQueue.concurrentPerform(iterations: 64) { k in
            let s = (try? file.floats("t\(k % 8)").reduce(0, +)) ?? -1
            sums.lock.lock()
            sums.values[k] = s
            sums.lock.unlock()
        }
        for k in 0..<64 {
            XCTAssertEqual(sums.values[k], Float(499_500 * (k % 8)), accuracy: Float(499_500 * (k % 8)) * 0.01)
        }
    }

    // MARK: Python interoperability

    func testPythonSafetensorsReadsOurFiles() throws {
        let python = ProcessInfo.processInfo.environment["SCULPT_PYTHON"] ?? "/root/venv-torch/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else { throw XCTSkip("no Python at \(python)") }
        var w = SafeTensorsWriter()
        try w.add(name: "w.f32", floats: [1, 2, 3, 4, 5, 6], shape: [2, 3])
        try w.add(name: "w.f16", floats: [0.5, -1.5, 65504], shape: [3], as: .f16)  // odd length: misaligned next
        try w.add(name: "w.g.bf16", floats: [1, -2, 3.5, 1e30], shape: [2, 2], as: .bf16)
        try w.add(name: "ids", int64s: [101, 2023, 102], shape: [1, 3])
        try w.add(name: "mask", dtype: .u8, shape: [3], bytes: [1, 1, 0])
        try w.add(name: "i32", int32s: [-5, 5], shape: [2])
        try w.add(name: "scalar", floats: [2.5], shape: [])
        let url = dir.appendingPathComponent("py.safetensors")
        try w.write(to: url)

        let script = """
        import json, sys
        try:
            import torch
            from safetensors import safe_open
        except Exception as e:
            print("SKIP", e); sys.exit(0)
        out = {}
        with safe_open(sys.argv[1], framework="pt") as f:
            out["__metadata__"] = f.metadata()
            for k in f.keys():
                t = f.get_tensor(k)
                out[k] = [str(t.dtype), list(t.shape), t.double().flatten().tolist()]
        print(json.dumps(out, sort_keys=True))
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", script, url.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: output, as: UTF8.self)
        if text.hasPrefix("SKIP") { throw XCTSkip("Python safetensors/torch unavailable: \(text)") }
        XCTAssertEqual(process.terminationStatus, 0, text)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: output) as? [String: Any], text)
        func entry(_ k: String) -> (String, [Int], [Double])? {
            guard let a = json[k] as? [Any], a.count == 3 else { return nil }
            return (a[0] as? String ?? "", a[1] as? [Int] ?? [], a[2] as? [Double] ?? [])
        }
        XCTAssertEqual(json["__metadata__"] as? [String: String], ["format": "pt"])
        XCTAssertEqual(entry("w.f32")?.0, "torch.float32")
        XCTAssertEqual(entry("w.f32")?.1, [2, 3])
        XCTAssertEqual(entry("w.f32")?.2, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(entry("w.f16")?.0, "torch.float16")
        XCTAssertEqual(entry("w.f16")?.2, [0.5, -1.5, 65504])
        XCTAssertEqual(entry("w.g.bf16")?.0, "torch.bfloat16")
        XCTAssertEqual(entry("w.g.bf16")?.2.prefix(3), [1, -2, 3.5])
        let big = Double(bfloat16BitsToFloat(floatToBFloat16Bits(1e30)))
        XCTAssertEqual(entry("w.g.bf16")?.2.last ?? 0, big, accuracy: big * 1e-12)  // exact up to JSON printing
        XCTAssertEqual(entry("ids")?.0, "torch.int64")
        XCTAssertEqual(entry("ids")?.1, [1, 3])
        XCTAssertEqual(entry("ids")?.2, [101, 2023, 102])
        XCTAssertEqual(entry("mask")?.0, "torch.uint8")
        XCTAssertEqual(entry("i32")?.2, [-5, 5])
        XCTAssertEqual(entry("scalar")?.1, [])
        XCTAssertEqual(entry("scalar")?.2, [2.5])
    }

    // MARK: Real checkpoints in ../shared

    func testReadsMiniLMCheckpoint() throws {
        let url = try SharedData.require("models/all-MiniLM-L6-v2/model.safetensors")
        let file = try SafeTensorsFile(url: url)
        XCTAssertEqual(file.names.count, 104)
        XCTAssertEqual(file.metadata["format"], "pt")
        let word = try file.info("embeddings.word_embeddings.weight")
        XCTAssertEqual(word.shape, [30522, 384])
        XCTAssertEqual(word.dtype, .f32)
        XCTAssertEqual(word.byteCount, 30522 * 384 * 4)
        XCTAssertEqual(try file.info("encoder.layer.5.attention.self.query.weight").shape, [384, 384])
        XCTAssertEqual(try file.info("encoder.layer.0.intermediate.dense.weight").shape, [1536, 384])
        XCTAssertEqual(try file.info("pooler.dense.bias").shape, [384])
        XCTAssertEqual(try file.int64s("embeddings.position_ids"), (0..<512).map(Int64.init))

        let start = DispatchTime.now().uptimeNanoseconds
        let weights = try file.floats("embeddings.word_embeddings.weight")
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        print("read 47 MB of word embeddings in \(String(format: "%.3f", seconds)) s")
        XCTAssertEqual(weights.count, 30522 * 384)
        XCTAssertTrue(weights.allSatisfy(\.isFinite))
        let gamma = try file.floats("embeddings.LayerNorm.weight")
        XCTAssertEqual(gamma.count, 384)
        XCTAssertGreaterThan(gamma.reduce(0, +) / 384, 0.1)  // LayerNorm scales are around 1

        // Every tensor lies inside the file and they tile the data buffer.
        let total = file.tensors.reduce(0) { $0 + $1.byteCount }
        XCTAssertEqual(file.header.dataStart + total, file.fileSize)
    }

    func testReadsForwardGoldens() throws {
        let url = try SharedData.require("goldens/minilm/forward.safetensors")
        let file = try SafeTensorsFile(url: url)
        XCTAssertEqual(file.names, ["attention_mask", "input_ids", "last_hidden_state", "sentence_embedding"])
        let ids = try file.info("input_ids")
        XCTAssertEqual(ids.dtype, .i64)
        let batch = ids.shape[0], seq = ids.shape[1]
        XCTAssertEqual(try file.info("last_hidden_state").shape, [batch, seq, 384])
        XCTAssertEqual(try file.info("sentence_embedding").shape, [batch, 384])
        let inputIDs = try file.int32s("input_ids")
        let mask = try file.int64s("attention_mask")
        XCTAssertEqual(inputIDs.first, 101, "BERT sequences start with [CLS]")
        XCTAssertTrue(mask.allSatisfy { $0 == 0 || $0 == 1 })
        let emb = try file.floats("sentence_embedding")
        for b in 0..<batch {
            let norm = emb[(b * 384)..<((b + 1) * 384)].reduce(0) { $0 + $1 * $1 }.squareRoot()
            XCTAssertEqual(norm, 1, accuracy: 1e-4, "sentence embeddings are L2-normalised")
        }
        let backward = try SharedData.require("goldens/minilm/backward.safetensors")
        XCTAssertTrue(try SafeTensorsFile(url: backward).names.contains("grad.encoder.layer.0.attention.self.query.weight"))
    }

    // MARK: Malformed files

    private let good = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"I64","shape":[1],"data_offsets":[16,24]}}"#

    func testValidHandmadeFileParses() throws {
        let path = try write(safeTensorsBytes(header: good, dataCount: 24))
        let file = try SafeTensorsFile(path: path)
        XCTAssertEqual(file.names, ["a", "b"])
        // Leading whitespace and trailing padding around the JSON are fine, and so are
        // tensors whose data is not in name order.
        let loose = #"  {"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#
        XCTAssertEqual(try SafeTensorsFile(path: write(safeTensorsBytes(header: loose, dataCount: 4))).int64s("b"), [2, 3])
        // Empty header object: no tensors.
        XCTAssertEqual(try SafeTensorsFile(path: write(safeTensorsBytes(header: "{}", dataCount: 0))).names, [])
    }

    func testRejectsDataNotCoveredByTensors() throws {
        // As the reference library does: a gap between tensors, bytes after the last one, or
        // data in a file without tensors, each named with its range.
        let gap = #"{"b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"a":{"dtype":"U8","shape":[2],"data_offsets":[10,12]}}"#
        try assertRejects(safeTensorsBytes(header: gap, dataCount: 12), "data bytes [2, 10] are not covered by any tensor", "\"a\"")
        try assertRejects(safeTensorsBytes(header: good, dataCount: 30), "data bytes [24, 30] after the last tensor are not covered")
        try assertRejects(safeTensorsBytes(header: "{}", dataCount: 8), "data bytes [0, 8]")
        // The repo's own writer packs tensors (empty ones included), so what it writes reads back.
        var w = SafeTensorsWriter()
        try w.add(name: "x", floats: [1, 2, 3], shape: [3], as: .f16)
        try w.add(name: "e", floats: [], shape: [0])
        try w.add(name: "i", int64s: [7], shape: [1])
        XCTAssertEqual(try SafeTensorsFile(path: write(Array(w.serialized()))).names, ["e", "i", "x"])
    }

    func testRejectsTruncatedFiles() throws {
        try assertRejects([1, 2, 3, 4, 5], "5 bytes", "shorter than the 8-byte header length")
        try assertRejects([], "0 bytes")
        let full = safeTensorsBytes(header: good, dataCount: 24)
        // Cut inside the header: the length prefix now runs past the end.
        try assertRejects(Array(full.prefix(40)), "header length", "runs past the end of the file")
        // Cut inside the data: tensor "b" no longer fits.
        try assertRejects(Array(full.prefix(full.count - 3)), "tensor \"b\"", "run past the end of the data buffer (21 bytes)")
    }

    func testRejectsBadHeaderLengths() throws {
        try assertRejects(safeTensorsBytes(header: good, dataCount: 24, headerLength: 1 << 40), "exceeds the 100000000-byte limit")
        try assertRejects(safeTensorsBytes(header: good, dataCount: 24, headerLength: UInt64.max), "header length 18446744073709551615")
        try assertRejects(safeTensorsBytes(header: good, dataCount: 24, headerLength: 5000), "header length 5000 runs past the end")
        try assertRejects(safeTensorsBytes(header: good, dataCount: 24, headerLength: 0), "not valid JSON")
        // A length that cuts the JSON short.
        try assertRejects(safeTensorsBytes(header: good, dataCount: 24, headerLength: 64), "not valid JSON")
    }

    func testRejectsNonJSONHeaders() throws {
        try assertRejects(safeTensorsBytes(header: "hello world", dataCount: 0), "invalid header: not valid JSON")
        try assertRejects(safeTensorsBytes(header: #"{"a": }"#, dataCount: 0), "not valid JSON")
        try assertRejects(safeTensorsBytes(header: "[1, 2]", dataCount: 0), "the JSON header is an array, not an object")
        try assertRejects(safeTensorsBytes(header: "\"x\"", dataCount: 0), "is a string, not an object")
        try assertRejects(safeTensorsBytes(header: good + "x", dataCount: 24), "unexpected data after the JSON value")
        var bytes = safeTensorsBytes(header: #"{"a\#u{FF}":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, dataCount: 1)
        bytes[8 + 3] = 0xFF  // replace the first byte of "ÿ" with an invalid UTF-8 byte
        try assertRejects(bytes, "invalid UTF-8")
        try assertRejects(safeTensorsBytes(header: String(repeating: "[", count: 10_000), dataCount: 0), "nesting deeper than")
        try assertRejects(safeTensorsBytes(header: #"{"\ud800":{}}"#, dataCount: 0), "surrogate")
    }

    func testRejectsMalformedTensorEntries() throws {
        func entry(_ body: String) -> [UInt8] { safeTensorsBytes(header: "{\"t.w\":\(body)}", dataCount: 16) }
        try assertRejects(entry("5"), "tensor \"t.w\": entry is an integer, not an object")
        try assertRejects(entry(#"{"shape":[4],"data_offsets":[0,16]}"#), "tensor \"t.w\": missing \"dtype\"")
        try assertRejects(entry(#"{"dtype":"F32","data_offsets":[0,16]}"#), "tensor \"t.w\": missing \"shape\"")
        try assertRejects(entry(#"{"dtype":"F32","shape":[4]}"#), "tensor \"t.w\": missing \"data_offsets\"")
        try assertRejects(entry(#"{"dtype":32,"shape":[4],"data_offsets":[0,16]}"#), "dtype is an integer, not a string")
        try assertRejects(entry(#"{"dtype":"F17","shape":[4],"data_offsets":[0,16]}"#), "tensor \"t.w\": unknown dtype \"F17\"")
        try assertRejects(entry(#"{"dtype":"f32","shape":[4],"data_offsets":[0,16]}"#), "unknown dtype \"f32\"")
        try assertRejects(entry(#"{"dtype":"F32","shape":4,"data_offsets":[0,16]}"#), "shape is an integer, not an array")
        try assertRejects(entry(#"{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}"#), "shape dimension 0 is negative (-4)")
        try assertRejects(entry(#"{"dtype":"F32","shape":[2, 2.0],"data_offsets":[0,16]}"#), "shape dimension 1 is 2.0, not an integer")
        try assertRejects(entry(#"{"dtype":"F32","shape":[4e0],"data_offsets":[0,16]}"#), "not an integer")
        try assertRejects(entry(#"{"dtype":"F32","shape":["4"],"data_offsets":[0,16]}"#), "shape dimension 0 is a string, not an integer")
        try assertRejects(entry(#"{"dtype":"F32","shape":[true],"data_offsets":[0,16]}"#), "a boolean, not an integer")
        try assertRejects(entry(#"{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,16]}"#), "is too large")
        try assertRejects(entry(#"{"dtype":"F32","shape":[4],"data_offsets":[0]}"#), "data_offsets must be an array [begin, end]")
        try assertRejects(entry(#"{"dtype":"F32","shape":[4],"data_offsets":[0,16,32]}"#), "data_offsets must be an array")
        try assertRejects(entry(#"{"dtype":"F32","shape":[4],"data_offsets":{"0":16}}"#), "data_offsets must be an array")
        try assertRejects(entry(#"{"dtype":"F32","shape":[4],"data_offsets":[-1,15]}"#), "data_offsets begin is negative")
        try assertRejects(entry(#"{"dtype":"F32","shape":[0],"data_offsets":[16,0]}"#), "data_offsets [16, 0] end before they begin")
        try assertRejects(entry(#"{"dtype":"F32","shape":[8],"data_offsets":[0,32]}"#), "data_offsets [0, 32] run past the end of the data buffer (16 bytes)")
    }

    func testRejectsSizeMismatchWithPreciseMessage() throws {
        let header = #"{"encoder.layer.0.attention.self.query.weight":{"dtype":"F32","shape":[384,384],"data_offsets":[0,100]}}"#
        let bytes = safeTensorsBytes(header: header, dataCount: 100)
        let path = try write(bytes, "model.safetensors")
        XCTAssertThrowsError(try SafeTensorsFile(path: path)) { error in
            XCTAssertEqual("\(error)", "\(path): tensor \"encoder.layer.0.attention.self.query.weight\": data_offsets [0, 100] do not match shape [384, 384] × F32 (589824 bytes)")
        }
        // The same bytes parsed in memory under a bare file name.
        XCTAssertThrowsError(try bytes.withUnsafeBytes { try SafeTensorsFile.parseHeader(bytes: $0, fileName: "model.safetensors") }) { error in
            XCTAssertEqual("\(error)", "model.safetensors: tensor \"encoder.layer.0.attention.self.query.weight\": data_offsets [0, 100] do not match shape [384, 384] × F32 (589824 bytes)")
        }
        try assertRejects(safeTensorsBytes(header: #"{"x":{"dtype":"BF16","shape":[3],"data_offsets":[0,8]}}"#, dataCount: 8),
                          "tensor \"x\": data_offsets [0, 8] do not match shape [3] × BF16 (6 bytes)")
    }

    func testRejectsShapeProductOverflowWithoutTrapping() throws {
        try assertRejects(safeTensorsBytes(header: #"{"huge":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}"#, dataCount: 16),
                          "tensor \"huge\": shape [4294967296, 4294967296] has too many elements")
        try assertRejects(safeTensorsBytes(header: #"{"huge":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,16]}}"#, dataCount: 16),
                          "× F64 is too large")
        try assertRejects(safeTensorsBytes(header: #"{"huge":{"dtype":"U8","shape":[9223372036854775807],"data_offsets":[0,16]}}"#, dataCount: 16),
                          "do not match")
        // A zero dimension makes the product 0 even next to huge ones.
        XCTAssertEqual(try SafeTensorsFile(path: write(safeTensorsBytes(
            header: #"{"z":{"dtype":"F32","shape":[0,9223372036854775807],"data_offsets":[0,0]}}"#, dataCount: 0))).info("z").elementCount, 0)
    }

    func testRejectsOverlappingTensors() throws {
        let overlap = #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#
        try assertRejects(safeTensorsBytes(header: overlap, dataCount: 16), "tensor \"b\": data_offsets [8, 16] overlap tensor \"a\" at [0, 16]")
        let same = #"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#
        try assertRejects(safeTensorsBytes(header: same, dataCount: 4), "overlap tensor \"a\"")
        // Contained in an earlier, longer range but not overlapping its immediate predecessor.
        let nested = #"{"a":{"dtype":"U8","shape":[10],"data_offsets":[0,10]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},"c":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}}"#
        try assertRejects(safeTensorsBytes(header: nested, dataCount: 10), "overlap tensor \"a\"")
        // Empty tensors may sit anywhere.
        let empties = #"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"e":{"dtype":"U8","shape":[0],"data_offsets":[2,2]}}"#
        XCTAssertEqual(try SafeTensorsFile(path: write(safeTensorsBytes(header: empties, dataCount: 4))).names, ["a", "e"])
    }

    func testRejectsBadMetadataAndDuplicates() throws {
        try assertRejects(safeTensorsBytes(header: #"{"__metadata__":["pt"]}"#, dataCount: 0), "__metadata__ is an array, not an object of strings")
        try assertRejects(safeTensorsBytes(header: #"{"__metadata__":{"format":1}}"#, dataCount: 0), "__metadata__ value for \"format\" is an integer, not a string")
        try assertRejects(safeTensorsBytes(header: #"{"__metadata__":{},"__metadata__":{}}"#, dataCount: 0), "__metadata__ appears more than once")
        let dup = #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#
        try assertRejects(safeTensorsBytes(header: dup, dataCount: 2), "tensor \"a\": appears more than once")
        XCTAssertEqual(try SafeTensorsFile(path: write(safeTensorsBytes(header: #"{"__metadata__":null}"#, dataCount: 0))).metadata, [:])
    }

    func testRejectsNonFiles() throws {
        XCTAssertThrowsError(try SafeTensorsFile(path: dir.appendingPathComponent("missing.safetensors").path)) { error in
            XCTAssertTrue("\(error)".contains("missing.safetensors: cannot open safetensors file: No such file"), "\(error)")
        }
        XCTAssertThrowsError(try SafeTensorsFile(path: dir.path)) { error in
            XCTAssertTrue("\(error)".contains("not a regular file"), "\(error)")
        }
    }
}

private extension Float {
    var bf16Rounded: Float { bfloat16BitsToFloat(floatToBFloat16Bits(self)) }
}

/// A tiny seeded generator (SafeTensorsTestRNG64) for the IO tests.
struct SafeTensorsTestRNG {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }
}
