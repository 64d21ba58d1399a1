/// Where and how ops run: the thread pool kernels split work over, and whether the
/// autodiff graph is recorded. Scoped per task (a task-local), never global mutable state.
public struct ExecutionContext: Sendable {
    public var pool: ThreadPool
    public var recordsGradients: Bool

    public init(pool: ThreadPool = ThreadPool(), recordsGradients: Bool = true) {
        self.pool = pool
        self.recordsGradients = recordsGradients
    }

    @TaskLocal public static var current = ExecutionContext()

    /// The pool kernels use right now.
    @inlinable public static var pool: ThreadPool { current.pool }
}

/// Runs `body` without recording the autodiff graph (inference, evaluation, optimiser steps).
public func withoutGradients<R>(_ body: () throws -> R) rethrows -> R {
    var ctx = ExecutionContext.current
    ctx.recordsGradients = false
    return try ExecutionContext.$current.withValue(ctx, operation: body)
}

/// Runs `body` with kernels limited to `threads` threads.
public func withThreads<R>(_ threads: Int, _ body: () throws -> R) rethrows -> R {
    var ctx = ExecutionContext.current
    ctx.pool = ThreadPool(threads: threads)
    return try ExecutionContext.$current.withValue(ctx, operation: body)
}

/// Elementwise work smaller than this runs on one thread: a thread hop costs more.
public let parallelElementThreshold = 1 << 15
