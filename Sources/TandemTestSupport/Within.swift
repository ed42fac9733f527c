/// `body`'s result, or `TimedOut` after `limit`: a test never waits forever. It returns at
/// the deadline even when `body` ignores cancellation (awaiting another task's value, a
/// connection that never closes); `body` is cancelled then and left to end on its own.
public func within<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let answered = Locked(false)
    let work = Locked<Task<Void, Never>?>(nil)
    let timer = Locked<Task<Void, Never>?>(nil)
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        func answer(_ result: Result<T, any Error>) {
            let first = answered.withLock { done in
                defer { done = true }
                return !done
            }
            if first {
                timer.withLock { $0?.cancel() }
                continuation.resume(with: result)
            }
        }
        work.withLock {
            $0 = Task {
                do { answer(.success(try await body())) } catch { answer(.failure(error)) }
            }
        }
        timer.withLock {
            $0 = Task {
                guard (try? await Task.sleep(for: limit)) != nil else { return }
                work.withLock { $0?.cancel() }
                answer(.failure(TimedOut(limit: limit)))
            }
        }
    }
}

/// What `within` throws when its body did not finish in time.
public struct TimedOut: Error, CustomStringConvertible {
    public var limit: Duration
    public var description: String { "did not finish within \(limit)" }
}

/// Whether `condition` holds within `limit`, looked at every 20 ms (and once more at the
/// deadline: a busy machine may wake the test late).
public func eventually(within limit: Duration, _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while true {
        if condition() { return true }
        guard ContinuousClock.now < deadline else { return false }
        try? await Task.sleep(for: .milliseconds(20))
    }
}
