import Foundation

/// Whether a commit removed text that may still sit in the store's WAL, and since when:
/// the background checkpointer scrubs it (`SQLiteServerStorage.checkpointInBackground`).
final class TextScrub: @unchecked Sendable {
    // @unchecked: every field is read and written under `lock` only.
    private let lock = NSLock()
    private var since: ContinuousClock.Instant?
    /// Counts removals, so a scrub that began before one does not clear it.
    private var removals = 0

    /// A commit removed text: scrub by the deadline counted from the first such commit.
    func due() {
        lock.lock()
        removals += 1
        if since == nil { since = .now }
        lock.unlock()
    }

    /// Since when a scrub is due (nil: none), and the removal count a scrub starting now covers.
    var pending: (since: ContinuousClock.Instant, removals: Int)? {
        lock.lock()
        defer { lock.unlock() }
        return since.map { ($0, removals) }
    }

    /// A scrub that began at `removals` finished: nothing is due unless a removal came since.
    func done(covering count: Int) {
        lock.lock()
        if removals == count { since = nil }
        lock.unlock()
    }
}
