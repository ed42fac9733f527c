import Foundation
import GRDB
@testable import TandemClient
import TandemCore
import TandemProtocol
@testable import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// Every position a device sees (its cursors, the `advanced` positions of a push, the
/// cursors of a live notice) counts its own channel's changes alone: a patient who syncs
/// twice learns nothing of what other members wrote in between (PROTOCOL.md §9.4a).
@Suite("Channel positions", .serialized)
struct ChannelPositionTests {
    func sequence(_ store: ReplicaStore) throws -> Int64 {
        let text = try #require(try store.cursors()[SubscriptionKey.own])
        return try Cursor(parsing: text).sequence
    }

    @Test(arguments: ServerStoreKind.allCases)
    func aDevicesPositions_sayNothingAboutOtherMembersWrites(storeKind: ServerStoreKind) async throws {
        let (dir, server) = try await InProcessServer.center("tandem-positions", store: storeKind)
        let patient = try await server.device(dir, "patient")
        let other = try await server.device(dir, "other")
        let member = try #require(try patient.binding()).member

        try patient.write(try moodEntry(3), to: nil, clock: SystemWallClock())
        let first = try await Syncer(store: patient).sync()
        let before = try sequence(patient)
        #expect(before == Int64(first.pushed), "the channel holds the patient's changes alone")

        // Another member writes a lot; the patient's positions do not move with it.
        for value in 0..<20 { try other.write(try moodEntry(value % 11), to: nil, clock: SystemWallClock()) }
        let busy = try await Syncer(store: other).sync()
        #expect(busy.pushed >= 20)
        let quiet = try await Syncer(store: patient).sync()
        #expect(quiet.pulled == 0)
        #expect(try sequence(patient) == before)

        try patient.write(try moodEntry(4), to: nil, clock: SystemWallClock())
        let second = try await Syncer(store: patient).sync()
        #expect(second.pulled == 0, "the push's answer moved the cursor over its own changes")
        #expect(try sequence(patient) == before + Int64(second.pushed), "nothing of the other member's \(busy.pushed) changes shows")

        // What a live notice would carry for the patient's channel: the same count.
        let feed = try await server.storage.commits(after: 0)
        #expect(feed.channels[member] == before + Int64(second.pushed))
    }

    /// A device that kept a `t1` cursor (all channels counted together) reads its channel
    /// again from zero, and is not told `epochChanged`: nothing is re-pushed.
    @Test(arguments: ServerStoreKind.allCases)
    func aCursorFromBeforeChannelNumbering_readsAgainFromZero(storeKind: ServerStoreKind) async throws {
        let (dir, server) = try await InProcessServer.center("tandem-positions-t1", store: storeKind)
        let phone = try await server.device(dir, "phone")
        for value in 0..<3 { try phone.write(try moodEntry(value), to: nil, clock: SystemWallClock()) }
        let pushed = try await Syncer(store: phone).sync().pushed
        var old = try Cursor(parsing: try #require(try phone.cursors()[SubscriptionKey.own]))
        old.perChannel = false
        old.sequence = 1_000
        let queue = try DatabaseQueue(path: phone.path)
        let oldText = old.encoded
        try await queue.write { try $0.execute(sql: "UPDATE sync_cursor SET value = ?", arguments: [oldText]) }
        try queue.close()

        let again = try await Syncer(store: phone).sync()
        #expect(again.pulled == pushed)
        #expect(again.repushed == 0)
        #expect(try sequence(phone) == Int64(pushed))
        #expect(try phone.cursors()[SubscriptionKey.own]?.hasPrefix("t2.") == true)
    }
}
