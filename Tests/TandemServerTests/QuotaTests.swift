import Foundation
import TandemClient
import TandemCore
import TandemProtocol
import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// Each member keeps at most a quota of held bytes on the server: a push past it is refused
/// whole with 413 `over-quota` and a message naming the quota; deleting frees space.
@Suite("Member quota")
struct QuotaTests {
    /// The bytes of the changes the server holds in a member's channel, counted from the
    /// changes themselves.
    static func counted(_ storage: any CenterStore, _ member: MemberID) async throws -> Int64 {
        try await storage.state(of: member).heldChanges.reduce(0) { $0 + Int64($1.canonicalBytes.count) }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func aPushPastTheQuota_isRefusedWhole_andDeletingFreesSpace(storeKind: ServerStoreKind) async throws {
        var limits = SyncServer.Limits()
        limits.memberQuotaBytes = 4_000
        let (dir, server) = try await InProcessServer.center("quota", store: storeKind, limits: limits)
        defer { withExtendedLifetime(dir) {} }
        let phone = try await server.device(dir, "phone")
        let member = try #require(try phone.binding()?.member)
        var edit = JournalEdit()
        edit.mood = 3
        edit.craving = 2
        edit.text = String(repeating: "a", count: 1_500)
        let (first, _) = try phone.write(try edit.recordEdit(), to: nil, clock: SystemWallClock())
        _ = try await Syncer(store: phone).sync()
        let used = try await server.storage.usage(of: member)
        await #expect(used == (try Self.counted(server.storage, member)) && used > 1_500)

        for _ in 0..<2 { _ = try phone.write(try edit.recordEdit(), to: nil, clock: SystemWallClock()) }
        // Another device of the member writes a little, which still fits.
        let tablet = try await server.device(dir, "tablet", linkedTo: phone)
        let (small, _) = try tablet.write(try moodEntry(6), to: nil, clock: SystemWallClock())
        _ = try await Syncer(store: tablet).sync()
        let usedWithTablet = try await server.storage.usage(of: member)
        await #expect {
            _ = try await Syncer(store: phone).sync()
        } throws: { error in
            guard case SyncError.server(let status, let code, let message) = error else { return false }
            return status == 413 && code == "over-quota" && message.contains("quota")
        }
        #expect(try await server.storage.usage(of: member) == usedWithTablet, "nothing of the refused batch counted")
        await #expect(try Self.counted(server.storage, member) == usedWithTablet, "nor stored")
        #expect(try phone.record(small) != nil, "over quota, the sync still pulled what others wrote")
        #expect(used < usedWithTablet)

        // Deleting the first entry frees its text: the outbox, delete included, then fits.
        _ = try phone.write(.delete(.journal), to: first, clock: SystemWallClock())
        #expect(try await Syncer(store: phone).sync().pushed > 0)
        let afterDelete = try await server.storage.usage(of: member)
        await #expect(afterDelete == (try Self.counted(server.storage, member)))
        #expect(afterDelete <= limits.memberQuotaBytes)
    }

    /// A batch over the quota is rolled back after it has numbered its changes; a batch of
    /// the same member committed in the same group must number from where the channel
    /// really stands (a store that remembered the rolled-back head, PostgreSQL's read-ahead
    /// for one, would leave a gap and tell the device a wrong step).
    @Test(arguments: ServerStoreKind.allCases)
    func aBatchOverQuota_leavesNoGap_forTheMembersNextBatchInTheSameGroup(storeKind: ServerStoreKind) async throws {
        let (dir, server) = try await InProcessServer.center("quota-group", store: storeKind)
        defer { withExtendedLifetime(dir) {} }
        let phone = try await server.device(dir, "phone")
        let tablet = try await server.device(dir, "tablet", linkedTo: phone)
        let member = try #require(try phone.binding()?.member)
        func principal(_ store: ReplicaStore) async throws -> Principal {
            try await server.storage.authenticate(tokenHash: Secrets.hash(try #require(try store.binding()).token))
        }
        let storage = server.storage
        let (phoneAs, tabletAs) = (try await principal(phone), try await principal(tablet))
        let rounds = 30
        var phoneBatches: [[Change]] = [], tabletBatches: [[Change]] = []
        for round in 0..<rounds {
            phoneBatches.append(try phone.write(try moodEntry(round % 11), to: nil, clock: SystemWallClock()).1)
            tabletBatches.append(try tablet.write(try moodEntry(round % 11), to: nil, clock: SystemWallClock()).1)
        }
        // The two devices push at once, each its batches in order: the phone's are all over
        // a quota of one byte, the tablet's all fit.
        let (phoneWork, tabletWork) = (phoneBatches, tabletBatches)
        async let phoneResults: [Bool] = {
            var refused: [Bool] = []
            for changes in phoneWork {
                do {
                    _ = try await storage.push(changes, from: phoneAs, repush: false, nowMillis: SystemWallClock().nowMillis(), maxSkewMillis: 60_000, quotaBytes: 1)
                    refused.append(false)
                } catch ServerError.overQuota { refused.append(true) }
            }
            return refused
        }()
        async let tabletSteps: [ChannelStep?] = {
            var steps: [ChannelStep?] = []
            for changes in tabletWork {
                let outcome = try await storage.push(
                    changes, from: tabletAs, repush: false, nowMillis: SystemWallClock().nowMillis(), maxSkewMillis: 60_000, quotaBytes: 1 << 30)
                steps.append(outcome.ownChannel)
            }
            return steps
        }()
        #expect(try await phoneResults == Array(repeating: true, count: rounds), "every phone batch is over the quota")
        let steps = try await tabletSteps.map { try #require($0) }
        // The tablet's steps follow one another with no gap, from the channel's start.
        #expect(steps.first?.from == 0)
        for (step, next) in zip(steps, steps.dropFirst()) { #expect(next.from == step.to, "\(steps.map { ($0.from, $0.to) })") }
        let held = try await storage.read { try $0.held(in: member, after: 0, limit: 100_000) }.map(\.sequence)
        #expect(held == Array(1...Int64(held.count)), "the channel's numbers run without a gap")
        #expect(held.count == tabletBatches.joined().count)
        #expect(steps.last?.to == Int64(held.count))
        await #expect(try await storage.usage(of: member) == (try Self.counted(storage, member)))
    }
}

