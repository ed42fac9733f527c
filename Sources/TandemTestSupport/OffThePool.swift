public import Foundation

/// Runs `body`, which blocks (waits for a process, reads a pipe), on a thread of its own
/// and resumes when it returns.
///
/// Never block the concurrency pool instead: it has as many threads as the machine has
/// cores, and the suite's in-process servers answer on it. On two cores, two tests waiting
/// there for a `tandem` process leave no thread for any server, and requests all over the
/// suite stall until they time out.
public func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try body() })
        }
    }
}
