import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOWebSocket
import Synchronization
import TandemProtocol
public import TandemStore

/// `tandem sync --watch`: stays connected to the server's live endpoint and syncs when a
/// subscription advances, when another command writes to the home (inotify), and once
/// at the start and after every reconnection. Reconnects with backoff and jitter.
public struct LiveWatch: Sendable {
    public let store: ReplicaStore
    public let homeDirectory: String
    public let allowInsecure: Bool

    public init(store: ReplicaStore, homeDirectory: String, allowInsecure: Bool = false) {
        self.store = store
        self.homeDirectory = homeDirectory
        self.allowInsecure = allowInsecure
    }

    /// What a watch reports as it goes.
    public enum Event: Sendable {
        case connected
        case disconnected(reason: String)
        case synced(Syncer.Report)
        /// A sync failed for a reason that may pass (the network, the server's trouble).
        case syncFailed(String)
    }

    /// Runs until cancelled, or until the device can no longer sync (revoked, not enrolled,
    /// refused for good), which it throws. `sync` runs one sync, pulling too when its
    /// argument says so (the caller takes the home's sync lock around it): a local write
    /// only needs its push, the server's notices need a pull.
    public func run(
        sync: @escaping @Sendable (_ pull: Bool) async throws -> Syncer.Report, onEvent: @escaping @Sendable (Event) -> Void
    ) async throws {
        guard let binding = try store.binding() else { throw SyncError.notEnrolled }
        _ = try HTTPTransport(server: binding.server, allowInsecure: allowInsecure)
        let trigger = Trigger()
        let watcher = try DirectoryWatcher(directory: homeDirectory)
        defer { watcher.stop() }
        trigger.request(pull: true)

        try await withThrowingTaskGroup(of: Void.self) { group in
            // A consent's expiry is enforced at its time, connected or not (PROTOCOL.md §9.4).
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(1))
                    _ = try? store.purgeExpired(localMillis: SystemWallClock().nowMillis())
                }
            }
            // Syncs one at a time; requests that arrive meanwhile collapse into one more sync,
            // which pulls if any of them asked for a pull.
            // A sync that fails for now is asked for again after 1 s, 2 s … up to 30 s:
            // what it was asked to fetch or send is not forgotten until a sync has done it.
            // Until then a local write alone (a push) does not try sooner: it joins what is
            // owed. A server notice does, since the server has just been heard from.
            group.addTask {
                var retry: Task<Void, Never>? = nil
                defer { retry?.cancel() }
                var backoff = Self.firstRetry
                var retryAt: ContinuousClock.Instant? = nil
                // What failed syncs were asked and no sync has done since.
                var owed = Trigger.Request()
                for await _ in trigger.wakeups {
                    guard var request = trigger.take() else { continue }
                    // A notice about what this device itself pushed (its cursors already
                    // stand where the notice says) needs no pull.
                    var pull = request.pull || Self.needsPull(noticed: request.noticed, stored: (try? store.cursors()) ?? [:])
                    guard pull || request.push else { continue }
                    if !pull, let retryAt, ContinuousClock.now < retryAt {
                        request.pull = pull
                        owed.merge(request)
                        continue
                    }
                    // A sync that goes now takes what failed syncs still owe: a write that
                    // comes once the retry is due (its timer not yet run) pulls too, instead
                    // of a push now and the owed pull after it.
                    if owed.pull || !owed.noticed.isEmpty { pull = true }
                    request.pull = pull
                    do {
                        onEvent(.synced(try await sync(pull)))
                        backoff = Self.firstRetry
                        retryAt = nil
                        retry?.cancel()
                        // Every sync pushes; a pull fetches whatever the cursors say.
                        owed.push = false
                        if pull { owed = Trigger.Request() }
                        // A pull still owed goes now: the server answers again.
                        if owed.pull || !owed.noticed.isEmpty {
                            trigger.restore(owed)
                            owed = Trigger.Request()
                        }
                    } catch let error as SyncError where !error.isTransient {
                        throw error
                    } catch {
                        // The watch is ending: nothing failed.
                        if Task.isCancelled { return }
                        onEvent(.syncFailed("\(error)"))
                        // The newer request's notices win.
                        request.merge(owed)
                        owed = request
                        let delay = backoff
                        backoff = min(backoff * 2, Self.lastRetry)
                        retryAt = ContinuousClock.now + delay
                        retry?.cancel()
                        retry = Task { [owed] in
                            do { try await Task.sleep(for: delay) } catch { return }
                            trigger.restore(owed)
                        }
                    }
                }
            }
            // The server's notices.
            group.addTask {
                try await listen(server: binding.server, token: binding.token, trigger: trigger, onEvent: onEvent)
            }
            // Local writes by other commands: push when the outbox holds something. A
            // writer's last WAL write comes before its commit is visible (it fsyncs first,
            // and making the commit visible raises no file event), so an outbox that still
            // looks empty is looked at again shortly; every new write starts the looking
            // over, since the latest write is the one to find. Only other connections add
            // to the outbox (this process's syncs empty it), so a quick look reads it only
            // when one of them committed since it was last seen empty: the events of this
            // process's own writes cost no read. When the quick looks find nothing, a last
            // look waits until no other connection is writing (`awaitOtherWriters`): a
            // commit whose fsync outlasted the quick looks is visible then (without it, such
            // a write waited for the 30 s retry; the write-to-visible benchmark saw 3 in
            // 8,320).
            group.addTask {
                let seen = EmptyOutbox()
                var looking: Task<Void, Never>? = nil
                defer { looking?.cancel() }
                for await _ in watcher.changes {
                    looking?.cancel()
                    looking = Task {
                        for delay in Self.outboxLooks {
                            if delay > .zero {
                                do { try await Task.sleep(for: delay) } catch { return }
                            }
                            // Read before the outbox: a commit in between is then seen by both.
                            let version = try? store.othersCommits()
                            if let version, seen.stillEmpty(at: version) { continue }
                            guard let count = try? store.outboxCount() else {
                                // Unreadable for now: let a sync find out.
                                trigger.request(pull: false)
                                return
                            }
                            if count > 0 {
                                trigger.request(pull: false)
                                return
                            }
                            if let version { seen.empty(at: version) }
                        }
                        do {
                            try await store.awaitOtherWriters()
                        } catch {
                            // Still locked, or unreadable: let a sync find out.
                            if !Task.isCancelled { trigger.request(pull: false) }
                            return
                        }
                        guard !Task.isCancelled else { return }
                        if (try? store.outboxCount()) ?? 1 > 0 { trigger.request(pull: false) }
                    }
                }
            }
            // A failed push (offline) is tried again now and then without any new write.
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(30))
                    if (try? store.outboxCount()) ?? 0 > 0 { trigger.request(pull: false) }
                }
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    /// Whether a notice's cursors say something the store has not pulled: any subscription
    /// whose stored cursor is not the notice's.
    static func needsPull(noticed: [String: String], stored: [String: String]) -> Bool {
        noticed.contains { stored[$0.key] != $0.value }
    }

    /// How soon a failed sync is tried again, at first and at most.
    static let firstRetry: Duration = .seconds(1)
    static let lastRetry: Duration = .seconds(30)

    /// When the outbox is looked at after a write to the home: at once, then ever more
    /// rarely for about 200 ms.
    static let outboxLooks: [Duration] = [0, 0.5, 1, 2, 3, 5, 10, 25, 50, 100].map { .microseconds(Int64($0 * 1000)) }

    /// Connects, reconnecting after 0.2 s, 0.4 s … up to 30 s (each with up to 50 % jitter);
    /// a connection that lived resets the delay. A close for revocation ends the watch.
    private func listen(
        server: String, token: String, trigger: Trigger, onEvent: @escaping @Sendable (Event) -> Void
    ) async throws {
        var configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 16)
        configuration.additionalHeaders[.authorization] = "Bearer \(token)"
        configuration.additionalHeaders[HTTPField.Name(WireProtocol.header)!] = WireProtocol.version
        var logger = Logger(label: "tandem-live")
        logger.logLevel = .critical
        var delay = 0.2
        var announcedDown = false
        while !Task.isCancelled {
            let connected = Atomic(false)
            var reason = "connection lost"
            do {
                let close = try await WebSocketClient.connect(url: server + "/v1/live", configuration: configuration, logger: logger) { inbound, _, _ in
                    for try await message in inbound.messages(maxSize: 1 << 16) {
                        guard case .text(let text) = message else { continue }
                        guard let notice = LiveMessage(frame: text) else {
                            // A notice this device cannot read still says something changed.
                            trigger.request(pull: true)
                            continue
                        }
                        if !connected.exchange(true, ordering: .relaxed) { onEvent(.connected) }
                        if notice.type == "advanced", let cursors = notice.cursors {
                            trigger.notice(cursors)
                        } else {
                            trigger.request(pull: true)
                        }
                    }
                }
                if let close, close.closeCode == .unknown(LiveCloseCode.revoked) {
                    throw SyncError.server(status: 401, code: ErrorCode.revoked.rawValue, message: close.reason ?? "This device was revoked.")
                }
                reason = close?.reason ?? "the server closed the connection"
            } catch let error as SyncError {
                throw error
            } catch {
                reason = "cannot connect"
            }
            // Said once per outage, not at every failed attempt.
            if connected.load(ordering: .relaxed) {
                delay = 0.2
                announcedDown = false
            }
            if !announcedDown { onEvent(.disconnected(reason: reason)) }
            announcedDown = true
            try await Task.sleep(for: .seconds(delay * Double.random(in: 1...1.5)))
            delay = min(delay * 2, 30)
        }
    }
}

/// The store's `othersCommits()` when the outbox was last seen empty, shared by the looks
/// after inotify events (a cancelled look may still be finishing when the next starts).
final class EmptyOutbox: @unchecked Sendable {
    // @unchecked: `version` is read and written under `lock` only.
    private let lock = NSLock()
    private var version: Int? = nil

    func empty(at version: Int) { lock.withLock { self.version = version } }

    /// Whether no other connection committed since the outbox was seen empty.
    func stillEmpty(at version: Int) -> Bool { lock.withLock { self.version == version } }
}

/// What `LiveWatch` has been asked to do since its last sync; `wakeups` says that
/// something was asked. Requests that arrive while a sync runs collapse into one.
final class Trigger: @unchecked Sendable {
    struct Request: Equatable {
        /// A local write: push.
        var push = false
        /// Pull whatever the cursors say (the start, a reconnection, a notice without cursors).
        var pull = false
        /// The latest notice's cursor of each subscription it named: pull unless the store's
        /// cursors already are these.
        var noticed: [String: String] = [:]

        /// Adds an older request's asks; this one's notices win.
        mutating func merge(_ older: Request) {
            pull = pull || older.pull
            push = push || older.push
            noticed.merge(older.noticed) { mine, _ in mine }
        }
    }

    let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    // NSLock, not Synchronization's Mutex: ThreadSanitizer (a CI step) sees pthread locks.
    private let lock = NSLock()
    private var pending: Request? = nil

    init() {
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// A sync: a push, and a pull when `pull`.
    func request(pull: Bool) {
        lock.withLock {
            var request = pending ?? Request()
            if pull { request.pull = true } else { request.push = true }
            pending = request
        }
        wake.yield()
    }

    /// A server notice with cursors: a later notice's cursor replaces an earlier one's.
    func notice(_ cursors: [String: String]) {
        lock.withLock {
            var request = pending ?? Request()
            request.noticed.merge(cursors) { _, later in later }
            pending = request
        }
        wake.yield()
    }

    /// Asks again for what failed syncs were asked, merged with whatever was asked since.
    func restore(_ request: Request) {
        lock.withLock {
            var merged = pending ?? Request()
            merged.merge(request)
            pending = merged
        }
        wake.yield()
    }

    /// What was asked since the last call (nil: nothing), and forgets it.
    func take() -> Request? {
        lock.withLock {
            defer { pending = nil }
            return pending
        }
    }
}
