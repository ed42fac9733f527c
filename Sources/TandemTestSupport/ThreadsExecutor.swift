public import Foundation

/// A task executor with threads of its own, for the suite's in-process servers.
///
/// A server process has the concurrency pool to itself; an in-process server shares it with
/// every test of the suite, and a test that computes for a while (a property test under
/// ThreadSanitizer) holds one of its two threads on this machine. Run under this executor's
/// preference (`Task(executorPreference:)`), a server and the tasks it starts for its
/// connections answer on these threads whatever the tests are doing, as a server of its
/// own would.
public final class ThreadsExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: `jobs` is guarded by `condition`; the threads are never joined.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var next = 0

    /// The executor the in-process servers share.
    public static let servers = ThreadsExecutor(threads: 4, name: "server")

    public init(threads: Int, name: String) {
        for index in 0..<threads {
            Thread.detachNewThread { [self] in
                Thread.current.name = "\(name)-\(index)"
                work()
            }
        }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while next == jobs.count { condition.wait() }
            let job = jobs[next]
            next += 1
            if next == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                next = 0
            }
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
