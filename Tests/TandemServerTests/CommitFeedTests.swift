import Foundation
import GRDB
import TandemCore
@testable import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// The commit feed of `ServerStorage`: read from the store, so a server instance sees the
/// commits another instance made on the same database (on both stores). The query plan and
/// the signal's own race are SQLite's and the feed's mechanics, tested once.
@Suite("Commit feed")
struct CommitFeedTests {
    var now: UInt64 { SystemWallClock().nowMillis() }

    @Test(arguments: ServerStoreKind.allCases)
    func anotherInstancesCommit_reachesTheFeed_withItsChannel(storeKind: ServerStoreKind) async throws {
        let dir = try TemporaryDirectory()
        let writer = try await storeKind.center(in: dir)
        let reader = try await storeKind.another(on: writer)
        let feed = CommitFeed(storage: reader)

        let code = try await writer.invite(role: .patient, name: "Pat", nowMillis: now)
        let store = try ReplicaStore.create(at: dir.path("phone.sqlite"), name: "phone", role: .patient, wallMillis: now)
        let replica = store.identity.replica
        let enrollment = try await writer.enroll(
            codeHash: Secrets.hashCode(code), replica: replica, deviceName: "phone", tokenHash: Secrets.hash("token-1"),
            expectedRole: nil, expectedMember: nil, nowMillis: now)
        let principal = try await writer.authenticate(tokenHash: Secrets.hash("token-1"))
        #expect(principal.member.hex == enrollment.member)

        // Every commit after subscribe() returns reaches the stream.
        let (id, commits) = await feed.subscribe()
        var edit = JournalEdit()
        edit.mood = 4
        let (_, changes) = try store.write(try edit.recordEdit(), to: nil, clock: SystemWallClock())
        let outcome = try await writer.push(changes, from: principal, repush: false, nowMillis: now, maxSkewMillis: 60_000)
        #expect(outcome.accepted == changes.count)

        // How soon is the benchmarks' business (write-to-visible); here only that it comes.
        // The bound is for a stuck feed (3.3 s seen under ThreadSanitizer with the suite running).
        let seen = try #require(try await within(.seconds(30)) { await commits.first { _ in true } })
        #expect(seen.channels.keys.contains(principal.member))
        #expect(seen.head == (try await writer.head()))
        #expect(seen.channels[principal.member] == Int64(changes.count), "the channel's own count of changes")

        // A replay commits nothing new, and a late reader asks from a position it knows.
        _ = try await writer.push(changes, from: principal, repush: false, nowMillis: now, maxSkewMillis: 60_000)
        let later = try await reader.commits(after: seen.head)
        #expect(later.channels.isEmpty && !later.reset)
        let fromZero = try await reader.commits(after: 0)
        #expect(fromZero.channels[principal.member] == Int64(changes.count))
        await feed.unsubscribe(id)
        #expect(await feed.subscriberCount == 0)
    }

    /// A commit that lands after the feed looked at the store and before it waits must
    /// still wake it (it once waited out its whole poll period, 20 ms, for such a commit).
    /// The bounds are far from the period, not tight: under ThreadSanitizer, with the suite's
    /// CPU-bound tests on both of CI's cores, a wake-up that is at once took over 30 s.
    @Test func aCommitBetweenTheLookAndTheWait_wakesTheWaiter() async throws {
        let signal = CommitSignal()
        let looked = signal.fired
        signal.fire()
        // `within` throws if the waiter sleeps on (its period here is an hour).
        try await within(.seconds(600)) { await signal.wait(since: looked, upTo: .seconds(3_600)) }
        // Without a commit since the look, the wait lasts its period.
        let quiet = try await within(.seconds(600)) {
            let started = ContinuousClock.now
            await signal.wait(since: signal.fired, upTo: .milliseconds(200))
            return ContinuousClock.now - started
        }
        #expect(quiet >= .milliseconds(200))
    }

    /// The feed runs after every commit: it must read the entries after its position, not
    /// the whole table (it once scanned every held change, a third of the server's CPU).
    @Test func theFeedsQuery_searchesAfterItsPosition() throws {
        let dir = try TemporaryDirectory()
        let storage = try SQLiteServerStorage(path: dir.path("center.sqlite"))
        let plan = try storage.pool.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + SQLiteServerStorage.advancedChannels, arguments: [0]).map { $0["detail"] as String }
        }
        #expect(plan.contains { $0.hasPrefix("SEARCH channel_head USING COVERING INDEX channel_head_feed") }, "\(plan)")
        #expect(!plan.contains { $0.hasPrefix("SCAN") }, "\(plan)")
    }

    /// A subscriber that stops reading (a live connection whose device went quiet) holds
    /// one coalesced `Commits`, never a queue, and still learns every channel that advanced.
    @Test func aSubscriberThatStopsReading_holdsOneCoalescedCommits() async throws {
        let mailbox = CommitMailbox()
        let channels = (0..<20).map { _ in MemberID.random() }
        for n in 1...10_000 {
            mailbox.post(Commits(head: Int64(n), channels: [channels[n % 20]: Int64(n)]))
            #expect(mailbox.waiting == 1)
        }
        let merged = try #require(await mailbox.next())
        #expect(merged.head == 10_000 && !merged.reset)
        #expect(merged.channels.count == 20)
        for (index, channel) in channels.enumerated() {
            #expect(merged.channels[channel] == Int64(10_000 - (20 - index) % 20), "each channel at its latest position")
        }
        #expect(mailbox.waiting == 0)
        // A reset among the coalesced commits stays a reset; finishing ends the reader.
        mailbox.post(Commits(head: 3, channels: [:], reset: true))
        mailbox.post(Commits(head: 4, channels: [channels[0]: 4]))
        #expect(try #require(await mailbox.next()).reset)
        let reader = Task { await mailbox.next() }
        mailbox.finish()
        #expect(await reader.value == nil)
        let cancelled = Task { await CommitMailbox().next() }
        cancelled.cancel()
        #expect(await cancelled.value == nil)
    }

    /// A store whose first reads of the head fail (unreachable for a moment).
    struct HeadFailsAtFirst: ForwardingStorage {
        let base: any ServerStorage
        let failures: Locked<Int>

        func head() async throws -> Int64 {
            let fail = failures.withLock { left in
                defer { left = max(0, left - 1) }
                return left > 0
            }
            if fail { throw ServerError.unavailable("the store is unreachable for a moment") }
            return try await base.head()
        }
    }

    /// A subscriber let go before the feed had its position (the store failed to answer) is
    /// told of the commits made meanwhile, as a reset, once the feed has one: without it,
    /// a commit between the device's `hello` pull and the feed's first position went
    /// unannounced (PROTOCOL.md §9.12).
    @Test(arguments: ServerStoreKind.allCases)
    func aSubscriberLetGoBeforeTheFeedHadAPosition_isToldOfTheCommitsMadeMeanwhile(storeKind: ServerStoreKind) async throws {
        let dir = try TemporaryDirectory()
        let store = try await storeKind.center(in: dir)
        let feed = CommitFeed(storage: HeadFailsAtFirst(base: store, failures: Locked(1)))
        let (id, commits) = await feed.subscribe()
        defer { Task { await feed.unsubscribe(id) } }
        let told = try #require(try await within(.seconds(30)) { await commits.first { _ in true } })
        #expect(told.reset, "every channel may have advanced while the feed had no position")
    }
}
