import Foundation
import XCTest
import SculptIO

final class IDXDatasetTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("sculpt-idx-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    // MARK: Helpers

    static func be32(_ v: Int) -> [UInt8] {
        [UInt8(truncatingIfNeeded: v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
    }

    static func imagesFile(count: Int, rows: Int, columns: Int, pixels: [UInt8]) -> [UInt8] {
        [0, 0, 8, 3] + be32(count) + be32(rows) + be32(columns) + pixels
    }

    static func labelsFile(_ labels: [UInt8]) -> [UInt8] {
        [0, 0, 8, 1] + be32(labels.count) + labels
    }

    /// 3 images of 2×4 with pixel value = index.
    static let samplePixels: [UInt8] = (0..<24).map { UInt8($0 * 10) }
    static let sampleImages = imagesFile(count: 3, rows: 2, columns: 4, pixels: samplePixels)
    static let sampleLabels = labelsFile([7, 0, 9])

    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url
    }

    func assertIDXError(_ body: () throws -> Any, file: StaticString = #filePath, line: UInt = #line,
                        check: (IDXError) -> Void) {
        do {
            let result = try body()
            XCTFail("expected an IDXError, got \(result)", file: file, line: line)
        } catch let error as IDXError {
            XCTAssertFalse(error.description.contains("\n"), error.description, file: file, line: line)
            XCTAssertTrue(error.description.contains(error.path), error.description, file: file, line: line)
            check(error)
        } catch {
            XCTFail("unexpected error type \(type(of: error)): \(error)", file: file, line: line)
        }
    }

    // MARK: Reading

    func testReadRawImagesAndLabels() throws {
        let images = try IDX.readImages(write("train-images-idx3-ubyte", Self.sampleImages))
        XCTAssertEqual(images.count, 3)
        XCTAssertEqual(images.rows, 2)
        XCTAssertEqual(images.columns, 4)
        XCTAssertEqual(images.pixels, Self.samplePixels)
        XCTAssertEqual(Array(images.image(1)), Array(Self.samplePixels[8..<16]))
        let labels = try IDX.readLabels(write("train-labels-idx1-ubyte", Self.sampleLabels))
        XCTAssertEqual(labels.labels, [7, 0, 9])
    }

    func testReadGzippedFilesDetectedByContent() throws {
        // Gzip content without a .gz name, and raw content with a .gz name: both read.
        let images = try IDX.readImages(write("a-images", storedGzip(Self.sampleImages, blockSize: 10)))
        XCTAssertEqual(images.pixels, Self.samplePixels)
        let labels = try IDX.readLabels(write("b-labels.gz", Self.sampleLabels))
        XCTAssertEqual(labels.labels, [7, 0, 9])
        let gzLabels = try IDX.readLabels(write("c-labels.gz", storedGzip(Self.sampleLabels)))
        XCTAssertEqual(gzLabels.labels, [7, 0, 9])
    }

    func testReadDataset() throws {
        let imagesURL = try write("t10k-images-idx3-ubyte.gz", storedGzip(Self.sampleImages))
        try write("t10k-labels-idx1-ubyte.gz", storedGzip(Self.sampleLabels))
        let (images, labels) = try IDX.readDataset(images: imagesURL)
        XCTAssertEqual(images.count, labels.labels.count)
        XCTAssertEqual(labels.labels, [7, 0, 9])
    }

    func testEmptyDataset() throws {
        let images = try IDX.readImages(write("e-images", Self.imagesFile(count: 0, rows: 28, columns: 28, pixels: [])))
        XCTAssertEqual(images.count, 0)
        XCTAssertEqual(images.pixels, [])
    }

    // MARK: Errors

    func testWrongMagic() throws {
        let labelsURL = try write("x-labels", Self.sampleLabels)
        assertIDXError({ try IDX.readImages(labelsURL) }) { error in
            XCTAssertEqual(error.kind, .wrongMagic(expected: 0x803, found: 0x801))
            XCTAssertTrue(error.description.contains("0x00000803"), error.description)
            XCTAssertTrue(error.description.contains("0x00000801"), error.description)
            XCTAssertTrue(error.description.contains(labelsURL.path), error.description)
        }
        let imagesURL = try write("x-images", Self.sampleImages)
        assertIDXError({ try IDX.readLabels(imagesURL) }) { error in
            XCTAssertEqual(error.kind, .wrongMagic(expected: 0x801, found: 0x803))
        }
        let garbage = try write("garbage", Array("hello world, not idx".utf8))
        assertIDXError({ try IDX.readImages(garbage) }) { error in
            XCTAssertEqual(error.kind, .wrongMagic(expected: 0x803, found: 0x6865_6C6C))
        }
    }

    func testTruncated() throws {
        let url = try write("t-images", Array(Self.sampleImages.dropLast(5)))
        assertIDXError({ try IDX.readImages(url) }) { error in
            XCTAssertEqual(error.kind, .truncated(expected: 16 + 24, actual: 16 + 19))
            XCTAssertTrue(error.description.contains("40"), error.description)
            XCTAssertTrue(error.description.contains("35"), error.description)
        }
        let header = try write("h-images", Array(Self.sampleImages[..<10]))
        assertIDXError({ try IDX.readImages(header) }) { error in
            XCTAssertEqual(error.kind, .truncated(expected: 16, actual: 10))
        }
        let tiny = try write("tiny-labels", [0, 0])
        assertIDXError({ try IDX.readLabels(tiny) }) { error in
            XCTAssertEqual(error.kind, .truncated(expected: 8, actual: 2))
        }
        let labels = try write("t-labels.gz", storedGzip(Array(Self.sampleLabels.dropLast())))
        assertIDXError({ try IDX.readLabels(labels) }) { error in
            XCTAssertEqual(error.kind, .truncated(expected: 11, actual: 10))
        }
        // Huge dimensions must not overflow or allocate.
        let huge = try write("huge-images", [0, 0, 8, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        assertIDXError({ try IDX.readImages(huge) }) { error in
            guard case .truncated = error.kind else { return XCTFail("\(error)") }
        }
    }

    func testTrailingData() throws {
        let url = try write("long-labels", Self.sampleLabels + [1])
        assertIDXError({ try IDX.readLabels(url) }) { error in
            XCTAssertEqual(error.kind, .trailingData(expected: 11, actual: 12))
        }
    }

    func testCorruptGzip() throws {
        var gz = storedGzip(Self.sampleImages)
        gz[gz.count - 8] ^= 1 // CRC
        let url = try write("bad-images.gz", gz)
        assertIDXError({ try IDX.readImages(url) }) { error in
            XCTAssertEqual(error.kind, .decompression(.crcMismatch))
            XCTAssertTrue(error.description.contains("CRC"), error.description)
        }
    }

    func testCountMismatch() throws {
        let imagesURL = try write("train-images-idx3-ubyte", Self.sampleImages)
        try write("train-labels-idx1-ubyte", Self.labelsFile([1, 2]))
        assertIDXError({ try IDX.readDataset(images: imagesURL) }) { error in
            XCTAssertEqual(error.kind, .countMismatch(images: 3, labels: 2))
            XCTAssertTrue(error.description.contains("3 images"), error.description)
            XCTAssertTrue(error.description.contains("2 labels"), error.description)
        }
    }

    func testMissingFile() throws {
        let url = dir.appendingPathComponent("nope-images-idx3-ubyte")
        assertIDXError({ try IDX.readImages(url) }) { error in
            XCTAssertEqual(error.kind, .missingFile)
            XCTAssertEqual(error.path, url.path)
        }
        assertIDXError({ try IDX.readLabels(self.dir) }) { error in // a directory is not a file
            XCTAssertEqual(error.kind, .missingFile)
        }
    }

    // MARK: Naming

    func testLabelsURL() throws {
        let gzImages = dir.appendingPathComponent("train-images-idx3-ubyte.gz")
        let gzLabels = try write("train-labels-idx1-ubyte.gz", [])
        XCTAssertEqual(try IDX.labelsURL(forImages: gzImages).path, gzLabels.path)

        // Compressed images beside raw labels (and vice versa) still pair up.
        let t10kLabels = try write("t10k-labels-idx1-ubyte", [])
        XCTAssertEqual(try IDX.labelsURL(forImages: dir.appendingPathComponent("t10k-images-idx3-ubyte.gz")).path, t10kLabels.path)
        XCTAssertEqual(try IDX.labelsURL(forImages: dir.appendingPathComponent("t10k-images-idx3-ubyte")).path, t10kLabels.path)

        // The dotted spelling used by some mirrors.
        let dotted = try write("train-labels.idx1-ubyte", [])
        XCTAssertEqual(try IDX.labelsURL(forImages: dir.appendingPathComponent("train-images.idx3-ubyte")).path, dotted.path)
    }

    func testLabelsNotFound() throws {
        let images = dir.appendingPathComponent("other-images-idx3-ubyte.gz")
        let expected = dir.appendingPathComponent("other-labels-idx1-ubyte.gz").path
        assertIDXError({ try IDX.labelsURL(forImages: images) }) { error in
            guard case .labelsNotFound(let tried) = error.kind else { return XCTFail("\(error)") }
            XCTAssertEqual(tried.first, expected)
            XCTAssertTrue(error.description.contains(expected), error.description)
        }
        assertIDXError({ try IDX.labelsURL(forImages: self.dir.appendingPathComponent("pictures.bin")) }) { error in
            XCTAssertEqual(error.kind, .unrecognisedName)
        }
        // readDataset reports the same problem.
        let imagesURL = try write("lonely-images-idx3-ubyte", Self.sampleImages)
        assertIDXError({ try IDX.readDataset(images: imagesURL) }) { error in
            guard case .labelsNotFound = error.kind else { return XCTFail("\(error)") }
        }
    }

    func testSplitURLs() throws {
        let a = try write("train-images-idx3-ubyte.gz", [])
        let b = try write("train-labels-idx1-ubyte", [])
        let c = try write("t10k-images-idx3-ubyte", [])
        assertIDXError({ try IDX.splitURLs(inDirectory: self.dir) }) { error in
            XCTAssertEqual(error.kind, .missingFile)
            XCTAssertTrue(error.description.contains("t10k-labels-idx1-ubyte"), error.description)
        }
        let d = try write("t10k-labels-idx1-ubyte.gz", [])
        let split = try IDX.splitURLs(inDirectory: dir)
        XCTAssertEqual(split.trainImages.path, a.path)
        XCTAssertEqual(split.trainLabels.path, b.path)
        XCTAssertEqual(split.testImages.path, c.path)
        XCTAssertEqual(split.testLabels.path, d.path)
        assertIDXError({ try IDX.splitURLs(inDirectory: self.dir.appendingPathComponent("absent")) }) { error in
            XCTAssertEqual(error.kind, .missingFile)
        }
    }

    // MARK: Real Fashion-MNIST (skipped when the shared data directory is absent)

    func testFashionMNISTTest() throws {
        let imagesURL = try fashionMNISTFile("t10k-images-idx3-ubyte.gz")
        let (images, labels) = try IDX.readDataset(images: imagesURL)
        XCTAssertEqual(images.count, 10000)
        XCTAssertEqual(images.rows, 28)
        XCTAssertEqual(images.columns, 28)
        XCTAssertEqual(images.pixels.count, 10000 * 784)
        XCTAssertEqual(labels.labels.count, 10000)
        XCTAssertTrue(labels.labels.allSatisfy { (0..<10).contains($0) })
        // Values checked with numpy at development time.
        XCTAssertEqual(Array(labels.labels.prefix(10)), [9, 2, 1, 1, 6, 1, 4, 6, 5, 7])
        XCTAssertEqual(images.image(0).reduce(0) { $0 + Int($1) }, 33456)
        XCTAssertEqual(images.image(9999).reduce(0) { $0 + Int($1) }, 24390)
        XCTAssertEqual(images.pixels.reduce(0) { $0 + Int($1) }, 573_469_082)
        var histogram = [Int](repeating: 0, count: 10)
        for l in labels.labels { histogram[Int(l)] += 1 }
        XCTAssertEqual(histogram, [Int](repeating: 1000, count: 10))
    }

    func testFashionMNISTTrainAndSplit() throws {
        let trainImages = try fashionMNISTFile("train-images-idx3-ubyte.gz")
        let split = try IDX.splitURLs(inDirectory: trainImages.deletingLastPathComponent())
        XCTAssertEqual(split.trainImages.lastPathComponent, "train-images-idx3-ubyte.gz")
        XCTAssertEqual(split.testLabels.lastPathComponent, "t10k-labels-idx1-ubyte.gz")
        let start = Date()
        let (images, labels) = try IDX.readDataset(images: split.trainImages, labels: split.trainLabels)
        let seconds = Date().timeIntervalSince(start)
        print(String(format: "Fashion-MNIST train (60000 images, 47 MB) read in %.3f s", seconds))
        XCTAssertEqual(images.count, 60000)
        XCTAssertEqual(images.rows, 28)
        XCTAssertEqual(images.columns, 28)
        XCTAssertEqual(Array(labels.labels.prefix(10)), [9, 0, 0, 3, 0, 2, 7, 2, 5, 5])
        XCTAssertEqual(images.image(0).reduce(0) { $0 + Int($1) }, 76247)
        XCTAssertEqual(images.image(59999).reduce(0) { $0 + Int($1) }, 16684)
        XCTAssertEqual(images.pixels.reduce(0) { $0 + Int($1) }, 3_431_114_169)
    }
}
