import Dispatch
import Foundation

/// A fixed-width pool of worker threads that kernels split work across.
///
/// Backed by libdispatch's worker threads, so no thread is created per call; the pool's
/// `threadCount` decides how many chunks run at once. Passed explicitly (or through
/// `ExecutionContext.current`), never held in mutable global state.
public struct ThreadPool: Sendable, Equatable {
    public let threadCount: Int

    public init(threads: Int = ThreadPool.machineThreadCount) {
        threadCount = max(1, threads)
    }

    /// The number of cores this process may use.
    public static var machineThreadCount: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// A pool that runs everything on the calling thread.
    public static let serial = ThreadPool(threads: 1)

    /// Runs `body(i)` for every `i` in `0..<count`, spreading indices over the pool's threads.
    /// Indices are handed out in contiguous blocks so each thread touches neighbouring data.
    public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        let workers = min(threadCount, count)
        if workers == 1 {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendableBox(body)
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let start = count * w / workers
                let end = count * (w + 1) / workers
                for i in start..<end { box.value(i) }
            }
        }
    }

    /// Runs `body(range)` on contiguous sub-ranges of `0..<count`, at most one per thread,
    /// each at least `minimumChunk` long (small work is not worth a thread hop).
    public func parallelRanges(_ count: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let workers = max(1, min(threadCount, count / max(1, minimumChunk)))
        if workers == 1 {
            body(0..<count)
            return
        }
        parallelFor(workers) { w in
            body((count * w / workers)..<(count * (w + 1) / workers))
        }
    }
}

/// Carries a value across a concurrency boundary whose safety the caller guarantees
/// (kernels hand disjoint output ranges to each thread).
public struct UncheckedSendableBox<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}
