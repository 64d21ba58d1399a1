import XCTest
import Foundation
@testable import SculptIO
import SculptTestSupport

/// Output directories are built beside their destination and moved into place: an existing
/// one is refused or replaced whole, a failed body leaves nothing, and stale staging
/// directories of dead processes are removed.
final class StagedDirectoryTests: XCTestCase {
    func testRefuseReplaceDiscardAndStaleCleanup() throws {
        let root = temporaryDirectory()
        let out = root.appendingPathComponent("model")
        try StagedDirectory.write(out) { try Data("a".utf8).write(to: $0.appendingPathComponent("a.txt")) }
        XCTAssertEqual(try String(contentsOf: out.appendingPathComponent("a.txt"), encoding: .utf8), "a")

        XCTAssertThrowsError(try StagedDirectory.write(out) { _ in }) { XCTAssertTrue("\($0)".contains("already exists"), "\($0)") }

        try StagedDirectory.write(out, existing: .replace) { try Data("b".utf8).write(to: $0.appendingPathComponent("b.txt")) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("a.txt").path), "replaced whole")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("b.txt").path))

        struct Failure: Error {}
        let other = root.appendingPathComponent("other")
        XCTAssertThrowsError(try StagedDirectory.write(other) { dir in
            try Data("x".utf8).write(to: dir.appendingPathComponent("x"))
            throw Failure()
        })
        XCTAssertFalse(FileManager.default.fileExists(atPath: other.path))

        // A staging directory left by a process that no longer exists (pid 2^31 − 2 is not one).
        let stale = root.appendingPathComponent(".other.staging-2147483646-1")
        try FileManager.default.createDirectory(at: stale, withIntermediateDirectories: true)
        try StagedDirectory.write(other) { _ in }
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale.path), "stale staging directory removed")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: root.path).filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [])
    }
}
