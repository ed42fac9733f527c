import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TandemClient
import TandemCore
import TandemProtocol
import TandemServer
import TandemStore
import TandemTestSupport
import TandemWorkload
import Testing

/// kill -9 of the server during a stream of pushes, and of the client during a sync: every
/// acknowledged change survives, nothing is applied twice, and the next sync converges.
///
/// On SQLite only: kill -9 of a server on its file; on PostgreSQL `SeveralInstancesTests` kills an instance mid-push while another serves.
@Suite("Crashes", .serialized)
struct CrashTests {
    static let rounds = Int(ProcessInfo.processInfo.environment["TANDEM_CRASH_ROUNDS"] ?? "") ?? 10

    func entry(_ mood: Int, text: String? = nil) throws -> RecordEdit {
        var edit = JournalEdit()
        edit.mood = mood
        edit.craving = 10 - mood
        edit.text = text
        return try edit.recordEdit()
    }

    @Test func serverKilledDuringPushes_keepsEveryAcknowledgedChange() async throws {
        let dir = try TemporaryDirectory("tandem-crash")
        let db = dir.path("center.sqlite")
        _ = try await TandemExecutable.run(["admin", "init", "--db", db])
        var server = try await LiveServer(dbPath: db)
        let port = server.port
        let code = try await TandemExecutable.run(["admin", "invite", "--db", db, "--role", "patient", "--name", "Sam"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let store = try ReplicaStore.create(at: dir.path("phone.sqlite"), name: "phone", role: .patient, wallMillis: SystemWallClock().nowMillis())
        _ = try await Syncer.enroll(store: store, server: server.url, code: code, deviceName: "phone", role: nil, allowInsecure: false)
        let member = try #require(try store.binding()?.member)

        var written: [Change] = []
        var records: [RecordID] = []
        var generator = SeededGenerator(seed: 41)
        for round in 0..<Self.rounds {
            for index in 0..<25 {
                let (id, changes) = try store.write(try entry(index % 11, text: "round \(round) entry \(index)"), to: nil, clock: SystemWallClock())
                records.append(id)
                written += changes
                if index % 4 == 0, let earlier = records.randomElement(using: &generator) {
                    written += try store.write(try entry((index + 3) % 11), to: earlier, clock: SystemWallClock()).1
                }
            }
            // Small batches: a stream of pushes, cut at a random moment.
            let sync = Task { try? await Syncer(store: store).sync(batchSize: 7) }
            try await Task.sleep(for: .milliseconds(Int.random(in: 5...120, using: &generator)))
            await server.kill9()

            // Whatever the device saw acknowledged is in the server's file, once.
            let waitingChanges = try store.outboxEntries(limit: .max).map(\.change)
            let waiting = Set(waitingChanges.map(\.canonicalBytes))
            // A value a later write superseded while both waited left the outbox unsent
            // (the outbox is compacted): not acknowledged, and nothing to find on the server.
            let newestWaiting = Dictionary(
                waitingChanges.filter { $0.kind == .lww }.map { ("\($0.record.hex)/\($0.field.rawValue)", $0.timestamp) }, uniquingKeysWith: max)
            let acknowledged = written.filter { change in
                guard !waiting.contains(change.canonicalBytes) else { return false }
                guard change.kind == .lww, let newer = newestWaiting["\(change.record.hex)/\(change.field.rawValue)"] else { return true }
                return change.timestamp > newer
            }
            var held = try SQLiteServerStorage(path: db).state(of: member)
            let missing = acknowledged.filter { held.apply($0) }
            #expect(missing.isEmpty, "round \(round): \(missing.count) acknowledged change(s) lost")

            server = try await LiveServer(dbPath: db, port: port)
            _ = await sync.value
        }
        let report = try await Syncer(store: store).sync()
        #expect(report.waiting == 0)
        let state = try SQLiteServerStorage(path: db).state(of: member)
        #expect(Set(state.records.keys).isSuperset(of: records))
        #expect(state.records.count == records.count, "every entry once")
        #expect(try store.canonicalDump() == state.canonicalDump())
        await server.stop()
    }

    /// kill -9 of the server while a mentor's new device reads a patient's journal under
    /// consent, page after page: every record the device received is in an entry of the
    /// patient's accounting (recorded before its page was sent), never less.
    @Test func serverKilledDuringADisclosingPull_leavesAnEntryForEveryRecordDelivered() async throws {
        let dir = try TemporaryDirectory("tandem-crash-accounting")
        let db = dir.path("center.sqlite")
        _ = try await TandemExecutable.run(["admin", "init", "--db", db])
        var server = try await LiveServer(dbPath: db)
        let port = server.port
        func enroll(_ name: String, _ role: Role) async throws -> ReplicaStore {
            let code = try await TandemExecutable.run(["admin", "invite", "--db", db, "--role", role.rawValue, "--name", name]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let store = try ReplicaStore.create(at: dir.path("\(name).sqlite"), name: name, role: role, wallMillis: SystemWallClock().nowMillis())
            _ = try await Syncer.enroll(store: store, server: server.url, code: code, deviceName: name, role: nil, allowInsecure: false)
            return store
        }
        let patient = try await enroll("Sam", .patient)
        var mentor = try await enroll("Mia", .mentor)
        _ = try await TandemExecutable.run(["admin", "assign", "--mentor", "Mia", "--patient", "Sam", "--db", db])
        let sam = try #require(try patient.binding()?.member)
        let mia = try #require(try mentor.binding()?.member)
        // Enough history for several pages (2,000 changes, then 4,000, …).
        for index in 0..<700 { _ = try patient.write(try entry(index % 11), to: nil, clock: SystemWallClock()) }
        _ = try patient.write(
            ConsentEdit.grant(patient: sam, recipient: mia, scope: .journal, expiresMillis: nil, purpose: nil), to: nil, clock: SystemWallClock())
        _ = try await Syncer(store: patient).sync()

        var generator = SeededGenerator(seed: 43)
        var cutMidway = 0
        for round in 0..<3 {
            // A new device of the mentor each round reads the journal from zero.
            let code = try await Syncer(store: mentor).link().code
            let device = try ReplicaStore.create(at: dir.path("mia-\(round).sqlite"), name: "mia-\(round)", role: .mentor, wallMillis: SystemWallClock().nowMillis())
            _ = try await Syncer.enroll(store: device, server: server.url, code: code, deviceName: "mia-\(round)", role: nil, allowInsecure: false)
            // Only this round's entries count: earlier rounds disclosed the same records.
            let before = try await SQLiteServerStorage(path: db).disclosures(of: sam).count
            let sync = Task { try? await Syncer(store: device).sync() }
            try await Task.sleep(for: .milliseconds(Int.random(in: 5...150, using: &generator)))
            await server.kill9()
            _ = await sync.value
            let received = Set(try device.state().records.keys)
            let disclosed = Set(try await SQLiteServerStorage(path: db).disclosures(of: sam).dropFirst(before).flatMap(\.records))
            let undisclosed = received.subtracting(disclosed).count
            if received.count < 700 { cutMidway += 1 }
            #expect(undisclosed == 0, "round \(round): \(undisclosed) of \(received.count) record(s) delivered without an entry")
            server = try await LiveServer(dbPath: db, port: port)
            _ = try await Syncer(store: device).sync()
            let all = Set(try await SQLiteServerStorage(path: db).disclosures(of: sam).dropFirst(before).flatMap(\.records))
            let after = Set(try device.state().records.keys)
            #expect(after.subtracting(all).isEmpty && after.count == 700, "every entry received, each in an entry of the accounting")
            mentor = device
        }
        #expect(cutMidway > 0, "at least one kill landed before the whole journal arrived")
        let storage = try SQLiteServerStorage(path: db)
        let check = try await storage.disclosures(of: sam)
        #expect(try await storage.brokenChains(check).isEmpty, "the chain holds across the kills")
        await server.stop()
    }

    @Test func clientKilledDuringSync_losesNothing_andAppliesNothingTwice() async throws {
        let dir = try TemporaryDirectory("tandem-crash")
        let db = dir.path("center.sqlite")
        _ = try await TandemExecutable.run(["admin", "init", "--db", db])
        let server = try await LiveServer(dbPath: db)
        let code = try await TandemExecutable.run(["admin", "invite", "--db", db, "--role", "patient", "--name", "Sam"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let home = dir.path("phone")
        let enrolled = try await TandemExecutable.run(["enroll", "--server", server.url, "--code", code, "--device", "phone"], home: home)
        #expect(enrolled.status == 0, "\(enrolled.stderr)")
        let link = try await TandemExecutable.run(["device", "link"], home: home).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let laptop = dir.path("laptop")
        _ = try await TandemExecutable.run(["enroll", "--server", server.url, "--code", link, "--device", "laptop"], home: laptop)

        var generator = SeededGenerator(seed: 43)
        var entries = 0
        var total = 0
        var kills = 0
        for round in 0..<Self.rounds {
            // Writes land on both devices; the phone's sync is killed at a random moment,
            // in its push or in its pull (the laptop's changes come down).
            for (path, count) in [(home, 150), (laptop, 20)] {
                let store = try ReplicaStore.open(at: path + "/replica.sqlite")
                for index in 0..<count {
                    total += try store.write(try entry(index % 11, text: index % 10 == 0 ? "r\(round) i\(index)" : nil), to: nil, clock: SystemWallClock()).1.count
                    entries += 1
                }
            }
            #expect(try await TandemExecutable.run(["sync"], home: laptop).status == 0)
            let sync = try RunningTandem(["sync"], home: home)
            try await Task.sleep(for: .milliseconds(Int.random(in: 10...120, using: &generator)))
            if sync.isRunning { kills += 1 }
            await sync.kill9()
        }
        #expect(kills >= Self.rounds / 2, "most syncs were cut (\(kills) of \(Self.rounds))")
        let last = try await TandemExecutable.run(["sync", "--json"], home: home)
        #expect(last.status == 0, "\(last.stderr)")
        #expect(try await TandemExecutable.run(["sync"], home: laptop).status == 0)

        let phoneStore = try ReplicaStore.open(at: home + "/replica.sqlite")
        let member = try #require(try phoneStore.binding()?.member)
        let state = try SQLiteServerStorage(path: db).state(of: member)
        #expect(try phoneStore.outboxCount() == 0)
        #expect(try phoneStore.integrityCheck() == ["ok"])
        #expect(state.records.count == entries)
        #expect(try phoneStore.canonicalDump() == state.canonicalDump())
        #expect(try ReplicaStore.open(at: laptop + "/replica.sqlite").canonicalDump() == state.canonicalDump())
        // Each change was accepted once: replays are acknowledged, never applied again.
        var metrics = HTTPClientRequest(url: server.url + "/metrics")
        metrics.method = .GET
        let scraped = String(buffer: try await HTTPClient.shared.execute(metrics, timeout: .seconds(30)).body.collect(upTo: 1 << 20))
        #expect(scraped.contains("tandem_changes_accepted_total \(total)\n"), "accepted once each: \(total)")
    }
}
