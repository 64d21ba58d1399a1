import Dispatch
import Synchronization
import XCTest
@testable import SculptCore

final class ThreadPoolTests: XCTestCase {
    /// Every index runs exactly once, for counts below, at and far above the thread count,
    /// over many back-to-back jobs (the hand-off between generations is where races would show).
    func testEveryIndexRunsExactlyOnce() {
        for threads in [2, 3, 5] {
            let pool = ThreadPool(threads: threads)
            for count in [1, 2, 3, 7, 64, 1001] {
                for _ in 0..<200 {
                    let hits = UnsafeMutablePointer<Int>.allocate(capacity: count)
                    hits.initialize(repeating: 0, count: count)
                    let box = UncheckedSendableBox(hits)
                    pool.parallelFor(count) { i in box.value[i] += 1 }
                    for i in 0..<count where hits[i] != 1 {
                        XCTFail("threads \(threads), count \(count): index \(i) ran \(hits[i]) times")
                        break
                    }
                    hits.deallocate()
                }
            }
        }
    }

    /// A parallelFor inside a parallelFor body, and several threads sharing one pool at once,
    /// both complete with every index run once (the busy pool falls back to the caller).
    func testNestedAndConcurrentCallersComplete() {
        let pool = ThreadPool(threads: 2)
        let total = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<100 {
                pool.parallelFor(6) { _ in
                    pool.parallelFor(5) { _ in total.add(1, ordering: .relaxed) }
                }
            }
        }
        XCTAssertEqual(total.load(ordering: .relaxed), 4 * 100 * 6 * 5)
    }

    func testParallelRangesCoverTheRangeInOrderWithoutOverlap() {
        let pool = ThreadPool(threads: 3)
        for count in [1, 5, 17, 1000] {
            let marks = UnsafeMutablePointer<Int>.allocate(capacity: count)
            marks.initialize(repeating: 0, count: count)
            let box = UncheckedSendableBox(marks)
            pool.parallelRanges(count, minimumChunk: 4) { r in for i in r { box.value[i] += 1 } }
            XCTAssertEqual((0..<count).filter { marks[$0] != 1 }, [], "count \(count)")
            marks.deallocate()
        }
    }
}
