// IDX files (the MNIST / Fashion-MNIST format), raw or gzip-compressed.
//
// An IDX file is a big-endian header — two zero bytes, a type byte (0x08 = unsigned byte),
// a dimension count, then one UInt32 size per dimension — followed by the data, row-major.
// Images are 0x00000803 (count × rows × columns), labels 0x00000801 (count).

import Foundation

/// Images from an IDX3 file: `count` images of `rows × columns` bytes, stored row-major,
/// image after image (`pixels.count == count * rows * columns`).
public struct IDXImages: Sendable, Equatable {
    public let count: Int
    public let rows: Int
    public let columns: Int
    public let pixels: [UInt8]

    /// `pixels.count` must equal `count * rows * columns`.
    public init(count: Int, rows: Int, columns: Int, pixels: [UInt8]) {
        precondition(count >= 0 && rows >= 0 && columns >= 0 && pixels.count == count * rows * columns,
                     "IDXImages: \(pixels.count) pixels for \(count) images of \(rows)x\(columns)")
        self.count = count
        self.rows = rows
        self.columns = columns
        self.pixels = pixels
    }

    /// Bytes per image (`rows * columns`).
    public var imageSize: Int { rows * columns }

    /// The pixels of image `index` (a slice of `pixels`).
    public func image(_ index: Int) -> ArraySlice<UInt8> {
        pixels[index * imageSize ..< (index + 1) * imageSize]
    }
}

/// Labels from an IDX1 file.
public struct IDXLabels: Sendable, Equatable {
    public let labels: [Int32]

    public init(labels: [Int32]) { self.labels = labels }

    public var count: Int { labels.count }
}

/// A problem reading an IDX file. `description` is one line naming the file.
public struct IDXError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The file does not exist (or is not a regular file).
        case missingFile
        /// The file exists but could not be read.
        case unreadable
        /// The file is gzip-compressed and decompression failed.
        case decompression(CompressionError.Kind)
        /// The first four bytes are not the expected IDX magic number.
        case wrongMagic(expected: UInt32, found: UInt32)
        /// The file is shorter than its header says (sizes in bytes, after decompression).
        case truncated(expected: Int, actual: Int)
        /// The file is longer than its header says.
        case trailingData(expected: Int, actual: Int)
        /// The images and labels files hold different numbers of items.
        case countMismatch(images: Int, labels: Int)
        /// No labels file was found beside an images file.
        case labelsNotFound(tried: [String])
        /// A file name that does not follow the MNIST naming scheme.
        case unrecognisedName
    }

    public let kind: Kind
    /// The file the problem is about.
    public let path: String
    public let message: String

    public init(_ kind: Kind, path: String, _ message: String) {
        self.kind = kind
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}

public enum IDX {
    public static let imagesMagic: UInt32 = 0x0000_0803
    public static let labelsMagic: UInt32 = 0x0000_0801

    /// Reads an IDX3 unsigned-byte images file (magic 0x00000803). Gzip-compressed files are
    /// recognised by their content (magic bytes 1f 8b), whatever the file name.
    public static func readImages(_ url: URL) throws -> IDXImages {
        try withContents(url) { bytes in
            let dims = try header(bytes, url, magic: imagesMagic, dimensions: 3)
            let (count, rows, columns) = (dims[0], dims[1], dims[2])
            let size = try payloadSize(dims, headerSize: 16, available: bytes.count, url)
            let pixels = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[16 ..< 16 + size]))
            return IDXImages(count: count, rows: rows, columns: columns, pixels: pixels)
        }
    }

    /// Reads an IDX1 unsigned-byte labels file (magic 0x00000801), raw or gzip-compressed.
    public static func readLabels(_ url: URL) throws -> IDXLabels {
        try withContents(url) { bytes in
            let dims = try header(bytes, url, magic: labelsMagic, dimensions: 1)
            let size = try payloadSize(dims, headerSize: 8, available: bytes.count, url)
            let labels = UnsafeRawBufferPointer(rebasing: bytes[8 ..< 8 + size]).map { Int32($0) }
            return IDXLabels(labels: labels)
        }
    }

    /// Reads an images file and its labels, checking they hold the same number of items.
    /// With `labels` nil, the labels file is found beside the images by MNIST naming
    /// (see `labelsURL(forImages:)`).
    public static func readDataset(images: URL, labels: URL? = nil) throws -> (images: IDXImages, labels: IDXLabels) {
        let labelsURL = try labels ?? labelsURL(forImages: images)
        let imgs = try readImages(images)
        let labs = try readLabels(labelsURL)
        guard imgs.count == labs.count else {
            throw IDXError(.countMismatch(images: imgs.count, labels: labs.count), path: images.path,
                           "has \(imgs.count) images but its labels file \(labelsURL.path) has \(labs.count) labels")
        }
        return (imgs, labs)
    }

    /// The labels file beside an images file by MNIST naming: "train-images-idx3-ubyte(.gz)"
    /// -> "train-labels-idx1-ubyte(.gz)", "t10k-images..." -> "t10k-labels...". The same
    /// compression suffix is tried first, then the other one (".gz" added or removed).
    /// The "images.idx3-ubyte" spelling (a dot before idx3) is accepted too.
    public static func labelsURL(forImages url: URL) throws -> URL {
        let name = url.lastPathComponent
        guard let labelsName = labelsName(forImages: name) else {
            throw IDXError(.unrecognisedName, path: url.path,
                           "cannot derive a labels file name: expected an MNIST images name containing \"images-idx3-ubyte\"")
        }
        let dir = url.deletingLastPathComponent()
        let alternate = labelsName.hasSuffix(".gz") ? String(labelsName.dropLast(3)) : labelsName + ".gz"
        let candidates = [labelsName, alternate].map { dir.appendingPathComponent($0) }
        if let found = candidates.first(where: isFile) { return found }
        throw IDXError(.labelsNotFound(tried: candidates.map(\.path)), path: url.path,
                       "labels file not found beside images: tried \(candidates.map(\.path).joined(separator: ", "))")
    }

    /// A directory in MNIST layout: "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    /// "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", each optionally with ".gz".
    public static func splitURLs(inDirectory dir: URL) throws -> (trainImages: URL, trainLabels: URL, testImages: URL, testLabels: URL) {
        func find(_ stem: String) throws -> URL {
            // "train-images-idx3-ubyte" or the "train-images.idx3-ubyte" spelling, raw or gzipped.
            let dotted = stem.replacingOccurrences(of: "-idx", with: ".idx")
            let names = [stem + ".gz", stem, dotted + ".gz", dotted]
            let urls = names.map { dir.appendingPathComponent($0) }
            if let found = urls.first(where: isFile) { return found }
            throw IDXError(.missingFile, path: dir.path,
                           "no \(stem)[.gz] in MNIST-layout directory (tried \(names.joined(separator: ", ")))")
        }
        guard isDirectory(dir) else {
            throw IDXError(.missingFile, path: dir.path, "dataset directory does not exist")
        }
        return (try find("train-images-idx3-ubyte"), try find("train-labels-idx1-ubyte"),
                try find("t10k-images-idx3-ubyte"), try find("t10k-labels-idx1-ubyte"))
    }

    // MARK: Internals

    static func labelsName(forImages name: String) -> String? {
        for (images, labels) in [("images-idx3-ubyte", "labels-idx1-ubyte"), ("images.idx3-ubyte", "labels.idx1-ubyte")] {
            if let r = name.range(of: images, options: .backwards) {
                return name.replacingCharacters(in: r, with: labels)
            }
        }
        return nil
    }

    static func isFile(_ url: URL) -> Bool {
        var dir: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &dir) && !dir.boolValue
    }

    static func isDirectory(_ url: URL) -> Bool {
        var dir: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &dir) && dir.boolValue
    }

    /// Reads the file, decompressing it if it is gzip, and passes its bytes to `body`.
    static func withContents<R>(_ url: URL, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard isFile(url) else {
            throw IDXError(.missingFile, path: url.path, "file not found")
        }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw IDXError(.unreadable, path: url.path, "cannot read file: \(error.localizedDescription)")
        }
        if Gzip.isGzip(data) {
            do {
                return try Gzip.withDecompressed(data, body)
            } catch let error as CompressionError {
                throw IDXError(.decompression(error.kind), path: url.path, "gzip decompression failed: \(error)")
            }
        }
        return try data.withUnsafeBytes(body)
    }

    /// Checks the magic number and returns the dimension sizes.
    static func header(_ bytes: UnsafeRawBufferPointer, _ url: URL, magic: UInt32, dimensions: Int) throws -> [Int] {
        let headerSize = 4 + 4 * dimensions
        if bytes.count >= 4 {
            let found = readBE32(bytes, 0)
            guard found == magic else {
                var hint = ""
                if found == imagesMagic { hint = " (this is an images file)" }
                if found == labelsMagic { hint = " (this is a labels file)" }
                throw IDXError(.wrongMagic(expected: magic, found: found), path: url.path,
                               "wrong IDX magic number: expected \(hex32(magic)), found \(hex32(found))\(hint)")
            }
        }
        guard bytes.count >= headerSize else {
            throw IDXError(.truncated(expected: headerSize, actual: bytes.count), path: url.path,
                           "truncated IDX header: expected at least \(headerSize) bytes, found \(bytes.count)")
        }
        return (0..<dimensions).map { Int(readBE32(bytes, 4 + 4 * $0)) }
    }

    /// Product of the dimensions; checks the data after the header has exactly that many bytes.
    static func payloadSize(_ dims: [Int], headerSize: Int, available: Int, _ url: URL) throws -> Int {
        var size = 1
        var overflow = false
        for d in dims {
            let (p, o) = size.multipliedReportingOverflow(by: d)
            size = p
            overflow = overflow || o
        }
        let shape = dims.map(String.init).joined(separator: "x")
        let (expected, o2) = size.addingReportingOverflow(headerSize)
        guard !overflow, !o2, expected <= available else {
            let expectedText = overflow || o2 ? "more than \(Int.max)" : "\(expected)"
            throw IDXError(.truncated(expected: overflow || o2 ? Int.max : expected, actual: available), path: url.path,
                           "truncated IDX data: header says \(shape), which needs \(expectedText) bytes, but the file has \(available)")
        }
        guard expected == available else {
            throw IDXError(.trailingData(expected: expected, actual: available), path: url.path,
                           "IDX file longer than its header says: \(shape) needs \(expected) bytes, but the file has \(available)")
        }
        return size
    }

    static func readBE32(_ b: UnsafeRawBufferPointer, _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }

    static func hex32(_ v: UInt32) -> String { String(format: "0x%08x", v) }
}
