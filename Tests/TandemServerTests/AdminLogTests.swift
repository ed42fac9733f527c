import Foundation
import TandemCore
import TandemProtocol
import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// The center's own audit trail (issue 14): every `tandem admin` action that changes the
/// store, or exports the accounting, is recorded with who ran it, on which host, when and
/// what, and `tandem admin log` shows it. Run as `tandem admin` processes against the
/// SQLite file (`--db`): the CLI cannot be pointed at another store yet.
///
/// On SQLite only: it drives `tandem admin` processes with `--db`; the trail's SQL is the same on PostgreSQL, whose admin commands `RestoreTests` runs.
@Suite("Administration log")
struct AdminLogTests {
    struct EntryJSON: Decodable {
        var at: String
        var actor: String
        var host: String
        var action: String
        var detail: String
    }

    @Test func everyAdministrationAction_isInTheLog_withWhoWhereAndWhat() async throws {
        let (dir, server) = try await InProcessServer.center("admin-log", store: .sqlite)
        defer { withExtendedLifetime(dir) {} }
        let db = dir.path("center.sqlite")
        _ = try await server.device(dir, "patient", member: "Sam")
        _ = try await server.device(dir, "mentor", role: .mentor, member: "Mia")
        _ = try await server.device(dir, "staff", role: .staff, member: "Dana")
        func admin(_ arguments: [String], user: String = "dana", sudoUser: String = "") async throws -> TandemExecutable.Result {
            try await TandemExecutable.run(["admin"] + arguments + ["--db", db], environment: ["USER": user, "SUDO_USER": sudoUser])
        }
        func log() async throws -> [EntryJSON] {
            let listed = try await admin(["log", "--json"])
            #expect(listed.status == 0, "\(listed.combined)")
            return try JSONDecoder().decode([EntryJSON].self, from: Data(listed.stdout.utf8))
        }
        #expect(try await log().isEmpty)

        let invited = try await admin(["invite", "--role", "patient", "--name", "Noor"])
        let invitedCode = invited.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(invited.status == 0 && !invitedCode.isEmpty, "\(invited.combined)")
        #expect(try await admin(["assign", "--mentor", "Mia", "--patient", "Sam"]).status == 0)
        // The reason read from standard input (`--reason -`): in no process list or sudo log.
        let granted = try await TandemExecutable.run(
            ["admin", "emergency-access", "--patient", "Sam", "--staff", "Dana", "--recipient", "Dr. Lee", "--facility", "City ED", "--reason", "-", "--db", db],
            stdin: "overdose\n", environment: ["USER": "root", "SUDO_USER": "ops"])
        #expect(granted.status == 0, "\(granted.combined)")
        let access = try #require(try await server.storage.emergencyAccesses().first)
        #expect(access.reason == "overdose")
        #expect(access.grantedBy.hasPrefix("ops (as root through sudo) on "))
        #expect(try await admin(["emergency-access", "--revoke", access.id.hex]).status == 0)
        #expect(try await admin(["unassign", "--mentor", "Mia", "--patient", "Sam"]).status == 0)
        #expect(try await admin(["audit", "--patient", "Sam", "--json"]).status == 0)
        let code = try #require(try await server.storage.pendingCodes(nowMillis: SystemWallClock().nowMillis()).first?.id)
        #expect(try await admin(["revoke-invite", code.hex]).status == 0)
        let mia = try await server.storage.member(named: "Mia").id
        let miasDevice = try #require(try await server.storage.devices(of: mia).first?.id)
        #expect(try await admin(["revoke-device", miasDevice]).status == 0)
        #expect(try await admin(["rotate-staff-token", "--member", "Dana"]).status == 0)
        #expect(try await admin(["revoke-member", "Mia"]).status == 0)
        #expect(try await admin(["backup", dir.path("backup.sqlite")]).status == 0)
        // Refused actions change nothing, and are not in the log.
        #expect(try await admin(["emergency-access", "--patient", "Mia", "--staff", "Dana", "--recipient", "x", "--facility", "y", "--reason", "z"]).status != 0)
        #expect(try await admin(["emergency-access", "--patient", "Sam", "--staff", "Dana"]).status != 0)

        let entries = try await log()
        #expect(entries.map(\.action) == [
            "invite", "assign", "emergency-access", "emergency-access-revoke", "unassign", "audit", "revoke-invite", "revoke-device",
            "rotate-staff-token", "revoke-member", "backup",
        ])
        #expect(entries.allSatisfy { $0.host == ProcessInfo.processInfo.hostName && !$0.at.isEmpty })
        #expect(entries.map(\.actor) == ["dana", "dana", "ops (as root through sudo)"] + Array(repeating: "dana", count: 8))
        #expect(entries[7].detail.contains(miasDevice) && entries[9].detail.contains(mia.hex))
        #expect(entries[0].detail.contains("patient") && entries[0].detail.contains("Noor"))
        #expect(entries[2].detail.contains(access.id.hex))
        // The log holds no enrollment code, no token and no reason for an emergency (that is
        // the patient's to read, in their accounting).
        let text = try await admin(["log"])
        #expect(text.status == 0 && text.stdout.contains("emergency-access"))
        #expect(!text.stdout.contains(invitedCode) && !text.stdout.contains("overdose"))
    }
}
