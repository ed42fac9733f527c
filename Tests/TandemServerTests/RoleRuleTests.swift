import Foundation
import TandemClient
import TandemCore
import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// The server enforces roles on every push (issue 13): only a patient writes journal
/// entries and grants consents, in their own name, to another member of the center; only a
/// mentor writes notes, about a patient assigned to them. Anything else is refused for good
/// (403, the device sets it aside with the rule in words) and the server holds none of it.
@Suite("Role rules")
struct RoleRuleTests {
    /// Writes `edit` on `store`, syncs, and returns the quarantine's reasons (empty: taken).
    func push(_ edit: RecordEdit, from store: ReplicaStore) async throws -> (record: RecordID, refusals: [String]) {
        let (record, _) = try store.write(edit, to: nil, clock: SystemWallClock())
        _ = try await Syncer(store: store).sync()
        return (record, try store.quarantined().filter { $0.change.record == record }.map(\.reason))
    }

    @Test(arguments: ServerStoreKind.allCases)
    func onlyAPatientWritesEntriesAndConsents_onlyAMentorWritesNotes_aboutRealMembers(storeKind: ServerStoreKind) async throws {
        let (dir, server) = try await InProcessServer.center("roles", store: storeKind)
        defer { withExtendedLifetime(dir) {} }
        let patient = try await server.device(dir, "patient", member: "Sam")
        let other = try await server.device(dir, "other", member: "Alex")
        let mentor = try await server.device(dir, "mentor", role: .mentor, member: "Mia")
        let sam = try #require(try patient.binding()?.member)
        let alex = try #require(try other.binding()?.member)
        let mia = try #require(try mentor.binding()?.member)
        func note(about patient: MemberID) throws -> RecordEdit {
            var note = NoteEdit()
            note.patient = patient
            note.text = "Called, doing better."
            return try note.recordEdit()
        }
        func consent(of patient: MemberID, to recipient: MemberID) -> RecordEdit {
            ConsentEdit.grant(patient: patient, recipient: recipient, scope: .metrics, expiresMillis: nil, purpose: "peer support")
        }

        let refused: [(String, ReplicaStore, RecordEdit, String)] = [
            ("a consent in another patient's name", patient, consent(of: alex, to: mia), "the member who grants it"),
            ("a consent to oneself", patient, consent(of: sam, to: sam), "another member"),
            ("a consent to a made-up member", patient, consent(of: sam, to: .random()), "not a member of this center"),
            ("a consent to a member outside the care team", patient, consent(of: sam, to: mia), "care team"),
            ("a note by a patient", patient, try note(about: alex), "only a mentor writes notes"),
            ("a journal entry by a mentor", mentor, try moodEntry(3), "only a patient writes journal entries"),
            ("a consent by a mentor", mentor, consent(of: mia, to: sam), "only a patient grants consent"),
            ("a note about a made-up member", mentor, try note(about: .random()), "not a patient of this center"),
            ("a note about a mentor", mentor, try note(about: mia), "not a patient of this center"),
            ("a note about a patient not assigned to the mentor", mentor, try note(about: alex), "not assigned to this mentor"),
        ]
        for (what, store, edit, rule) in refused {
            let (record, reasons) = try await push(edit, from: store)
            #expect(reasons.count >= 1 && reasons.allSatisfy { $0.contains(rule) }, "\(what): \(reasons)")
            let member = try #require(try store.binding()?.member)
            await #expect(try server.storage.state(of: member)[record] == nil, "\(what): the server holds none of it")
        }

        let admin: any ServerAdministration = server.storage
        let members = try await admin.members()
        try await admin.assign(.mentor, carer: try #require(members.first { $0.id == mia }), member: try #require(members.first { $0.id == sam }), nowMillis: 0)
        let taken: [(String, ReplicaStore, RecordEdit)] = [
            ("a patient's entry", patient, try moodEntry(4)),
            ("a patient's consent to a member", patient, consent(of: sam, to: mia)),
            ("a mentor's note about a patient", mentor, try note(about: sam)),
        ]
        for (what, store, edit) in taken {
            let (record, reasons) = try await push(edit, from: store)
            #expect(reasons.isEmpty, "\(what): \(reasons)")
            let member = try #require(try store.binding()?.member)
            await #expect(try server.storage.state(of: member)[record] != nil, "\(what)")
        }
    }
}
