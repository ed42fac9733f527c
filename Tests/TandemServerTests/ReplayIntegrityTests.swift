import Foundation
import TandemClient
import TandemCore
import TandemProtocol
import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// Nothing a device wrote is acknowledged without being kept (DESIGN invariant 7,
/// PROTOCOL.md §9.3): a change is a replay only when the server accepted that very change;
/// a new write under an old id is refused so the device re-stamps it; devices learn their
/// replica's mark and stamp above it; re-pushes come only from a device told to.
@Suite("Replay integrity")
struct ReplayIntegrityTests {
    /// A copy of a store's files, as a file backup of the home would be: open it to put the
    /// backup back.
    static func copyStore(_ path: String, to copy: String) throws {
        for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: path + suffix) {
            try FileManager.default.copyItem(atPath: path + suffix, toPath: copy + suffix)
        }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func aHomePutBackFromABackup_losesNoEntryWrittenAfterwards(storeKind: ServerStoreKind) async throws {
        let (dir, server) = try await InProcessServer.center("replay-restored-home", store: storeKind)
        let phone = try await server.device(dir, "phone")
        let start = SystemWallClock().nowMillis()
        let clock = ManualWallClock(millis: start)
        let (first, _) = try phone.write(try moodEntry(1), to: nil, clock: clock)
        _ = try await Syncer(store: phone, wallClock: clock).sync()
        try Self.copyStore(dir.path("phone.sqlite"), to: dir.path("backup.sqlite"))

        // After the backup: two entries the server accepts.
        clock.advance(byMillis: 1_000)
        let (second, _) = try phone.write(try moodEntry(2), to: nil, clock: clock)
        clock.advance(byMillis: 1_000)
        let (third, _) = try phone.write(try moodEntry(3), to: nil, clock: clock)
        var later = JournalEdit()
        later.mood = 7
        _ = try phone.write(try later.recordEdit(), to: first, clock: clock)
        #expect(try await Syncer(store: phone, wallClock: clock).sync().pushed > 0)

        // The home is put back, and its clock is back at the time of the first of them:
        // the next entry gets the very ids the second one had, another gets ids never used.
        let restored = try ReplicaStore.open(at: dir.path("backup.sqlite"))
        let back = ManualWallClock(millis: start + 1_000)
        let (reused, _) = try restored.write(try moodEntry(4), to: nil, clock: back)
        back.advance(byMillis: 500)
        let (fresh, _) = try restored.write(try moodEntry(5), to: nil, clock: back)
        // An edit the person makes now, under an id never used but below the mark: it is
        // the latest word, so it must win over the mood 7 written before the restore.
        var now = JournalEdit()
        now.mood = 8
        back.advance(byMillis: 1)
        _ = try restored.write(try now.recordEdit(), to: first, clock: back)
        let report = try await Syncer(store: restored, wallClock: back).sync()
        #expect(report.restamped > 0, "the entry under reused ids got new ones")
        #expect(try restored.outboxCount() == 0)

        // A fresh device of the member sees every entry, each with its own mood.
        let tablet = try await server.device(dir, "tablet", linkedTo: phone)
        _ = try await Syncer(store: tablet).sync()
        for (id, mood) in [(first, 8), (second, 2), (third, 3), (reused, 4), (fresh, 5)] as [(RecordID, Int64)] {
            #expect(try tablet.record(id)?.value("mood") == .int(mood), "entry with mood \(mood)")
        }
        // And the restored home stamps above its replica's mark from now on.
        let (_, afterwards) = try restored.write(try moodEntry(6), to: nil, clock: ManualWallClock(millis: start))
        let mark = try #require(try await Self.mark(of: restored, server))
        #expect(afterwards.allSatisfy { $0.timestamp > mark })
    }

    /// The replica's mark as the server tells it in a pull answer.
    static func mark(of store: ReplicaStore, _ server: InProcessServer) async throws -> HybridTimestamp? {
        let token = try #require(try store.binding()?.token)
        let principal = try await server.storage.authenticate(tokenHash: Secrets.hash(token))
        let snapshot = try await server.storage.pull(for: principal, policy: NoGrants(), limit: 1, check: nil) { _, _, _ in [] }
        return snapshot.mark
    }

    @Test(arguments: ServerStoreKind.allCases)
    func theVeryChangeIsAReplay_andAnyOtherAtOrBelowTheMarkIsRefusedForARestamp(storeKind: ServerStoreKind) async throws {
        let (dir, server) = try await InProcessServer.center("replay-ids", store: storeKind)
        let phone = try await server.device(dir, "phone")
        let token = try #require(try phone.binding()?.token)
        let principal = try await server.storage.authenticate(tokenHash: Secrets.hash(token))
        let now = SystemWallClock().nowMillis()
        let clock = ManualWallClock(millis: now)
        let (_, written) = try phone.write(try moodEntry(3), to: nil, clock: clock)
        func push(_ changes: [Change]) async throws -> PushOutcome {
            try await server.storage.push(changes, from: principal, repush: false, nowMillis: now, maxSkewMillis: 60_000)
        }
        let accepted = try await push(written)
        #expect(accepted.accepted == written.count && accepted.replayed == 0)
        #expect(accepted.mark == written.map(\.timestamp).max())
        let again = try await push(written)
        #expect(again.accepted == 0 && again.replayed == written.count)

        // The mood change's id under another value: refused, transient, with the mark.
        var forged = try #require(written.first { $0.field.rawValue == "mood" })
        forged.value = .int(9)
        await #expect {
            _ = try await push([forged])
        } throws: { error in
            guard case ServerError.refused(let refusals, _) = error, let refusal = refusals.first else { return false }
            return refusal.reason == RefusalReason.idReused && !refusal.permanent && refusal.mark == accepted.mark.map { "\($0)" }
        }
        // Two changes under one id in one batch: the same is refused.
        var twin = forged
        twin.value = .int(8)
        let fresh = HybridTimestamp(wallMillis: now - 10_000, counter: 0)
        twin.id.timestamp = fresh
        var twin2 = twin
        twin2.value = .int(7)
        await #expect(throws: ServerError.self) { _ = try await push([twin, twin2]) }
        // An id at or below the mark that was never accepted is refused for a re-stamp too:
        // taken, it would lose to the replica's later writes of the same field.
        await #expect {
            _ = try await push([twin])
        } throws: { error in
            guard case ServerError.refused(let refusals, _) = error, let refusal = refusals.first else { return false }
            return refusal.reason == RefusalReason.idReused && !refusal.permanent
        }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func aRepushOutsideItsWindow_getsA400_andNothingIsStored(storeKind: ServerStoreKind) async throws {
        let (dir, server) = try await InProcessServer.center("replay-repush", store: storeKind)
        let phone = try await server.device(dir, "phone")
        let token = try #require(try phone.binding()?.token)
        let principal = try await server.storage.authenticate(tokenHash: Secrets.hash(token))
        let (_, written) = try phone.write(try moodEntry(3), to: nil, clock: SystemWallClock())
        await #expect(throws: ServerError.self) {
            _ = try await server.storage.push(written, from: principal, repush: true, nowMillis: SystemWallClock().nowMillis(), maxSkewMillis: 60_000)
        }
        await #expect(try server.storage.state(of: principal.member).canonicalDump() == ReplicaState().canonicalDump())
        // The window opens for a device told `epochChanged`, and closes at its next pull.
        let device = try #require(principal.device)
        try await server.storage.setRepushWindow(device: device, epoch: try await server.storage.epoch())
        let repushed = try await server.storage.push(written, from: principal, repush: true, nowMillis: SystemWallClock().nowMillis(), maxSkewMillis: 60_000)
        #expect(repushed.accepted == written.count)
        _ = try await Syncer(store: phone).sync()
        await #expect(throws: ServerError.self) {
            _ = try await server.storage.push(written, from: principal, repush: true, nowMillis: SystemWallClock().nowMillis(), maxSkewMillis: 60_000)
        }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func aRepush_neverTakesTheChangesOfARevokedDevice(storeKind: ServerStoreKind) async throws {
        let (dir, server) = try await InProcessServer.center("replay-repush-revoked", store: storeKind)
        let phone = try await server.device(dir, "phone")
        let laptop = try await server.device(dir, "laptop", linkedTo: phone)
        let (_, fromLaptop) = try laptop.write(try moodEntry(6), to: nil, clock: SystemWallClock())
        let (_, fromPhone) = try phone.write(try moodEntry(2), to: nil, clock: SystemWallClock())
        try await server.storage.revokeDevice(try await EnrollmentCodeTests.device(named: "laptop", of: phone, server))
        let token = try #require(try phone.binding()?.token)
        let principal = try await server.storage.authenticate(tokenHash: Secrets.hash(token))
        try await server.storage.setRepushWindow(device: try #require(principal.device), epoch: try await server.storage.epoch())
        await #expect {
            _ = try await server.storage.push(
                fromPhone + fromLaptop, from: principal, repush: true, nowMillis: SystemWallClock().nowMillis(), maxSkewMillis: 60_000)
        } throws: { error in
            guard case ServerError.forbiddenChanges(let refusals, _) = error else { return false }
            return refusals.count == fromLaptop.count && refusals.allSatisfy { $0.reason.contains("not this member's") }
        }
    }
}

/// Grants nothing: a pull that reads only the caller's mark and window.
struct NoGrants: SharingPolicy {
    func grants(for principal: Principal, in store: some PullReads) throws -> [Grant] { [] }
}
