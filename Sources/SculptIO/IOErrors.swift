#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// Errors of the file-format layer. Every description is a single line that names the file
// (and the tensor or key, where there is one), so it can be printed as-is by the CLI.

/// A safetensors file (or a request made of one) that cannot be honoured.
public enum SafeTensorsError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file could not be opened, inspected or mapped.
    case cannotOpen(file: String, reason: String)
    /// The file is shorter than the 8-byte header-length prefix.
    case fileTooSmall(file: String, size: Int)
    /// The header length prefix is larger than the file or than the 100 MB limit.
    case invalidHeaderLength(file: String, headerLength: UInt64, fileSize: Int)
    /// The JSON header is not valid UTF-8 JSON, not an object, or has a bad `__metadata__`.
    case invalidHeader(file: String, reason: String)
    /// A tensor entry is malformed or inconsistent with the file.
    case invalidTensor(file: String, tensor: String, reason: String)
    /// No tensor of that name.
    case tensorNotFound(file: String, tensor: String)
    /// The tensor's dtype cannot be converted to the requested element type.
    case unsupportedConversion(file: String, tensor: String, dtype: String, target: String)
    /// An element does not fit the requested element type (e.g. an I64 value read as Int32).
    case valueOutOfRange(file: String, tensor: String, index: Int, target: String)
    /// A tensor handed to `SafeTensorsWriter` is inconsistent (file is "" before `write`).
    case invalidWrite(file: String, tensor: String, reason: String)

    public var description: String {
        func q(_ s: String) -> String { StrictJSON.displayQuoted(s) }
        func f(_ s: String) -> String { StrictJSON.displayQuoted(s, limit: 400).dropFirst().dropLast().description }
        switch self {
        case .cannotOpen(let file, let reason):
            return "\(f(file)): cannot open safetensors file: \(reason)"
        case .fileTooSmall(let file, let size):
            return "\(f(file)): not a safetensors file: \(size) bytes, shorter than the 8-byte header length"
        case .invalidHeaderLength(let file, let headerLength, let fileSize):
            if headerLength > UInt64(SafeTensorsFile.maxHeaderLength) {
                return "\(f(file)): header length \(headerLength) exceeds the \(SafeTensorsFile.maxHeaderLength)-byte limit (file is \(fileSize) bytes)"
            }
            return "\(f(file)): header length \(headerLength) runs past the end of the file (\(fileSize) bytes, at most \(max(fileSize - 8, 0)) available)"
        case .invalidHeader(let file, let reason):
            return "\(f(file)): invalid header: \(reason)"
        case .invalidTensor(let file, let tensor, let reason):
            return "\(f(file)): tensor \(q(tensor)): \(reason)"
        case .tensorNotFound(let file, let tensor):
            return "\(f(file)): no tensor named \(q(tensor))"
        case .unsupportedConversion(let file, let tensor, let dtype, let target):
            return "\(f(file)): tensor \(q(tensor)): cannot read \(dtype) as \(target)"
        case .valueOutOfRange(let file, let tensor, let index, let target):
            return "\(f(file)): tensor \(q(tensor)): element \(index) does not fit in \(target)"
        case .invalidWrite(let file, let tensor, let reason):
            let prefix = file.isEmpty ? "safetensors writer" : f(file)
            return "\(prefix): tensor \(q(tensor)): \(reason)"
        }
    }
}

/// A model or training config file that is missing a key, has a wrong type or an
/// inconsistent value. `description` is one line: `<file>: "<key>": <message>`.
public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String
    /// The JSON key at fault, or nil for whole-file problems (unreadable, not JSON).
    public var key: String?
    public var message: String

    public init(file: String, key: String?, message: String) {
        self.file = file
        self.key = key
        self.message = message
    }

    public var description: String {
        let name = StrictJSON.displayQuoted(file, limit: 400).dropFirst().dropLast()
        if let key { return "\(name): \(StrictJSON.displayQuoted(key)): \(message)" }
        return "\(name): \(message)"
    }
}

/// An atomic write that failed; the target file was left as it was.
public enum AtomicFileError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The URL is not a file URL.
    case notAFileURL(String)
    /// The directory that should hold the file does not exist (callers create directories).
    case directoryMissing(directory: String, file: String)
    /// A system call failed; `code` is its errno.
    case system(operation: String, file: String, code: Int32)

    public var description: String {
        switch self {
        case .notAFileURL(let url):
            return "\(url): not a file URL"
        case .directoryMissing(let directory, let file):
            return "\(file): cannot write: directory \(directory) does not exist"
        case .system(let operation, let file, let code):
            return "\(file): \(operation) failed: \(AtomicFileError.message(for: code)) (errno \(code))"
        }
    }

    static func message(for code: Int32) -> String {
        guard let p = strerror(code) else { return "error \(code)" }
        return String(cString: p)
    }
}
