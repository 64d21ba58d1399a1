import Foundation
import Dispatch

/// A thread-safe "please stop" flag, set from a signal handler and read between steps.
/// A lock rather than `Atomic` because the package still builds for macOS 13.
public final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var raised = false

    public init() {}

    public var isRaised: Bool { lock.lock(); defer { lock.unlock() }; return raised }
    public func raise() { lock.lock(); raised = true; lock.unlock() }
}

/// Routes SIGINT (Ctrl-C) to a `StopFlag` through a dispatch source, so the loop can save a
/// checkpoint and exit cleanly instead of dying mid-write. A second Ctrl-C exits at once.
public final class InterruptMonitor: @unchecked Sendable {
    public let flag = StopFlag()
    private let source: DispatchSourceSignal

    public init() {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: DispatchQueue.global())
        let flag = self.flag
        source.setEventHandler {
            if flag.isRaised { _exit(130) }
            flag.raise()
            FileHandle.standardError.write(Data("\ninterrupted: saving a checkpoint after this step (Ctrl-C again to quit now)\n".utf8))
        }
        source.resume()
    }

    deinit {
        source.cancel()
        signal(SIGINT, SIG_DFL)
    }
}
