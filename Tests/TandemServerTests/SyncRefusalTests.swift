import Foundation
import GRDB
import Hummingbird
import Synchronization
import TandemClient
import TandemCore
import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// Refusals never leave an outbox stuck: clock skew re-stamps, permanent refusals go to
/// quarantine and the rest syncs. Devices are driven through `Syncer` with their own
/// clocks, against the real server process.
@Suite("Sync refusals", .serialized)
struct SyncRefusalTests {
    static let day: UInt64 = 86_400_000
    var now: UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

    func enroll(_ dir: TemporaryDirectory, _ name: String, server: LiveServer, role: String = "patient") async throws -> ReplicaStore {
        let code = try await TandemExecutable.run(["admin", "invite", "--db", server.dbPath, "--role", role, "--name", name]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let store = try ReplicaStore.create(at: dir.path("\(name).sqlite"), name: name, role: Role(rawValue: role) ?? .patient, wallMillis: now)
        _ = try await Syncer.enroll(store: store, server: server.url, code: code, deviceName: name, role: nil, allowInsecure: false)
        return store
    }

    func entry(_ mood: Int, text: String? = nil) throws -> RecordEdit {
        var edit = JournalEdit()
        edit.mood = mood
        edit.craving = 1
        edit.text = text
        return try edit.recordEdit()
    }

    @Test func deviceADayAhead_isRestamped_andKeepsSyncing() async throws {
        let dir = try TemporaryDirectory()
        _ = try await TandemExecutable.run(["admin", "init", "--db", dir.path("center.sqlite")])
        let server = try await LiveServer(dbPath: dir.path("center.sqlite"))
        let store = try await enroll(dir, "ahead", server: server)
        let ahead = FixedWallClock(millis: now + Self.day)
        let (first, _) = try store.write(try entry(3, text: "written a day ahead"), to: nil, clock: ahead)
        try store.write(try entry(4), to: first, clock: ahead)
        try store.write(try entry(5), to: nil, clock: ahead)

        let report = try await Syncer(store: store, wallClock: ahead).sync()
        #expect(report.restamped > 0)
        #expect(report.waiting == 0)
        #expect(try store.outbox().isEmpty)
        // Its clock is not stuck in the future: the next write is stamped near server time.
        let (_, later) = try store.write(try entry(6), to: nil, clock: ahead)
        #expect(later.allSatisfy { $0.timestamp.wallMillis < now + 120_000 })
        let again = try await Syncer(store: store, wallClock: ahead).sync()
        #expect(again.restamped == 0 && again.pushed == later.count)

        // A device a day behind syncs normally.
        let behind = try await enroll(dir, "behind", server: server)
        let slow = FixedWallClock(millis: now - Self.day)
        try behind.write(try entry(2), to: nil, clock: slow)
        let slowReport = try await Syncer(store: behind, wallClock: slow).sync()
        #expect(slowReport.restamped == 0 && slowReport.waiting == 0)

        let member = try #require(try store.binding()?.member)
        let storage = try SQLiteServerStorage(path: server.dbPath)
        #expect(try store.canonicalDump() == storage.state(of: member).canonicalDump())
        #expect(try store.record(first)?.register("text")?.frontier.map(\.value) == [.string("written a day ahead")])
    }

    /// Answers the first push the server accepted with a 503, as a proxy that timed out
    /// after the commit would: the acknowledgement is lost, the batch is stored.
    final class LoseFirstAcknowledgement: RouterMiddleware, Sendable {
        typealias Context = TandemRequestContext
        let lost = Atomic(false)

        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            let response = try await next(request, context)
            guard request.uri.path == "/v1/push", response.status == .ok, !lost.exchange(true, ordering: .relaxed) else { return response }
            return Response(status: .serviceUnavailable)
        }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func lostAcknowledgementAfterASkewRefusal_isRetried_withoutDuplicates(storeKind: ServerStoreKind) async throws {
        let dir = try TemporaryDirectory()
        let storage = try await storeKind.create(in: dir)
        _ = try await storage.initialize(staffName: "Admin", nowMillis: now)
        let dropper = LoseFirstAcknowledgement()
        let server = try await InProcessServer(storage: storage, middleware: [dropper])
        let code = try await storage.invite(role: .patient, name: "ahead", nowMillis: now)
        let store = try ReplicaStore.create(at: dir.path("ahead.sqlite"), name: "ahead", role: .patient, wallMillis: now)
        _ = try await Syncer.enroll(store: store, server: server.url, code: code, deviceName: "ahead", role: nil, allowInsecure: false)
        let ahead = FixedWallClock(millis: now + Self.day)
        let (first, _) = try store.write(try entry(3, text: "a day ahead"), to: nil, clock: ahead)
        try store.write(try entry(4), to: first, clock: ahead)
        let (second, _) = try store.write(try entry(5), to: nil, clock: ahead)
        let written = try store.outboxCount()

        // Refused for skew, re-stamped, accepted with the answer lost, sent again: replayed.
        let report = try await Syncer(store: store, wallClock: ahead).sync()
        let injected = dropper.lost.load(ordering: .relaxed)
        #expect(injected, "the fault was injected")
        #expect(report.restamped == written)
        #expect(report.pushed == 0 && report.replayed == written)
        #expect(report.waiting == 0)

        let member = try #require(try store.binding()?.member)
        let held = try await storage.state(of: member)
        #expect(held.records.count == 2)
        #expect(held[first]?.create != nil && held[second]?.create != nil)
        #expect(try store.canonicalDump() == held.canonicalDump())
        let metrics = String(decoding: server.server.metrics.exposition(), as: UTF8.self)
        #expect(metrics.contains("tandem_changes_accepted_total \(written)\n"), "each change stored once")
        #expect(metrics.contains("tandem_changes_replayed_total \(written)\n"))

        // And the device keeps syncing.
        let (_, more) = try store.write(try entry(6), to: second, clock: ahead)
        let again = try await Syncer(store: store, wallClock: ahead).sync()
        #expect(again.pushed == more.count && again.restamped == 0)
    }

    @Test func permanentlyRefusedCreate_isQuarantined_andTheRestSyncs() async throws {
        let dir = try TemporaryDirectory()
        _ = try await TandemExecutable.run(["admin", "init", "--db", dir.path("center.sqlite")])
        let server = try await LiveServer(dbPath: dir.path("center.sqlite"))
        let patient = try await enroll(dir, "patient", server: server)
        let mentor = try await enroll(dir, "mentor", server: server, role: "mentor")
        _ = try await TandemExecutable.run(["admin", "assign", "--mentor", "mentor", "--patient", "patient", "--db", dir.path("center.sqlite")])
        var note = NoteEdit()
        note.patient = try #require(try patient.binding()?.member)
        note.text = "Mentor's note."
        let (taken, _) = try mentor.write(try note.recordEdit(), to: nil, clock: SystemWallClock())
        _ = try await Syncer(store: mentor).sync()

        let (good, _) = try patient.write(try entry(4), to: nil, clock: SystemWallClock())
        // A create for a record id the server already holds for someone else, and a later
        // change of it: a faulty device's outbox.
        let replica = patient.identity.replica
        let floor = try patient.clock().floor
        let bad = [
            Change(id: ChangeID(timestamp: HybridTimestamp(wallMillis: floor.wallMillis, counter: floor.counter + 1), replica: replica),
                   record: taken, kind: .create, value: .map(["collection": .string("journal")])),
            Change(id: ChangeID(timestamp: HybridTimestamp(wallMillis: floor.wallMillis, counter: floor.counter + 2), replica: replica),
                   record: taken, field: "mood", kind: .lww, value: .int(1)),
        ]
        try await DatabaseQueue(path: patient.path).write { db in
            for change in bad { try db.execute(sql: "INSERT INTO outbox (change) VALUES (?)", arguments: [Data(change.canonicalBytes)]) }
        }
        let (after, _) = try patient.write(try entry(7), to: nil, clock: SystemWallClock())

        let report = try await Syncer(store: patient).sync()
        #expect(report.quarantined == 2)
        #expect(report.waiting == 0)
        let quarantined = try patient.quarantined()
        #expect(quarantined.map(\.change) == bad)
        #expect(quarantined.allSatisfy { $0.reason.contains("exists already") })
        let member = try #require(try patient.binding()?.member)
        let held = try SQLiteServerStorage(path: server.dbPath).state(of: member)
        #expect(held[good] != nil && held[after] != nil)
        #expect(held[taken] == nil)
    }
}
