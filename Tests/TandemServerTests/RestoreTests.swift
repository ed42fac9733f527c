import Foundation
import TandemCore
import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// `tandem admin restore` of an older backup: devices notice the new epoch, re-push what
/// their member wrote, and converge with nothing lost; a device enrolled after the backup
/// is told to enroll again and keeps its home.
@Suite("Restore", .serialized)
struct RestoreTests {
    func run(_ home: String, _ arguments: [String]) async throws -> String {
        let result = try await TandemExecutable.run(arguments, home: home)
        #expect(result.status == 0, "tandem \(arguments.joined(separator: " ")): \(result.stderr)")
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func restoringAnOlderBackup_losesNothingTheDevicesHold() async throws {
        let dir = try TemporaryDirectory()
        let db = dir.path("center.sqlite")
        _ = try await TandemExecutable.run(["admin", "init", "--db", db])
        var server = try await LiveServer(dbPath: db)
        let code = try await TandemExecutable.run(["admin", "invite", "--db", db, "--role", "patient", "--name", "Sam"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let phone = dir.path("phone")
        let laptop = dir.path("laptop")
        let tablet = dir.path("tablet")
        _ = try await run(phone, ["enroll", "--server", server.url, "--code", code])
        _ = try await run(laptop, ["enroll", "--server", server.url, "--code", try await run(phone, ["device", "link"])])
        let before = try await run(phone, ["journal", "add", "--mood", "3", "--craving", "6", "--text", "Before the backup."])
        _ = try await run(phone, ["sync"])
        _ = try await run(laptop, ["sync"])

        #expect(try await TandemExecutable.run(["admin", "backup", "--db", db, dir.path("backup.sqlite")]).status == 0)

        // After the backup: more writes, an edit, and a device the backup will not know.
        let after = try await run(laptop, ["journal", "add", "--mood", "7", "--craving", "2", "--text", "After the backup."])
        _ = try await run(laptop, ["journal", "edit", before, "--mood", "4"])
        _ = try await run(laptop, ["sync"])
        _ = try await run(tablet, ["enroll", "--server", server.url, "--code", try await run(phone, ["device", "link"])])
        let fromTablet = try await run(tablet, ["journal", "add", "--mood", "5", "--craving", "5"])
        _ = try await run(tablet, ["sync"])
        _ = try await run(phone, ["sync"])

        await server.stop()
        let restored = try await TandemExecutable.run(["admin", "restore", dir.path("backup.sqlite"), "--db", db])
        #expect(restored.status == 0, "\(restored.stderr)")
        server = try await LiveServer(dbPath: db, port: server.port)

        // The phone holds everything, the tablet's entry included: it re-pushes all of it
        // but the tablet's own changes (its replica is unknown to the restored server).
        let report = try await run(phone, ["sync", "--json"])
        #expect(report.contains("\"repushed\""))
        _ = try await run(laptop, ["sync"])
        _ = try await run(phone, ["sync"])

        // The tablet is told to enroll again, and keeps its home.
        let stale = try await TandemExecutable.run(["sync"], home: tablet)
        #expect(stale.status != 0)
        #expect(stale.stderr.contains("enroll this device again"))
        #expect(try await run(tablet, ["journal", "show", fromTablet]).contains("Mood:      5"))
        _ = try await run(tablet, ["enroll", "--server", server.url, "--code", try await run(phone, ["device", "link"])])
        _ = try await run(tablet, ["sync"])
        _ = try await run(phone, ["sync"])
        _ = try await run(laptop, ["sync"])

        let storage = try SQLiteServerStorage(path: db)
        let member = try #require(try ReplicaStore.open(at: phone + "/replica.sqlite").binding()?.member)
        let serverView = try storage.state(of: member).canonicalDump()
        for home in [phone, laptop, tablet] {
            let store = try ReplicaStore.open(at: home + "/replica.sqlite")
            #expect(try store.canonicalDump() == serverView, "\(home)")
            #expect(try store.record(try RecordID(hex: after))?.value("mood") == .int(7))
            #expect(try store.record(try RecordID(hex: before))?.value("mood") == .int(4))
            #expect(try store.record(try RecordID(hex: fromTablet)) != nil)
        }
    }

    @Test func aRestoreWhileAServerHasTheStoreOpen_isRefused_andChangesNothing() async throws {
        let dir = try TemporaryDirectory()
        let db = dir.path("center.sqlite")
        _ = try await TandemExecutable.run(["admin", "init", "--db", db])
        #expect(try await TandemExecutable.run(["admin", "backup", "--db", db, dir.path("backup.sqlite")]).status == 0)
        let server = try await LiveServer(dbPath: db)
        let epoch = try await SQLiteServerStorage(path: db).epoch()
        let refused = try await TandemExecutable.run(["admin", "restore", dir.path("backup.sqlite"), "--db", db])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("stop it"), "\(refused.stderr)")
        #expect(try await SQLiteServerStorage(path: db).epoch() == epoch, "the store was not replaced")
        await server.stop()
        let backupBytes = try Data(contentsOf: URL(fileURLWithPath: dir.path("backup.sqlite")))
        #expect(try await TandemExecutable.run(["admin", "restore", dir.path("backup.sqlite"), "--db", db]).status == 0)
        #expect(try await SQLiteServerStorage(path: db).epoch() != epoch)
        // The backup itself was not opened, let alone migrated or given WAL files.
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.path("backup.sqlite"))) == backupBytes)
        #expect(!FileManager.default.fileExists(atPath: dir.path("backup.sqlite-wal")))
        #expect(!FileManager.default.fileExists(atPath: db + ".restoring"))
    }
}
