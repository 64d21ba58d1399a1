import Foundation
import SculptTestSupport
import XCTest

/// The search commands as a user runs them, including a real SIGKILL in the middle.
final class SearchCLITests: XCTestCase {
    var dir: URL!
    override func setUp() { dir = SharedData.temporaryDirectory("sculpt-search-cli") }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func start(_ args: [String]) throws -> (Process, Pipe, Pipe) { try SculptCLI.start(args) }
    func sculpt(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) { try SculptCLI.run(args) }

    func paretoJSON(_ db: String) throws -> [String: Any]? {
        let r = try sculpt(["pareto", db, "--json"])
        guard r.status == 0 else { return nil }
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
    }

    func testSIGKILLedSearchResumesWithNothingRepeatedAndTheSameFront() throws {
        let args = ["search-benchmark", "synthetic", "--evaluations", "200", "--population", "25", "--predictor", "--seed", "5"]
        let ref = dir.appendingPathComponent("ref.sqlite").path, killed = dir.appendingPathComponent("killed.sqlite").path
        let full = try sculpt(args + ["--db", ref])
        XCTAssertEqual(full.status, 0, full.stderr)
        XCTAssertTrue(full.stdout.contains("200 evaluations (200 in this run)"), full.stdout)

        // Kill -9 once some rounds are stored (the store is read while the search writes: WAL).
        let (p, out, err) = try start(args + ["--db", killed])
        var stored = 0
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && p.isRunning {
            if let j = try? paretoJSON(killed), let n = j["evaluations"] as? Int { stored = n; if n >= 60 { break } }
            Thread.sleep(forTimeInterval: 0.1)
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        _ = out.fileHandleForReading.readDataToEndOfFile(); _ = err.fileHandleForReading.readDataToEndOfFile()
        XCTAssertEqual(p.terminationReason, .uncaughtSignal, "the search was still running when killed")
        let atKill = (try paretoJSON(killed)?["evaluations"] as? Int) ?? 0
        XCTAssertGreaterThanOrEqual(atKill, stored)
        XCTAssertLessThan(atKill, 200)

        let resumed = try sculpt(args + ["--db", killed])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("200 evaluations (\(200 - atKill) in this run)"), "killed at \(atKill): \(resumed.stdout)")

        let a = try XCTUnwrap(paretoJSON(ref)), b = try XCTUnwrap(paretoJSON(killed))
        XCTAssertEqual(a["hypervolume"] as? Double, b["hypervolume"] as? Double)
        XCTAssertEqual((a["front"] as? [[String: Any]])?.map { $0["encoding"] as! [Int] }, (b["front"] as? [[String: Any]])?.map { $0["encoding"] as! [Int] })
    }

    func testParetoOutputsAndErrors() throws {
        let db = dir.appendingPathComponent("s.sqlite").path
        XCTAssertEqual(try sculpt(["search-benchmark", "synthetic", "--evaluations", "60", "--population", "20", "--db", db]).status, 0)
        let csv = dir.appendingPathComponent("front.csv").path, svg = dir.appendingPathComponent("front.svg").path
        let r = try sculpt(["pareto", db, "--csv", csv, "--plot", svg])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("hypervolume") && r.stdout.contains("reference point accuracy="), r.stdout)
        let j = try XCTUnwrap(paretoJSON(db))
        XCTAssertEqual(j["evaluations"] as? Int, 60)
        XCTAssertNotNil(j["hypervolume"] as? Double)
        XCTAssertEqual((j["reference_point"] as? [Double])?.count, 2)
        let front = try XCTUnwrap(j["front"] as? [[String: Any]])
        XCTAssertEqual(try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").count, front.count + 1)
        let svgText = try String(contentsOfFile: svg, encoding: .utf8)
        XCTAssertTrue(svgText.hasPrefix("<svg") && svgText.contains("Pareto front") && svgText.contains("<polyline"))

        let junk = dir.appendingPathComponent("junk.sqlite").path
        try Data("definitely not sqlite".utf8).write(to: URL(fileURLWithPath: junk))
        let bad = try sculpt(["pareto", junk])
        XCTAssertEqual(bad.status, 1)
        XCTAssertEqual(bad.stderr, "Error: \(junk) is not an SQLite file (corrupt or another kind of file)\n")
        let unknown = try sculpt(["pareto", db, "--search-id", "nope"])
        XCTAssertEqual(unknown.status, 1)
        XCTAssertTrue(unknown.stderr.hasPrefix("Error: no search \"nope\" in the store (searches: search-"), unknown.stderr)
    }

    func tinyImages(count: Int = 120, classes: Int = 3) throws -> URL {
        try TinyImages.write(in: dir, count: count, classes: classes, patternedNoise: true)
    }

    func testSearchAnElasticCNNThenExtractAFrontRow() throws {
        let run = dir.appendingPathComponent("run").path, db = dir.appendingPathComponent("s.sqlite").path
        let trained = try sculpt(["train", "--model", "cnn", "--method", "elastic", "--data", try tinyImages().path, "--width", "4", "--depth", "2",
                                  "--epochs", "1", "--batch-size", "16", "--val-fraction", "0.25", "--random-subnets", "1", "--threads", "1", "--out", run])
        XCTAssertEqual(trained.status, 0, trained.stderr)
        let searched = try sculpt(["search", run, "--objectives", "accuracy:max,macs:min", "--evaluations", "8", "--population", "4",
                                   "--seed", "1", "--db", db, "--reference-point", "0,1e9"])
        XCTAssertEqual(searched.status, 0, searched.stderr)
        XCTAssertTrue(searched.stdout.contains("reference point accuracy=0, macs=1e+09"), searched.stdout)
        let front = try XCTUnwrap(paretoJSON(db)?["front"] as? [[String: Any]])
        let rank = front.count
        let small = dir.appendingPathComponent("small").path
        let r = try sculpt(["extract", run, "--from-db", db, "--rank", "\(rank)", "--out", small])
        XCTAssertEqual(r.status, 0, r.stderr)
        let subnet = try sculpt(["front-subnet", db, "--rank", "\(rank)"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(r.stdout.hasPrefix("front row \(rank) of search search-"), r.stdout)
        XCTAssertTrue(r.stdout.contains("extracted \(subnet) to \(small)"), r.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: small + "/classifier.json"))
        // bench model takes the extracted directory and the run directory (its final/) alike.
        for target in [small, run] {
            let b = try sculpt(["bench", "model", target, "--batch", "4", "--seconds", "0.05", "--threads", "1", "--json"])
            XCTAssertEqual(b.status, 0, "\(target): \(b.stderr)")
            XCTAssertTrue(b.stdout.contains("seconds_per_step"), b.stdout)
        }

        for (args, message) in [
            (["extract", run, "--from-db", db, "--out", small], "--from-db and --rank go together"),
            (["extract", run, "--subnet", "max", "--from-db", db, "--rank", "1", "--out", small], "exactly one of --subnet or --from-db"),
            (["extract", run, "--from-db", db, "--rank", "\(rank + 1)", "--out", small], "outside the front"),
            (["search", run, "--objectives", "accuracy:max,macs:min", "--evaluations", "8", "--population", "4", "--db", db, "--reference-point", "0,x"],
             "--reference-point must be comma-separated numbers"),
        ] {
            let bad = try sculpt(args)
            XCTAssertNotEqual(bad.status, 0, "\(args): \(bad.stdout)")
            XCTAssertTrue(bad.stderr.contains(message), "\(args): \(bad.stderr)")
        }
    }
}
