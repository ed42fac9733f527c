import CPowerCut
import Foundation
import GRDB
import TandemClient
import TandemCore
@testable import TandemServer
import TandemStore
import TandemTestSupport
import TandemWorkload
import Testing

/// Power loss: kill -9 cannot tell `synchronous=FULL` from `OFF` (the page cache survives a
/// process), so the server's store runs on a test-only SQLite VFS (`Sources/CPowerCut`) that
/// remembers every write not yet fsynced and, at a simulated power cut, puts each file back
/// to its last fsync. Every change a device saw acknowledged must survive the cut; and the
/// same test, run against a store that acknowledges before the fsync, must find losses.
///
/// On SQLite only: a SQLite VFS cuts the power; PostgreSQL's durability is its own WAL fsync (`synchronous_commit = on` on every connection), which no test here can cut under; its restart under load is `SeveralInstancesTests`'.
@Suite("Power loss", .serialized)
struct PowerLossTests {
    static let rounds = Int(ProcessInfo.processInfo.environment["TANDEM_POWERLOSS_ROUNDS"] ?? "") ?? 5

    init() {
        #expect(tandem_powercut_register() == 0)
    }

    @Test func everyAcknowledgedChangeSurvivesAPowerCut() async throws {
        var acknowledged = 0
        var discarded: Int64 = 0
        for round in 0..<Self.rounds {
            let outcome = try await cutDuringPushes(seed: UInt64(100 + round), synchronous: .full)
            #expect(outcome.lost == 0, "round \(round): \(outcome.lost) of \(outcome.acknowledged) acknowledged change(s) lost")
            #expect(outcome.integrity == ["ok"], "round \(round)")
            acknowledged += outcome.acknowledged
            discarded += outcome.discardedBytes
        }
        // The rounds cut real work: acknowledged changes before the cut, unsynced bytes at it.
        #expect(acknowledged > 0)
        #expect(discarded > 0, "the cuts discarded unsynced writes")
    }

    /// The test's own check: with commits acknowledged before their fsync (`synchronous=NORMAL`
    /// in WAL mode syncs only at checkpoints), acknowledged changes are lost at the cut.
    @Test func acknowledgingBeforeTheFsync_isCaught() async throws {
        var lost = 0
        for round in 0..<3 where lost == 0 {
            lost += try await cutDuringPushes(seed: UInt64(200 + round), synchronous: .normal).lost
        }
        #expect(lost > 0, "a store that acknowledges before the fsync loses acknowledged changes at a power cut")
    }

    struct Outcome {
        var acknowledged: Int
        var lost: Int
        var discardedBytes: Int64
        var integrity: [String]
    }

    /// Four devices push a stream of small batches to the real server (in this process, its
    /// store on the power-cut VFS); the power goes off shortly after the first acknowledgement.
    func cutDuringPushes(seed: UInt64, synchronous: SQLiteServerStorage.Synchronous) async throws -> Outcome {
        let dir = try TemporaryDirectory("tandem-power")
        let serverDir = dir.path("server")
        try FileManager.default.createDirectory(atPath: serverDir, withIntermediateDirectories: true)
        let db = serverDir + "/center.sqlite"
        let now = SystemWallClock().nowMillis()
        let storage = try SQLiteServerStorage(path: db, vfs: "powercut", synchronous: synchronous)
        _ = try storage.initialize(staffName: "Admin", nowMillis: now)
        let server = try await InProcessServer(storage: storage)

        var generator = SeededGenerator(seed: seed)
        var devices: [(store: ReplicaStore, member: MemberID, written: [Change])] = []
        for index in 0..<4 {
            let code = try await storage.invite(role: .patient, name: "Patient \(index)", nowMillis: now)
            let store = try ReplicaStore.create(at: dir.path("phone-\(index).sqlite"), name: "phone", role: .patient, wallMillis: now)
            _ = try await Syncer.enroll(store: store, server: server.url, code: code, deviceName: "phone", role: nil, allowInsecure: false)
            var written: [Change] = []
            for entry in 0..<60 {
                var edit = JournalEdit()
                edit.mood = Int.random(in: 0...10, using: &generator)
                edit.craving = Int.random(in: 0...10, using: &generator)
                edit.text = "device \(index) entry \(entry)"
                written += try store.write(try edit.recordEdit(), to: nil, clock: SystemWallClock()).1
            }
            devices.append((store, try #require(try store.binding()?.member), written))
        }

        let stores = devices.map(\.store)
        let syncs = stores.map { store in Task { _ = try? await Syncer(store: store).sync(batchSize: 5) } }
        // Wait for the first acknowledgement, then cut within a few milliseconds.
        let pending = try devices.reduce(0) { $0 + (try $1.store.outboxCount()) }
        let deadline = ContinuousClock.now + .seconds(30)
        while try devices.reduce(0, { $0 + (try $1.store.outboxCount()) }) == pending, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(1))
        }
        try await Task.sleep(for: .milliseconds(Int.random(in: 0...300, using: &generator)))
        let discarded = tandem_powercut_cut(serverDir)
        // The devices' retries would only meet a dead server: stop them, then read what each
        // device saw acknowledged.
        for sync in syncs { sync.cancel() }
        for sync in syncs { await sync.value }
        // Its requests and timers read the store until the server has stopped: closing the
        // pool under them is a race (ThreadSanitizer saw one).
        try await within(.seconds(20)) { await server.stop() }

        // The disk as it is after the cut, read through the default VFS from a copy (this
        // process's dead connections keep their own view of the original).
        let copy = dir.path("after-cut")
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: db + suffix) {
            try FileManager.default.copyItem(atPath: db + suffix, toPath: copy + "/center.sqlite" + suffix)
        }
        try? storage.pool.close()
        let recovered = try SQLiteServerStorage(path: copy + "/center.sqlite")
        let integrity = try await recovered.pool.read { try String.fetchAll($0, sql: "PRAGMA integrity_check") }
        var acknowledged = 0
        var lost = 0
        for device in devices {
            let waiting = Set(try device.store.outboxEntries(limit: .max).map { $0.change.canonicalBytes })
            let seen = device.written.filter { !waiting.contains($0.canonicalBytes) }
            var held = try recovered.state(of: device.member)
            acknowledged += seen.count
            lost += seen.filter { held.apply($0) }.count
        }
        return Outcome(acknowledged: acknowledged, lost: lost, discardedBytes: discarded, integrity: integrity)
    }
}
