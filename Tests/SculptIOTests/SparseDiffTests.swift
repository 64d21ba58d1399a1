import XCTest
import Foundation
import SculptCore
import SculptTestSupport
@testable import SculptIO

final class SparseDiffTests: XCTestCase {
    // |Δ|: a = [0.5, 2, 0, 1], b = [1, 0, 2]; the 1s of a[3] and b[0] tie.
    let base: [String: Tensor] = ["a": Tensor(shape: [2, 2], data: [0, 0, 0, 0]), "b": Tensor(shape: [3], data: [1, 1, 1])]
    let ft: [String: Tensor] = ["a": Tensor(shape: [2, 2], data: [0.5, -2, 0, 1]), "b": Tensor(shape: [3], data: [2, 1, -1])]

    func testGlobalTopKWithTiesAtThreshold() throws {
        let d2 = try SparseDiff.select(base: base, finetuned: ft, density: 2.0 / 7)
        XCTAssertEqual(d2.parts["a"]!.indices, [1]); XCTAssertEqual(d2.parts["b"]!.indices, [2])
        let d3 = try SparseDiff.select(base: base, finetuned: ft, density: 3.0 / 7)
        XCTAssertEqual(d3.parts["a"]!.indices, [1, 3], "the tie between a[3] and b[0] goes to the lower name")
        XCTAssertEqual(d3.parts["a"]!.values, [-2, 1])
        XCTAssertEqual(d3.parts["b"]!.indices, [2]); XCTAssertEqual(d3.parts["b"]!.values, [-2])
        let d4 = try SparseDiff.select(base: base, finetuned: ft, density: 4.0 / 7)
        XCTAssertEqual(d4.parts["a"]!.indices, [1, 3]); XCTAssertEqual(d4.parts["b"]!.indices, [0, 2])
        XCTAssertEqual(try SparseDiff.select(base: base, finetuned: ft, density: 0).count, 0)
        let all = try SparseDiff.select(base: base, finetuned: ft, density: 1)
        XCTAssertEqual(all.count, 7)
        XCTAssertEqual(try all.apply(to: base), ft)
        // Ties inside one tensor go to the lower index.
        let t = try SparseDiff.select(base: ["x": Tensor.zeros([5])], finetuned: ["x": Tensor(shape: [5], data: [1, -3, 3, 3, 1])], density: 0.4)
        XCTAssertEqual(t.parts["x"]!.indices, [1, 2])
    }

    func testPerTensorScope() throws {
        let d = try SparseDiff.select(base: base, finetuned: ft, density: 0.5, scope: .perTensor)
        XCTAssertEqual(d.parts["a"]!.indices, [1, 3])
        XCTAssertEqual(d.parts["b"]!.indices, [0, 2], "1.5 rounds to 2")
    }

    func testAllZeroChangesPickTheFirstEntriesAndKeepEveryTensor() throws {
        let d = try SparseDiff.select(base: base, finetuned: base, density: 3.0 / 7)
        XCTAssertEqual(d.parts["a"]!.indices, [0, 1, 2])
        XCTAssertEqual(d.parts["a"]!.values, [0, 0, 0])
        XCTAssertEqual(d.parts["b"]!.indices, [], "covered with no entries, so its mask is all zero")
        XCTAssertEqual(d.masks()["b"]!, Tensor.zeros([3]))
        XCTAssertEqual(d.masks()["a"]!, Tensor(shape: [2, 2], data: [1, 1, 1, 0]))
        XCTAssertEqual(try d.apply(to: base), base)
    }

    func testApplyAndRemoveAreBitExactForFineTuningSizedChanges() throws {
        var rng = SeededRNG(seed: 1)
        var b: [String: Tensor] = [:], f: [String: Tensor] = [:]
        for (name, shape) in [("w1", [17, 9]), ("w2", [33]), ("z", [4, 4])] {
            let t = Tensor.randomNormal(shape, std: 0.05, using: &rng)
            b[name] = t
            f[name] = t + Tensor.randomNormal(shape, std: 1e-3, using: &rng)
        }
        f["z"] = b["z"]!.copy()
        let d = try SparseDiff.select(base: b, finetuned: f, density: 0.1)
        XCTAssertEqual(d.count, Int((0.1 * Double(17 * 9 + 33 + 16)).rounded()))
        XCTAssertEqual(d.inexactEntries(base: b, finetuned: f), 0)
        let applied = try d.apply(to: b)
        for (name, part) in d.parts {
            for i in part.indices { XCTAssertEqual(applied[name]![flat: Int(i)].bitPattern, f[name]![flat: Int(i)].bitPattern) }
        }
        XCTAssertEqual(try d.remove(from: applied), b, "bit-exact")
        // Where ft − base is not representable the round trip is not exact, and that is reported.
        let hb = ["x": Tensor(shape: [2], data: [1, 0.03])], hf = ["x": Tensor(shape: [2], data: [1e-8, 1e-5])]
        let hard = try SparseDiff.select(base: hb, finetuned: hf, density: 1)
        XCTAssertEqual(hard.inexactEntries(base: hb, finetuned: hf), 2)
        let applied2 = try hard.apply(to: hb)
        XCTAssertEqual(applied2["x"]![flat: 1], 1e-5, accuracy: 2e-9, "within an ulp of |d|")
        // Store and restore gives the base back bit-exactly regardless.
        let saved = try hard.values(in: hb)
        XCTAssertEqual(try SparseDiff.overwrite(applied2, with: saved), hb)
    }

    func testCompositionAddsOnTheUnionOfSupports() throws {
        let d1 = SparseDiff(parts: ["a": .init(shape: [4], indices: [1], values: [-2]), "c": .init(shape: [2], indices: [0], values: [5])])
        let d2 = SparseDiff(parts: ["a": .init(shape: [4], indices: [1, 2], values: [1, 3])])
        let c = try d1 + d2
        XCTAssertEqual(c.parts["a"], .init(shape: [4], indices: [1, 2], values: [-1, 3]))
        XCTAssertEqual(c.parts["c"]!.indices, [0])
        let x: [String: Tensor] = ["a": Tensor(shape: [4], data: [1, 2, 3, 4]), "c": Tensor(shape: [2], data: [0, 0])]
        XCTAssertEqual(try c.apply(to: x), try d2.apply(to: try d1.apply(to: x)))
        XCTAssertEqual(try SparseDiff.compose([d1, d2]), c)
        XCTAssertThrowsError(try d1 + SparseDiff(parts: ["a": .init(shape: [5], indices: [], values: [])]))
    }

    func testSaveLoadRoundTripAndValidation() throws {
        var d = try SparseDiff.select(base: base, finetuned: ft, density: 3.0 / 7)
        d.metadata["base_model"] = "sentence-transformers/all-MiniLM-L6-v2"
        let dir = temporaryDirectory()
        let url = dir.appendingPathComponent("diff.safetensors")
        try d.write(to: url)
        let file = try SafeTensorsFile(path: url.path)
        XCTAssertEqual(file.names, ["a.indices", "a.values", "b.indices", "b.values"])
        XCTAssertEqual(try file.info("a.indices").dtype, .i64)
        XCTAssertEqual(try file.info("a.values").dtype, .f32)
        XCTAssertEqual(try SparseDiff.load(from: url), d)

        var w = SafeTensorsWriter()
        try w.add(name: "a.indices", int64s: [2, 1], shape: [2])
        try w.add(name: "a.values", floats: [1, 1], shape: [2])
        try w.write(to: url, metadata: ["sculpt_format": SparseDiff.formatTag, "shapes": #"{"a": [4]}"#])
        XCTAssertThrowsError(try SparseDiff.load(from: url)) { XCTAssertTrue("\($0)".contains("increasing"), "\($0)") }
        try w.write(to: url, metadata: ["shapes": #"{"a": [4]}"#])
        XCTAssertThrowsError(try SparseDiff.load(from: url))
    }

    func testSelectionRejectsMismatchedInputs() {
        XCTAssertThrowsError(try SparseDiff.select(base: base, finetuned: ["a": ft["a"]!], density: 0.5))
        XCTAssertThrowsError(try SparseDiff.select(base: base, finetuned: ["a": ft["a"]!, "b": Tensor.zeros([4])], density: 0.5))
        XCTAssertThrowsError(try SparseDiff.select(base: base, finetuned: ft, density: 1.5))
        XCTAssertThrowsError(try SparseDiff.select(base: base, finetuned: ["a": ft["a"]!, "b": Tensor(shape: [3], data: [.nan, 1, 1])], density: 0.5))
    }
}
