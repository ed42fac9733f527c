import Foundation
public import TandemCore

/// What one subscriber of the commit feed has not read yet, coalesced: however many
/// commits arrive while it does not read (a live connection whose device stopped reading),
/// it holds one `Commits`, each advanced channel with its latest position. So a slow reader
/// costs no more memory than its channels' positions, and still learns every channel that
/// advanced (§9.10).
///
/// ```swift
/// for await commits in mailbox { … }   // ends when the feed unsubscribes it
/// ```
public final class CommitMailbox: AsyncSequence, @unchecked Sendable {
    // @unchecked: every field is read and written under `lock`.
    public typealias Element = Commits

    private let lock = NSLock()
    private var pending: Commits?
    private var waiter: CheckedContinuation<Commits?, Never>?
    private var finished = false

    init() {}

    /// Adds `commits` to what is waiting: the channels merge, each at its highest position;
    /// the head is the latest; a reset stays a reset.
    func post(_ commits: Commits) {
        lock.lock()
        if let waiter {
            self.waiter = nil
            lock.unlock()
            waiter.resume(returning: commits)
            return
        }
        pending = pending.map { Self.merge($0, commits) } ?? commits
        lock.unlock()
    }

    /// Ends the sequence for its reader (after what is pending).
    func finish() {
        lock.lock()
        finished = true
        let waiter = self.waiter
        self.waiter = nil
        lock.unlock()
        waiter?.resume(returning: nil)
    }

    /// How many `Commits` wait unread: 0 or 1, whatever was posted.
    var waiting: Int {
        lock.lock()
        defer { lock.unlock() }
        return pending == nil ? 0 : 1
    }

    static func merge(_ older: Commits, _ newer: Commits) -> Commits {
        var channels = older.channels
        for (channel, last) in newer.channels { channels[channel] = Swift.max(channels[channel] ?? last, last) }
        return Commits(head: newer.head, channels: channels, reset: older.reset || newer.reset)
    }

    /// The next coalesced `Commits`, or nil once finished or cancelled.
    func next() async -> Commits? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Commits?, Never>) in
                lock.lock()
                if let pending {
                    self.pending = nil
                    lock.unlock()
                    continuation.resume(returning: pending)
                } else if finished || Task.isCancelled {
                    lock.unlock()
                    continuation.resume(returning: nil)
                } else {
                    waiter = continuation
                    lock.unlock()
                }
            }
        } onCancel: {
            lock.lock()
            let waiter = self.waiter
            self.waiter = nil
            lock.unlock()
            waiter?.resume(returning: nil)
        }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let mailbox: CommitMailbox
        public mutating func next() async -> Commits? { await mailbox.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(mailbox: self) }
}
