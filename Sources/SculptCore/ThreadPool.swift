import Dispatch
import Foundation
import Synchronization

/// A fixed-width pool of worker threads that kernels split work across.
///
/// `threadCount - 1` persistent helper threads (shared by every pool of the same width) join
/// the calling thread on each `parallelFor`. Helpers spin briefly between jobs, so the many
/// small parallel regions of batch-1 inference do not each pay a sleep/wake round trip, and
/// work is claimed chunk by chunk, so a helper that the OS has descheduled never holds up the
/// caller: the caller simply runs the unclaimed chunks itself. Passed explicitly (or through
/// `ExecutionContext.current`), never held in mutable global state.
public struct ThreadPool: Sendable, Equatable {
    public let threadCount: Int
    private let team: WorkerTeam?

    public init(threads: Int = ThreadPool.machineThreadCount) {
        threadCount = max(1, threads)
        team = threadCount > 1 ? WorkerTeam.shared(helpers: threadCount - 1) : nil
    }

    public static func == (lhs: ThreadPool, rhs: ThreadPool) -> Bool { lhs.threadCount == rhs.threadCount }

    /// The number of cores this process may use.
    public static var machineThreadCount: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// A pool that runs everything on the calling thread.
    public static let serial = ThreadPool(threads: 1)

    /// Runs `body(i)` for every `i` in `0..<count`, spreading indices over the pool's threads.
    /// Indices are handed out in contiguous blocks so each thread touches neighbouring data.
    public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        guard let team, count > 1 else {
            for i in 0..<count { body(i) }
            return
        }
        // A few blocks per thread: small enough to rebalance when a thread starts late,
        // large enough that each block is a contiguous run of indices.
        let blocks = min(count, threadCount * 4, WorkerTeam.maximumChunks)
        if blocks == count {
            team.run(chunks: count, body)
            return
        }
        team.run(chunks: blocks) { block in
            for i in (count * block / blocks)..<(count * (block + 1) / blocks) { body(i) }
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

/// Persistent helper threads plus the lock-free hand-off of one job at a time.
///
/// A job is published as one 64-bit ticket: generation (32 bits) | chunk count (16) | next
/// chunk (16). Claiming a chunk is a compare-and-swap on the ticket, so a thread holding a
/// stale generation can never claim a chunk of a newer job, and the job's body pointer is read
/// only after a successful claim (the release store of the ticket orders it). The caller
/// returns only when every chunk has completed, so the body never outlives the call.
/// `@unchecked Sendable`: all shared state is atomics, or guarded by `sleep`'s lock.
final class WorkerTeam: @unchecked Sendable {
    static let maximumChunks = 0xFFFF

    private let ticket = Atomic<UInt64>(0)
    private let completed = Atomic<Int>(0)
    private let body = Atomic<UInt>(0)
    private let busy = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    private let sleep = NSCondition()
    /// Generation of the last job; only the caller that holds `busy` touches it.
    private var generation: UInt64 = 0

    private static let teams = Mutex<[Int: WorkerTeam]>([:])

    /// The team with `helpers` threads, created on first use and kept for the process.
    static func shared(helpers: Int) -> WorkerTeam {
        teams.withLock { teams in
            if let team = teams[helpers] { return team }
            let team = WorkerTeam(helpers: helpers)
            teams[helpers] = team
            return team
        }
    }

    private init(helpers: Int) {
        for _ in 0..<helpers {
            let thread = Thread { [unowned self] in self.helperLoop() }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Runs `work(c)` for every chunk `c` in `0..<chunks` on the caller and the helpers.
    /// A nested or concurrent call (team already busy) runs its chunks on the calling thread.
    func run(chunks: Int, _ work: (Int) -> Void) {
        precondition(chunks > 0 && chunks <= WorkerTeam.maximumChunks, "WorkerTeam: bad chunk count \(chunks)")
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for c in 0..<chunks { work(c) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        withoutActuallyEscaping(work) { work in
            var job = JobBody(work: work)
            withUnsafeMutablePointer(to: &job) { pointer in
                generation &+= 1
                let gen = generation & 0xFFFF_FFFF
                completed.store(0, ordering: .relaxed)
                body.store(UInt(bitPattern: pointer), ordering: .relaxed)
                ticket.store(gen << 32 | UInt64(chunks) << 16, ordering: .sequentiallyConsistent)
                if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                    sleep.lock(); sleep.broadcast(); sleep.unlock()
                }
                var mine = 0
                while let c = claim(generation: gen) {
                    WorkerTeam.invoke(pointer, c)
                    mine += 1
                }
                var done = completed.add(mine, ordering: .acquiringAndReleasing).newValue
                var spins = 0
                while done < chunks {
                    spins += 1
                    if spins > 64 { sched_yield() }
                    done = completed.load(ordering: .acquiring)
                }
            }
        }
    }

    private struct JobBody { let work: (Int) -> Void }

    /// Calls the job's body outside the claim loop, so that the closure is released before
    /// the chunk is counted as completed.
    @inline(never)
    private static func invoke(_ job: UnsafeMutablePointer<JobBody>, _ chunk: Int) {
        job.pointee.work(chunk)
    }

    /// Claims the next chunk of job `generation`, or nil when it has none left (or is over).
    private func claim(generation gen: UInt64) -> Int? {
        var t = ticket.load(ordering: .acquiring)
        while true {
            let next = t & 0xFFFF, count = (t >> 16) & 0xFFFF
            if t >> 32 != gen || next >= count { return nil }
            let (exchanged, original) = ticket.compareExchange(expected: t, desired: t + 1, ordering: .acquiringAndReleasing)
            if exchanged { return Int(next) }
            t = original
        }
    }

    private func helperLoop() {
        var seen: UInt64 = 0
        while true {
            seen = waitForJob(after: seen)
            var mine = 0
            while let c = claim(generation: seen) {
                let job = UnsafeMutablePointer<JobBody>(bitPattern: body.load(ordering: .relaxed))!
                WorkerTeam.invoke(job, c)
                mine += 1
            }
            if mine > 0 { completed.add(mine, ordering: .releasing) }
        }
    }

    /// Spins (then yields, then sleeps) until a job newer than generation `seen` is published.
    private func waitForJob(after seen: UInt64) -> UInt64 {
        let spinUntil = DispatchTime.now().uptimeNanoseconds + 300_000
        var spins = 0
        while true {
            let gen = ticket.load(ordering: .acquiring) >> 32
            if gen != seen { return gen }
            spins += 1
            if spins & 255 == 0 {
                if DispatchTime.now().uptimeNanoseconds > spinUntil { break }
                sched_yield()
            }
        }
        sleep.lock()
        sleepers.add(1, ordering: .sequentiallyConsistent)
        var gen = ticket.load(ordering: .sequentiallyConsistent) >> 32
        while gen == seen {
            sleep.wait()
            gen = ticket.load(ordering: .sequentiallyConsistent) >> 32
        }
        sleepers.subtract(1, ordering: .sequentiallyConsistent)
        sleep.unlock()
        return gen
    }
}
