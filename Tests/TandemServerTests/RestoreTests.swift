import Foundation
import TandemCore
import TandemServer
import TandemServerPostgres
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

    @Test(arguments: ServerStoreKind.allCases)
    func restoringAnOlderBackup_losesNothingTheDevicesHold(storeKind: ServerStoreKind) async throws {
        let dir = try TemporaryDirectory()
        let store = try await storeKind.cliStore(in: dir)
        _ = try await TandemExecutable.run(["admin", "init"] + store.arguments)
        var server = try await store.server()
        let code = try await TandemExecutable.run(["admin", "invite", "--role", "patient", "--name", "Sam"] + store.arguments).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let phone = dir.path("phone")
        let laptop = dir.path("laptop")
        let tablet = dir.path("tablet")
        _ = try await run(phone, ["enroll", "--server", server.url, "--code", code])
        _ = try await run(laptop, ["enroll", "--server", server.url, "--code", try await run(phone, ["device", "link"])])
        let before = try await run(phone, ["journal", "add", "--mood", "3", "--craving", "6", "--text", "Before the backup."])
        _ = try await run(phone, ["sync"])
        _ = try await run(laptop, ["sync"])

        let backedUp = try await TandemExecutable.run(["admin", "backup", store.backup] + store.arguments)
        #expect(backedUp.status == 0, "\(backedUp.stderr)")

        // After the backup: more writes, an edit, and a device the backup will not know.
        let after = try await run(laptop, ["journal", "add", "--mood", "7", "--craving", "2", "--text", "After the backup."])
        _ = try await run(laptop, ["journal", "edit", before, "--mood", "4"])
        _ = try await run(laptop, ["sync"])
        _ = try await run(tablet, ["enroll", "--server", server.url, "--code", try await run(phone, ["device", "link"])])
        let fromTablet = try await run(tablet, ["journal", "add", "--mood", "5", "--craving", "5"])
        _ = try await run(tablet, ["sync"])
        _ = try await run(phone, ["sync"])

        await server.stop()
        let restored = try await TandemExecutable.run(["admin", "restore", store.backup] + store.arguments)
        #expect(restored.status == 0, "\(restored.stderr)")
        server = try await store.server(port: server.port)

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

        let storage = try await store.open()
        let member = try #require(try ReplicaStore.open(at: phone + "/replica.sqlite").binding()?.member)
        let serverView = try await storage.state(of: member).canonicalDump()
        for home in [phone, laptop, tablet] {
            let store = try ReplicaStore.open(at: home + "/replica.sqlite")
            #expect(try store.canonicalDump() == serverView, "\(home)")
            #expect(try store.record(try RecordID(hex: after))?.value("mood") == .int(7))
            #expect(try store.record(try RecordID(hex: before))?.value("mood") == .int(4))
            #expect(try store.record(try RecordID(hex: fromTablet)) != nil)
        }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func aRestoreWhileAServerHasTheStoreOpen_isRefused_andChangesNothing(storeKind: ServerStoreKind) async throws {
        let dir = try TemporaryDirectory()
        let store = try await storeKind.cliStore(in: dir)
        _ = try await TandemExecutable.run(["admin", "init"] + store.arguments)
        #expect(try await TandemExecutable.run(["admin", "backup", store.backup] + store.arguments).status == 0)
        // A backup holds everything the center holds: readable by its owner only.
        let mode = try FileManager.default.attributesOfItem(atPath: store.backup)[.posixPermissions] as? Int
        #expect(mode == 0o600, "backup mode \(String(mode ?? 0, radix: 8))")
        let server = try await store.server()
        let epoch = try await store.epoch()
        let refused = try await TandemExecutable.run(["admin", "restore", store.backup] + store.arguments)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("stop"), "\(refused.stderr)")
        #expect(try await store.epoch() == epoch, "the store was not replaced")
        await server.stop()
        // A file that is no backup of a center is refused, and changes nothing.
        let garbage = dir.path("not-a-backup")
        try Data((0..<4096).map { _ in UInt8.random(in: 0...255) }).write(to: URL(fileURLWithPath: garbage))
        let notABackup = try await TandemExecutable.run(["admin", "restore", garbage] + store.arguments)
        #expect(notABackup.status != 0)
        #expect(try await store.epoch() == epoch, "nothing changed")
        let backupBytes = try Data(contentsOf: URL(fileURLWithPath: store.backup))
        let restored = try await TandemExecutable.run(["admin", "restore", store.backup] + store.arguments)
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try await store.epoch() != epoch)
        // The backup itself was not opened, let alone migrated or given WAL files.
        #expect(try Data(contentsOf: URL(fileURLWithPath: store.backup)) == backupBytes)
        #expect(!FileManager.default.fileExists(atPath: store.backup + "-wal"))
        #expect(!FileManager.default.fileExists(atPath: store.name + ".restoring"))
    }
}
