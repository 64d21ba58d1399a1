import XCTest
import Foundation
import SculptCore
@testable import SculptIO

/// `torch.save` state dicts read without Python: a file written by PyTorch 2.15 (float32 with
/// a transposed stride, float16, a view at an offset into a shared storage), and damaged or
/// hostile files refused with a reason.
final class TorchCheckpointTests: XCTestCase {
    /// `torch.save(OrderedDict(...), "adapter_model.bin")` by PyTorch 2.15 (see the test below for the tensors).
    static let torchFile: [String] = [
        "UEsDBAAACAgAAAAAAAAAAAAAAAAAAAAAAAAWAAwAYWRhcHRlcl9tb2RlbC9kYXRhLnBrbEZCCABaWlpaWlpaWoACY2NvbGxlY3Rpb25zCk9yZGVyZWREaWN0",
        "CnEAKVJxAShYPgAAAGJhc2VfbW9kZWwubW9kZWwubW9kZWwubGF5ZXJzLjAuc2VsZl9hdHRuLnFfcHJvai5sb3JhX0Eud2VpZ2h0cQJjdG9yY2guX3V0aWxz",
        "Cl9yZWJ1aWxkX3RlbnNvcl92MgpxAygoWAcAAABzdG9yYWdlcQRjdG9yY2gKRmxvYXRTdG9yYWdlCnEFWAEAAAAwcQZYAwAAAGNwdXEHSwh0cQhRSwBLAksE",
        "hnEJSwRLAYZxColoAClScQt0cQxScQ1YPgAAAGJhc2VfbW9kZWwubW9kZWwubW9kZWwubGF5ZXJzLjAuc2VsZl9hdHRuLnFfcHJvai5sb3JhX0Iud2VpZ2h0",
        "cQ5oAygoaARoBVgBAAAAMXEPaAdLDHRxEFFLAEsGSwKGcRFLAUsGhnESiWgAKVJxE3RxFFJxFVgGAAAAeC5oYWxmcRZoAygoaARjdG9yY2gKSGFsZlN0b3Jh",
        "Z2UKcRdYAQAAADJxGGgHSwN0cRlRSwBLA4VxGksBhXEbiWgAKVJxHHRxHVJxHlgGAAAAeC52aWV3cR9oAygoaARoBVgBAAAAM3EgaAdLD3RxIVFLA0sCSwOG",
        "cSJLA0sBhnEjiWgAKVJxJHRxJVJxJnUuUEsHCBy8xK70AQAA9AEAAFBLAwQAAAgIAAAAAAAAAAAAAAAAAAAAAAAAHQBBAGFkYXB0ZXJfbW9kZWwvLmZvcm1h",
        "dF92ZXJzaW9uRkI9AFpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWloxUEsHCLfv3IMBAAAAAQAA",
        "AFBLAwQAAAgIAAAAAAAAAAAAAAAAAAAAAAAAIAAxAGFkYXB0ZXJfbW9kZWwvLnN0b3JhZ2VfYWxpZ25tZW50RkItAFpaWlpaWlpaWlpaWlpaWlpaWlpaWlpa",
        "WlpaWlpaWlpaWlpaWlpaWlpaWlpaWjY0UEsHCD93cekCAAAAAgAAAFBLAwQAAAgIAAAAAAAAAAAAAAAAAAAAAAAAFwA5AGFkYXB0ZXJfbW9kZWwvYnl0ZW9y",
        "ZGVyRkI1AFpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpabGl0dGxlUEsHCIU94xkGAAAABgAAAFBLAwQAAAgI",
        "AAAAAAAAAAAAAAAAAAAAAAAAFAA4AGFkYXB0ZXJfbW9kZWwvZGF0YS8wRkI0AFpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpa",
        "WlpaWlpaWlpcP8U/UDyWvklxC8C2hBE/odGKvy0Fs796g84+5YhWP1BLBwiqdZYUIAAAACAAAABQSwMEAAAICAAAAAAAAAAAAAAAAAAAAAAAABQAHgBhZGFw",
        "dGVyX21vZGVsL2RhdGEvMUZCGgBaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWkQhOL8YvRi/B09bv6scib8v+hC/zllkvwuDzr7GZzo+meCMP8pK+z3iCL8+",
        "cSrBv1BLBwigSx79MAAAADAAAABQSwMEAAAICAAAAAAAAAAAAAAAAAAAAAAAABQADgBhZGFwdGVyX21vZGVsL2RhdGEvMkZCCgBaWlpaWlpaWlpa7TXTPYU7",
        "UEsHCJd7dJ0GAAAABgAAAFBLAwQAAAgIAAAAAAAAAAAAAAAAAAAAAAAAFAA4AGFkYXB0ZXJfbW9kZWwvZGF0YS8zRkI0AFpaWlpaWlpaWlpaWlpaWlpaWlpa",
        "WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlp+XEY/a3lEPgfEoT/6LKW/tYVKv24Lq7xP7je/YcUEP7gAqL9bmkQ+EPMKP3sADsCfmYQ+SM2Dv7Qx",
        "AL9QSwcInA4xZDwAAAA8AAAAUEsDBAAACAgAAAAAAAAAAAAAAAAAAAAAAAAVAEEAYWRhcHRlcl9tb2RlbC92ZXJzaW9uRkI9AFpaWlpaWlpaWlpaWlpaWlpa",
        "WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlozClBLBwjRnmdVAgAAAAIAAABQSwMEAAAICAAAAAAAAAAAAAAAAAAAAAAAACQA",
        "LABhZGFwdGVyX21vZGVsLy5kYXRhL3NlcmlhbGl6YXRpb25faWRGQigAWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWjEwNzc4NjI3",
        "Mjk3OTk4NTQxNjI1MTY1MzQxNjM4NDQwNjI0MzAyMzBQSwcI92gkHSgAAAAoAAAAUEsBAgAAAAAICAAAAAAAABy8xK70AQAA9AEAABYAAAAAAAAAAAAAAAAA",
        "AAAAAGFkYXB0ZXJfbW9kZWwvZGF0YS5wa2xQSwECAAAAAAgIAAAAAAAAt+/cgwEAAAABAAAAHQAAAAAAAAAAAAAAAABEAgAAYWRhcHRlcl9tb2RlbC8uZm9y",
        "bWF0X3ZlcnNpb25QSwECAAAAAAgIAAAAAAAAP3dx6QIAAAACAAAAIAAAAAAAAAAAAAAAAADRAgAAYWRhcHRlcl9tb2RlbC8uc3RvcmFnZV9hbGlnbm1lbnRQ",
        "SwECAAAAAAgIAAAAAAAAhT3jGQYAAAAGAAAAFwAAAAAAAAAAAAAAAABSAwAAYWRhcHRlcl9tb2RlbC9ieXRlb3JkZXJQSwECAAAAAAgIAAAAAAAAqnWWFCAA",
        "AAAgAAAAFAAAAAAAAAAAAAAAAADWAwAAYWRhcHRlcl9tb2RlbC9kYXRhLzBQSwECAAAAAAgIAAAAAAAAoEse/TAAAAAwAAAAFAAAAAAAAAAAAAAAAABwBAAA",
        "YWRhcHRlcl9tb2RlbC9kYXRhLzFQSwECAAAAAAgIAAAAAAAAl3t0nQYAAAAGAAAAFAAAAAAAAAAAAAAAAAAABQAAYWRhcHRlcl9tb2RlbC9kYXRhLzJQSwEC",
        "AAAAAAgIAAAAAAAAnA4xZDwAAAA8AAAAFAAAAAAAAAAAAAAAAABWBQAAYWRhcHRlcl9tb2RlbC9kYXRhLzNQSwECAAAAAAgIAAAAAAAA0Z5nVQIAAAACAAAA",
        "FQAAAAAAAAAAAAAAAAAMBgAAYWRhcHRlcl9tb2RlbC92ZXJzaW9uUEsBAgAAAAAICAAAAAAAAPdoJB0oAAAAKAAAACQAAAAAAAAAAAAAAAAAkgYAAGFkYXB0",
        "ZXJfbW9kZWwvLmRhdGEvc2VyaWFsaXphdGlvbl9pZFBLBgYsAAAAAAAAAB4DLQAAAAAAAAAAAAoAAAAAAAAACgAAAAAAAAC/AgAAAAAAADgHAAAAAAAAUEsG",
        "BwAAAAD3CQAAAAAAAAEAAABQSwUGAAAAAAoACgC/AgAAOAcAAAAA",
    ]

    func write(_ bytes: [UInt8]) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("torch-\(UUID().uuidString).bin")
        try Data(bytes).write(to: url)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    var fileBytes: [UInt8] { [UInt8](Data(base64Encoded: Self.torchFile.joined())!) }

    func testReadsWhatPyTorchWrote() throws {
        let tensors = try TorchCheckpoint.read(try write(fileBytes))
        let expected: [(String, [Int], [Float])] = [
            ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", [2, 4], [1.5409960746765137, -0.293428897857666, -2.1787893772125244, 0.5684312582015991, -1.0845223665237427, -1.3985954523086548, 0.40334683656692505, 0.8380263447761536]),
            ("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", [6, 2], [-0.7192575931549072, -0.40334352850914, -0.5966353416442871, 0.18203648924827576, -0.8566746115684509, 1.1006041765213013, -1.0711873769760132, 0.1227012425661087, -0.5663174986839294, 0.3731146454811096, -0.8919953107833862, -1.5091077089309692]),
            ("x.half", [3], [0.370361328125, 1.4560546875, 0.93994140625]),
            ("x.view", [2, 3], [-1.2904350757598877, -0.7911027073860168, -0.02087947353720665, -0.7184800505638123, 0.5186367630958557, -1.3125219345092773]),
        ]
        XCTAssertEqual(Set(tensors.keys), Set(expected.map(\.0)))
        for (name, shape, values) in expected {
            let t = try XCTUnwrap(tensors[name])
            XCTAssertEqual(t.shape, shape, name)
            XCTAssertEqual(t.scalars, values, name)
        }
    }

    func testDamagedAndHostileFilesAreRefused() throws {
        var truncated = fileBytes
        truncated.removeLast(200)
        XCTAssertThrowsError(try TorchCheckpoint.read(try write(truncated))) { XCTAssertTrue("\($0)".contains("zip"), "\($0)") }
        XCTAssertThrowsError(try TorchCheckpoint.read(try write(Array("not a zip".utf8)))) { XCTAssertTrue("\($0)".contains("not a zip archive"), "\($0)") }
        // The same archive with the pickle's OrderedDict global renamed to os.system: refused, not run.
        var hostile = fileBytes
        let from = Array("collections\nOrderedDict".utf8), to = Array("os\nsystem              ".utf8)
        XCTAssertEqual(from.count, to.count)
        if let i = (0...(hostile.count - from.count)).first(where: { Array(hostile[$0..<($0 + from.count)]) == from }) {
            hostile.replaceSubrange(i..<(i + from.count), with: to)
        }
        XCTAssertThrowsError(try TorchCheckpoint.read(try write(hostile))) { e in
            XCTAssertTrue("\(e)".contains("os.system") && "\(e)".contains("refused"), "\(e)")
        }
    }
}
