#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Crash-safe file replacement: readers see either the old file or the complete new one.
///
/// The bytes go to a uniquely named temporary file in the target's directory
/// (`.<name>.tmp-<pid>-<random>`), which is fsynced, renamed over the target, and then the
/// directory is fsynced so the rename itself is durable. If anything fails before the rename
/// (including the body throwing), the temporary file is removed and the target is untouched.
///
/// The target's directory must exist: a missing directory is an error naming it (callers
/// create their directories). If the target exists, the new file takes its permission bits;
/// otherwise it is created with 0666 minus the umask. A symbolic link at the target is
/// replaced by the file (the link's destination is not written through).
public enum AtomicFile {
    /// Atomically replaces the file at `url` with `data`.
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { writer in try writer.write(data) }
    }

    /// Atomically replaces the file at `url` with whatever `body` writes to the writer, which
    /// streams to disk through a small buffer (nothing is collected in memory).
    public static func write(to url: URL, _ body: (AtomicFileWriter) throws -> Void) throws {
        guard url.isFileURL else { throw AtomicFileError.notAFileURL(url.absoluteString) }
        let target = url.standardizedFileURL
        let path = target.path
        let directory = target.deletingLastPathComponent().path
        let name = target.lastPathComponent

        var dirInfo = stat()
        guard stat(directory, &dirInfo) == 0, (dirInfo.st_mode & S_IFMT) == S_IFDIR else {
            throw AtomicFileError.directoryMissing(directory: directory, file: path)
        }

        let suffix = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        let tempPath = directory + "/." + name + ".tmp-\(getpid())-" + suffix
        let fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard fd >= 0 else {
            throw AtomicFileError.system(operation: "creating temporary file \(tempPath)", file: path, code: errno)
        }
        var fdOpen = true
        var renamed = false
        defer {
            if fdOpen { _ = close(fd) }
            if !renamed { _ = unlink(tempPath) }
        }

        // Keep the permission bits of the file being replaced.
        var targetInfo = stat()
        if stat(path, &targetInfo) == 0, (targetInfo.st_mode & S_IFMT) == S_IFREG {
            _ = fchmod(fd, targetInfo.st_mode & 0o7777)
        }

        let writer = AtomicFileWriter(fd: fd, path: path)
        defer { writer.invalidate() }
        try body(writer)
        try writer.flush()
        guard fsync(fd) == 0 else { throw AtomicFileError.system(operation: "fsync", file: path, code: errno) }
        fdOpen = false
        guard close(fd) == 0 else { throw AtomicFileError.system(operation: "close", file: path, code: errno) }
        guard rename(tempPath, path) == 0 else {
            throw AtomicFileError.system(operation: "renaming \(tempPath) over it", file: path, code: errno)
        }
        renamed = true

        // Make the rename durable. This is best effort: the new file is already in place, so
        // reporting a failure here would wrongly suggest the old file was kept.
        let dirFD = open(directory, O_RDONLY | O_CLOEXEC)
        if dirFD >= 0 {
            _ = fsync(dirFD)
            _ = close(dirFD)
        }
    }
}

/// The sink handed to `AtomicFile.write(to:_:)`'s body. Writes are buffered (1 MiB) and large
/// writes go straight to the file. Valid only during the body.
public final class AtomicFileWriter {
    private let fd: Int32
    private let path: String
    private var buffer: UnsafeMutableRawPointer
    private var buffered = 0
    private var valid = true
    public static let bufferSize = 1 << 20

    /// Bytes accepted so far (buffered or written).
    public private(set) var bytesWritten = 0

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
        buffer = UnsafeMutableRawPointer.allocate(byteCount: AtomicFileWriter.bufferSize, alignment: 64)
    }

    deinit { buffer.deallocate() }

    func invalidate() { valid = false }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard valid else { throw AtomicFileError.system(operation: "write after the atomic write ended", file: path, code: EBADF) }
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        bytesWritten += bytes.count
        if buffered + bytes.count <= AtomicFileWriter.bufferSize {
            (buffer + buffered).copyMemory(from: base, byteCount: bytes.count)
            buffered += bytes.count
            return
        }
        try flush()
        if bytes.count >= AtomicFileWriter.bufferSize {
            try writeFully(base, bytes.count)
        } else {
            buffer.copyMemory(from: base, byteCount: bytes.count)
            buffered = bytes.count
        }
    }

    public func write(_ data: Data) throws {
        try data.withUnsafeBytes { try write($0) }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    public func write(_ string: String) throws {
        var s = string
        try s.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }

    func flush() throws {
        if buffered > 0 {
            let n = buffered
            buffered = 0
            try writeFully(UnsafeRawPointer(buffer), n)
        }
    }

    private func writeFully(_ start: UnsafeRawPointer, _ count: Int) throws {
        var done = 0
        while done < count {
            // Keep single writes well below the 2 GiB Linux per-call limit.
            let chunk = min(count - done, 1 << 30)
            let n = systemWrite(fd, start + done, chunk)
            if n < 0 {
                if errno == EINTR { continue }
                throw AtomicFileError.system(operation: "write", file: path, code: errno)
            }
            if n == 0 { throw AtomicFileError.system(operation: "write", file: path, code: EIO) }
            done += n
        }
    }
}

@inline(__always)
private func systemWrite(_ fd: Int32, _ buf: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, buf, count)
    #elseif canImport(Musl)
    return Musl.write(fd, buf, count)
    #else
    return Darwin.write(fd, buf, count)
    #endif
}
