import Foundation
public import TandemCore

/// One loop per server that follows a store's commit feed and tells every subscriber which
/// channels advanced (live push listens here). It uses only `ServerStorage`'s feed, so it
/// sees the commits of every server instance sharing the store; it runs while someone
/// listens.
public actor CommitFeed {
    let storage: any ServerStorage
    private var subscribers: [Int: CommitMailbox] = [:]
    private var nextID = 0
    private var loop: Task<Void, Never>?
    /// Whether the loop holds its starting position; subscribers wait for it.
    private var positioned = false
    private var waitingForPosition: [CheckedContinuation<Void, Never>] = []
    /// Subscribers were let go before the loop had a position: they get a reset when it has one.
    private var owesReset = false

    public init(storage: any ServerStorage) {
        self.storage = storage
    }

    /// Every commit made after this call returns, coalesced while unread (`CommitMailbox`:
    /// a subscriber that stops reading holds one `Commits`, never a queue);
    /// `unsubscribe(id)` ends it. The first subscriber starts the loop and returns once the
    /// loop has read the head (or failed to, once), so a commit made right after cannot be
    /// taken for the start.
    public func subscribe() async -> (id: Int, commits: CommitMailbox) {
        nextID += 1
        let id = nextID
        let mailbox = CommitMailbox()
        subscribers[id] = mailbox
        if loop == nil { loop = Task { await self.follow() } }
        if !positioned {
            await withCheckedContinuation { waitingForPosition.append($0) }
        }
        return (id, mailbox)
    }

    public func unsubscribe(_ id: Int) {
        subscribers.removeValue(forKey: id)?.finish()
        if subscribers.isEmpty {
            loop?.cancel()
            loop = nil
            owesReset = false
            markPositioned(false)
        }
    }

    public var subscriberCount: Int { subscribers.count }

    /// Lets the waiting subscribers go although the loop has no position (the store did not
    /// answer): they are owed a reset once it has one, since the commits made until then
    /// cannot be told apart (PROTOCOL.md §9.12).
    private func releaseUnpositioned() {
        if !subscribers.isEmpty { owesReset = true }
        markPositioned(false)
    }

    private func markPositioned(_ value: Bool) {
        positioned = value
        let waiting = waitingForPosition
        waitingForPosition = []
        for continuation in waiting { continuation.resume() }
    }

    private func follow() async {
        var position: Int64? = nil
        while !Task.isCancelled {
            do {
                guard let from = position else {
                    let head: Int64
                    do {
                        head = try await storage.head()
                    } catch {
                        // A loop cancelled meanwhile (its subscribers left) touches nothing:
                        // a newer loop may serve newer subscribers.
                        guard !Task.isCancelled else { return }
                        if !positioned { releaseUnpositioned() }
                        throw error
                    }
                    guard !Task.isCancelled else { return }
                    position = head
                    if owesReset {
                        owesReset = false
                        for mailbox in subscribers.values { mailbox.post(Commits(head: head, channels: [:], reset: true)) }
                    }
                    if !positioned { markPositioned(true) }
                    continue
                }
                try await storage.awaitCommit(after: from, timeout: .seconds(1))
                let commits = try await storage.commits(after: from)
                guard !Task.isCancelled else { return }
                guard commits.head != from || commits.reset else { continue }
                position = commits.head
                for mailbox in subscribers.values { mailbox.post(commits) }
            } catch {
                // The store is unreachable for now: try again shortly; nothing is lost,
                // the next read covers everything after `position`.
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }
}

/// Wakes the waiters of one process at once when it commits; other processes' commits are
/// seen by polling (`SQLiteServerStorage.awaitCommit`) or by PostgreSQL's notifications.
package final class CommitSignal: @unchecked Sendable {
    private struct Waiters {
        var next = 0
        /// How many times `fire()` was called: a waiter that read it before looking at the
        /// store returns at once if it moved meanwhile, so no commit slips between the look
        /// and the wait.
        var fired = 0
        var continuations: [Int: CheckedContinuation<Void, Never>] = [:]
    }
    // NSLock, not Synchronization's Mutex: ThreadSanitizer (a CI step) sees pthread locks.
    private let lock = NSLock()
    private var state = Waiters()

    package init() {}

    private func locked<T>(_ body: (inout Waiters) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&state)
    }

    package func fire() {
        let woken = locked { state in
            state.fired += 1
            defer { state.continuations.removeAll() }
            return Array(state.continuations.values)
        }
        for continuation in woken { continuation.resume() }
    }

    /// Returns once `head()` differs from `position` (at once if it does), or after
    /// `timeout`: woken by `fire()`, and looking at `head()` every `poll` besides (commits
    /// this signal does not hear of: another process's, a missed notification).
    package func awaitHead(after position: Int64, timeout: Duration, poll: Duration, head: () async throws -> Int64) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, !Task.isCancelled {
            let since = fired
            if try await head() != position { return }
            await wait(since: since, upTo: min(poll, deadline - ContinuousClock.now))
        }
    }

    /// The number of `fire()` calls so far, for `wait(since:upTo:)`.
    package var fired: Int { locked { $0.fired } }

    /// Returns at the first `fire()` after the `since`-th (at once if there was one), or
    /// after `interval`.
    package func wait(since: Int, upTo interval: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: interval) }
            group.addTask { await self.nextFire(since: since) }
            _ = await group.next()
            group.cancelAll()
        }
    }

    private func nextFire(since: Int) async {
        let id = locked { state in
            state.next += 1
            return state.next
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let cancelled = locked { state in
                    if Task.isCancelled || state.fired != since { return true }
                    state.continuations[id] = continuation
                    return false
                }
                if cancelled { continuation.resume() }
            }
        } onCancel: {
            locked { $0.continuations.removeValue(forKey: id) }?.resume()
        }
    }
}
