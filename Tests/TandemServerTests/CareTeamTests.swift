import Foundation
import TandemClient
import TandemCore
import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// Care teams (issue 13): `tandem admin assign` and `unassign` pair a mentor with a patient
/// and a supervisor with a mentor, by id or unique name, checking roles; `admin members`
/// shows the teams (in JSON too). Only an assigned mentor writes notes about a patient:
/// unassigning ends it.
///
/// On SQLite only: it drives `tandem admin` and `tandem serve` processes on a file; the assignment rules it checks are store-independent and run on both stores in `AuthorizationMatrixTests` and `SharingPropertyTests`.
@Suite("Care teams")
struct CareTeamTests {
    struct MemberJSON: Decodable {
        var id: String
        var name: String
        var role: String
        var mentors: [String]
        var patients: [String]
        var supervisors: [String]
    }

    /// `tandem admin` opens the store's SQLite file (`--db`): on that store until the CLI
    /// can be pointed at another.
    @Test func assignments_checkRoles_showInMembers_andGateNotes() async throws {
        let (dir, server) = try await InProcessServer.center("care-teams", store: .sqlite)
        defer { withExtendedLifetime(dir) {} }
        let db = dir.path("center.sqlite")
        let patient = try await server.device(dir, "patient", member: "Sam")
        let mentor = try await server.device(dir, "mentor", role: .mentor, member: "Mia")
        _ = try await server.device(dir, "supervisor", role: .supervisor, member: "Noa")
        func admin(_ arguments: [String]) async throws -> TandemExecutable.Result {
            try await TandemExecutable.run(["admin"] + arguments + ["--db", db])
        }

        let assigned = try await admin(["assign", "--mentor", "mia", "--patient", "Sam"])
        #expect(assigned.status == 0 && assigned.stdout.contains("Mia is now mentor of Sam"), "\(assigned.combined)")
        #expect(try await admin(["assign", "--mentor", "Mia", "--patient", "Sam"]).stdout.contains("already"))
        let supervised = try await admin(["assign", "--supervisor", "Noa", "--mentor", "Mia"])
        #expect(supervised.status == 0, "\(supervised.combined)")
        // Roles that do not fit, and half an assignment, change nothing.
        for wrong in [["--mentor", "Sam", "--patient", "Mia"], ["--supervisor", "Mia", "--mentor", "Noa"], ["--mentor", "Mia"], ["--patient", "Sam"]] {
            let refused = try await admin(["assign"] + wrong)
            #expect(refused.status != 0 && !refused.stderr.isEmpty, "\(wrong)")
        }
        await #expect(try server.storage.assignments().count == 2)

        let listed = try await admin(["members", "--json"])
        let members = try JSONDecoder().decode([MemberJSON].self, from: Data(listed.stdout.utf8))
        let byName = Dictionary(uniqueKeysWithValues: members.map { ($0.name, $0) })
        let sam = try #require(byName["Sam"]), mia = try #require(byName["Mia"]), noa = try #require(byName["Noa"])
        #expect(sam.role == "patient" && sam.mentors == [mia.id] && sam.patients.isEmpty && sam.supervisors.isEmpty)
        #expect(mia.role == "mentor" && mia.patients == [sam.id] && mia.supervisors == [noa.id])
        #expect(noa.role == "supervisor" && noa.mentors == [mia.id])
        #expect(try await admin(["members"]).stdout.contains("patients: Sam; supervisors: Noa"))

        // An assigned mentor's note is taken; after unassigning, a new one is refused.
        let samID = try #require(try patient.binding()?.member)
        func note() throws -> RecordEdit {
            var note = NoteEdit()
            note.patient = samID
            note.text = "Walked through the plan."
            return try note.recordEdit()
        }
        let (first, _) = try mentor.write(try note(), to: nil, clock: SystemWallClock())
        _ = try await Syncer(store: mentor).sync()
        #expect(try mentor.quarantined().isEmpty)
        #expect(try await admin(["unassign", "--mentor", "Mia", "--patient", sam.id]).status == 0)
        #expect(try await admin(["unassign", "--mentor", "Mia", "--patient", "Sam"]).status != 0, "nothing left to unassign")
        let (second, _) = try mentor.write(try note(), to: nil, clock: SystemWallClock())
        _ = try await Syncer(store: mentor).sync()
        #expect(try mentor.quarantined().map(\.change.record).contains(second))
        let held = try await server.storage.state(of: try #require(try mentor.binding()?.member))
        #expect(held[first] != nil && held[second] == nil, "past notes stay with their author")
    }
}
