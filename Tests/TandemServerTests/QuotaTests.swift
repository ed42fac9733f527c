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
}
