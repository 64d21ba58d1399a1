import Foundation
import XCTest
@testable import SculptIO

final class AtomicFileTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("sculpt-atomic-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    private func listing() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
    }

    private struct Boom: Error {}

    func testWritesAndReplaces() throws {
        let url = dir.appendingPathComponent("out.bin")
        try AtomicFile.write(Data("first".utf8), to: url)
        XCTAssertEqual(try Data(contentsOf: url), Data("first".utf8))
        try AtomicFile.write(Data("second, longer".utf8), to: url)
        XCTAssertEqual(try Data(contentsOf: url), Data("second, longer".utf8))
        try AtomicFile.write(Data(), to: url)
        XCTAssertEqual(try Data(contentsOf: url), Data())
        XCTAssertEqual(try listing(), ["out.bin"], "no temporary files left behind")
    }

    func testFailingBodyLeavesOldFileAndNoTemporary() throws {
        let url = dir.appendingPathComponent("keep.txt")
        try AtomicFile.write(Data("old".utf8), to: url)
        XCTAssertThrowsError(try AtomicFile.write(to: url) { w in
            try w.write(Data(repeating: 7, count: 3 << 20))  // past the buffer: bytes already on disk
            throw Boom()
        }) { XCTAssertTrue($0 is Boom) }
        XCTAssertEqual(try Data(contentsOf: url), Data("old".utf8))
        XCTAssertEqual(try listing(), ["keep.txt"])

        // Same when there was no file before: nothing appears.
        let fresh = dir.appendingPathComponent("never.txt")
        XCTAssertThrowsError(try AtomicFile.write(to: fresh) { _ in throw Boom() })
        XCTAssertFalse(FileManager.default.fileExists(atPath: fresh.path))
        XCTAssertEqual(try listing(), ["keep.txt"])
    }

    func testStreamingWritesOfMixedSizes() throws {
        let url = dir.appendingPathComponent("stream.bin")
        var expected = Data()
        var rng = SafeTensorsTestRNG(seed: 3)
        try AtomicFile.write(to: url) { w in
            for _ in 0..<200 {
                let n = [0, 1, 17, 4096, 300_000, AtomicFileWriter.bufferSize, AtomicFileWriter.bufferSize + 5][rng.below(7)]
                let chunk = Data((0..<n).map { UInt8(truncatingIfNeeded: $0 &+ n) })
                expected.append(chunk)
                try w.write(chunk)
            }
            try w.write("tail")
            try w.write([1, 2, 3] as [UInt8])
            expected.append(contentsOf: Array("tail".utf8) + [1, 2, 3])
            XCTAssertEqual(w.bytesWritten, expected.count)
        }
        XCTAssertEqual(try Data(contentsOf: url), expected)
    }

    func testMissingDirectoryIsAnErrorNamingIt() throws {
        let missing = dir.appendingPathComponent("no/such/dir")
        let url = missing.appendingPathComponent("model.safetensors")
        XCTAssertThrowsError(try AtomicFile.write(Data("x".utf8), to: url)) { error in
            XCTAssertEqual(error as? AtomicFileError, .directoryMissing(directory: missing.path, file: url.path))
            XCTAssertEqual("\(error)", "\(url.path): cannot write: directory \(missing.path) does not exist")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: missing.path))
    }

    func testKeepsPermissionsOfReplacedFile() throws {
        let url = dir.appendingPathComponent("secret.json")
        try AtomicFile.write(Data("a".utf8), to: url)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: url.path)
        try AtomicFile.write(Data("b".utf8), to: url)
        let perms = try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? Int
        XCTAssertEqual(perms, 0o600)
    }

    func testTargetThatIsADirectoryFailsCleanly() throws {
        let target = dir.appendingPathComponent("sub")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: false)
        XCTAssertThrowsError(try AtomicFile.write(Data("x".utf8), to: target)) { error in
            XCTAssertTrue("\(error)".contains("renaming"), "\(error)")
            XCTAssertFalse("\(error)".contains("\n"))
        }
        XCTAssertEqual(try listing(), ["sub"])
    }

    func testRejectsNonFileURLAndEscapedWriter() throws {
        XCTAssertThrowsError(try AtomicFile.write(Data(), to: URL(string: "https://example.com/x")!)) { error in
            XCTAssertEqual(error as? AtomicFileError, .notAFileURL("https://example.com/x"))
        }
        var escaped: AtomicFileWriter?
        try AtomicFile.write(to: dir.appendingPathComponent("e.txt")) { escaped = $0 }
        XCTAssertThrowsError(try escaped?.write("late"))
    }
}
