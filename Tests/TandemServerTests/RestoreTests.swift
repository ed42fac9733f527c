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
    func run(_ home: String, _ arguments: [String]) throws -> String {
        let result = try TandemExecutable.run(arguments, home: home)
        #expect(result.status == 0, "tandem \(arguments.joined(separator: " ")): \(result.stderr)")
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func restoringAnOlderBackup_losesNothingTheDevicesHold() throws {
        let dir = try TemporaryDirectory()
        let db = dir.path("center.sqlite")
        _ = try TandemExecutable.run(["admin", "init", "--db", db])
        var server = try LiveServer(dbPath: db)
        let code = try TandemExecutable.run(["admin", "invite", "--db", db, "--role", "patient", "--name", "Sam"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let phone = dir.path("phone")
        let laptop = dir.path("laptop")
        let tablet = dir.path("tablet")
        _ = try run(phone, ["enroll", "--server", server.url, "--code", code])
        _ = try run(laptop, ["enroll", "--server", server.url, "--code", try run(phone, ["device", "link"])])
        let before = try run(phone, ["journal", "add", "--mood", "3", "--craving", "6", "--text", "Before the backup."])
        _ = try run(phone, ["sync"])
        _ = try run(laptop, ["sync"])

        #expect(try TandemExecutable.run(["admin", "backup", "--db", db, dir.path("backup.sqlite")]).status == 0)

        // After the backup: more writes, an edit, and a device the backup will not know.
        let after = try run(laptop, ["journal", "add", "--mood", "7", "--craving", "2", "--text", "After the backup."])
        _ = try run(laptop, ["journal", "edit", before, "--mood", "4"])
        _ = try run(laptop, ["sync"])
        _ = try run(tablet, ["enroll", "--server", server.url, "--code", try run(phone, ["device", "link"])])
        let fromTablet = try run(tablet, ["journal", "add", "--mood", "5", "--craving", "5"])
        _ = try run(tablet, ["sync"])
        _ = try run(phone, ["sync"])

        server.stop()
        let restored = try TandemExecutable.run(["admin", "restore", dir.path("backup.sqlite"), "--db", db])
        #expect(restored.status == 0, "\(restored.stderr)")
        server = try LiveServer(dbPath: db, port: server.port)

        // The phone holds everything, the tablet's entry included: it re-pushes all of it
        // but the tablet's own changes (its replica is unknown to the restored server).
        let report = try run(phone, ["sync", "--json"])
        #expect(report.contains("\"repushed\""))
        _ = try run(laptop, ["sync"])
        _ = try run(phone, ["sync"])

        // The tablet is told to enroll again, and keeps its home.
        let stale = try TandemExecutable.run(["sync"], home: tablet)
        #expect(stale.status != 0)
        #expect(stale.stderr.contains("enroll this device again"))
        #expect(try run(tablet, ["journal", "show", fromTablet]).contains("Mood:      5"))
        _ = try run(tablet, ["enroll", "--server", server.url, "--code", try run(phone, ["device", "link"])])
        _ = try run(tablet, ["sync"])
        _ = try run(phone, ["sync"])
        _ = try run(laptop, ["sync"])

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
}
