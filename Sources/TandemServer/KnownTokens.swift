import Foundation
import TandemCore

/// Tokens this server has seen valid, with the principal each names, so that a pull (every
/// device's most frequent request) need not look its token up in a read of its own: the
/// pull's read checks it again (`TokenCheck`), in the same snapshot as its pages. Nothing
/// here is ever trusted without that check: a revoked token is refused by the read, and
/// forgotten here.
final class KnownTokens: @unchecked Sendable {
    // @unchecked: `principals` is read and written under `lock` only. NSLock, not
    // Synchronization's Mutex: ThreadSanitizer (a CI step) sees pthread locks.
    private let lock = NSLock()
    private var principals: [[UInt8]: Principal] = [:]
    /// At most this many tokens are remembered; when full, all are forgotten at once (each
    /// device's next pull looks its token up again).
    let capacity: Int

    init(capacity: Int = 100_000) { self.capacity = capacity }

    func principal(for tokenHash: [UInt8]) -> Principal? {
        lock.withLock { principals[tokenHash] }
    }

    func remember(_ principal: Principal, for tokenHash: [UInt8]) {
        lock.withLock {
            if principals.count >= capacity { principals.removeAll(keepingCapacity: true) }
            principals[tokenHash] = principal
        }
    }

    func forget(_ tokenHash: [UInt8]) {
        _ = lock.withLock { principals.removeValue(forKey: tokenHash) }
    }
}
