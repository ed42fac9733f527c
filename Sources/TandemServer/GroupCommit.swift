import Foundation
import TandemCore

/// The queue of pushes waiting for the server store's next commit.
///
/// Group commit: while one transaction is committing (its fsync is most of a push's cost
/// with `synchronous=FULL`), batches that arrive queue here; the next transaction takes them
/// all, applies each under its own savepoint (a refused batch rolls back alone, the others
/// stay), and commits once: one fsync for the group. No batch is acknowledged before the
/// commit that holds it has returned, so "durable before acknowledged" holds for each.
package final class GroupCommit: @unchecked Sendable {
    // @unchecked: every stored property is read and written under `lock`.

    package struct Batch: Sendable {
        package var request: PushRequest
        package var continuation: CheckedContinuation<PushOutcome, any Error>

        package init(request: PushRequest, continuation: CheckedContinuation<PushOutcome, any Error>) {
            self.request = request
            self.continuation = continuation
        }
    }

    private let lock = NSLock()
    private var waiting: [Batch] = []
    private var scheduled = false
    private var counts = (groups: 0, batches: 0)

    package init() {}

    /// Queues a batch; true when the caller must schedule a group (none is scheduled).
    package func enqueue(_ batch: Batch) -> Bool {
        lock.withLock {
            waiting.append(batch)
            if scheduled { return false }
            scheduled = true
            return true
        }
    }

    /// Every batch waiting, for the group about to commit.
    package func takeAll() -> [Batch] {
        lock.withLock {
            defer { waiting.removeAll(keepingCapacity: true) }
            if !waiting.isEmpty { counts = (counts.groups + 1, counts.batches + waiting.count) }
            return waiting
        }
    }

    /// How many groups were committed, holding how many batches in all.
    package var statistics: (groups: Int, batches: Int) { lock.withLock { counts } }

    /// After a group's commit: true when batches arrived meanwhile and the caller must
    /// schedule the next group; false leaves nothing scheduled.
    package func finishGroup() -> Bool {
        lock.withLock {
            if waiting.isEmpty { scheduled = false }
            return scheduled
        }
    }
}
