import Foundation
import ServiceLifecycle
import Synchronization
import TandemClient
import TandemCore
import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// The subscription machinery, exercised with a policy injected through the production
/// `SharingPolicy` protocol from this test target (the shipped binary has no way to pick a
/// policy): one member's journal shared with another through a projection that widens,
/// narrows and disappears.
@Suite("Subscriptions", .serialized)
struct SubscriptionTests {
    /// Grants that a test changes while the server runs.
    final class TestPolicy: SharingPolicy {
        let extra = Locked<[MemberID: [Grant]]>([:])

        func grants(for principal: Principal, in store: some PullReads) throws -> [Grant] {
            [Grant(channel: principal.member, projection: nil)] + extra.withLock { $0[principal.member] ?? [] }
        }

        func set(_ reader: MemberID, _ grants: [Grant]) { extra.withLock { $0[reader] = grants } }
    }

    func enroll(_ dir: TemporaryDirectory, _ name: String, _ role: Role, _ server: InProcessServer) async throws -> ReplicaStore {
        let code = try await server.storage.invite(role: role, name: name, nowMillis: SystemWallClock().nowMillis())
        let store = try ReplicaStore.create(at: dir.path("\(name).sqlite"), name: name, role: role, wallMillis: SystemWallClock().nowMillis())
        _ = try await Syncer.enroll(store: store, server: server.url, code: code, deviceName: name, role: role, allowInsecure: false)
        return store
    }

    func filesContain(_ dir: TemporaryDirectory, prefix: String, _ needle: String) throws -> Bool {
        try FileManager.default.contentsOfDirectory(atPath: dir.url.path).filter { $0.hasPrefix(prefix) }.contains { name in
            try Data(contentsOf: dir.url.appendingPathComponent(name)).range(of: Data(needle.utf8)) != nil
        }
    }

    @Test(arguments: ServerStoreKind.allCases)
    func projections_widen_narrow_andLeave_withPurges(storeKind: ServerStoreKind) async throws {
        let dir = try TemporaryDirectory()
        let storage = try await storeKind.create(in: dir)
        _ = try await storage.initialize(staffName: "Admin", nowMillis: SystemWallClock().nowMillis())
        let policy = TestPolicy()
        let server = try await InProcessServer(storage: storage, policy: policy)
        let patient = try await enroll(dir, "patient", .patient, server)
        let mentor = try await enroll(dir, "mentor", .mentor, server)
        let patientMember = try #require(try patient.binding()?.member)
        let mentorMember = try #require(try mentor.binding()?.member)
        let admin: any ServerAdministration = storage
        let members = try await admin.members()
        try await admin.assign(
            .mentor, carer: try #require(members.first { $0.id == mentorMember }), member: try #require(members.first { $0.id == patientMember }),
            nowMillis: 0)

        let secret = "PRIVATE-journal-text-4d2a"
        var edit = JournalEdit()
        edit.mood = 2
        edit.craving = 8
        edit.addSymptoms = [.nausea]
        edit.addTags = ["SECRETTAG"]
        edit.text = secret
        let (entry, _) = try patient.write(try edit.recordEdit(), to: nil, clock: SystemWallClock())
        for mood in [3, 4, 5] {
            var change = JournalEdit()
            change.mood = mood
            try patient.write(try change.recordEdit(), to: entry, clock: SystemWallClock())
        }
        _ = try await Syncer(store: patient).sync()

        // The mentor's own note stays whatever happens to the shared journal.
        var note = NoteEdit()
        note.patient = patientMember
        note.text = "Mentor's own note."
        let (ownNote, _) = try mentor.write(try note.recordEdit(), to: nil, clock: SystemWallClock())

        // 1. Metrics only, read from zero: current values, never superseded ones, no text or tags.
        policy.set(mentorMember, [Grant(channel: patientMember, projection: .metrics)])
        let first = try await Syncer(store: mentor).sync()
        let carried = try await storage.state(of: patientMember).heldChanges.filter { change in
            Schema.carries(.metrics, .journal, field: change.field)
        }
        // The mentor's own note is its first push into an empty channel: it does not come back.
        await #expect(try storage.state(of: mentorMember).heldChanges.isEmpty == false)
        #expect(first.pulled == carried.count, "a reader from zero gets held values only")
        var shared = try #require(try mentor.record(entry))
        #expect(shared.value("mood") == .int(5))
        #expect(shared.value(Symptom.nausea.field) == .bool(true))
        #expect(shared.register("text") == nil)
        #expect(!shared.fields.keys.contains { $0.field.rawValue.hasPrefix("tag.") })
        #expect(try !filesContain(dir, prefix: "mentor", secret))

        // 2. Widened to the whole journal: the missing fields arrive.
        policy.set(mentorMember, [Grant(channel: patientMember, projection: .journal)])
        _ = try await Syncer(store: mentor).sync()
        shared = try #require(try mentor.record(entry))
        #expect(shared.register("text")?.frontier.map(\.value) == [.string(secret)])
        #expect(shared.fields.keys.contains { $0.field.rawValue.hasPrefix("tag.") })
        #expect(shared.value("mood") == .int(5))
        #expect(try filesContain(dir, prefix: "mentor", secret), "the text is on disk while shared")

        // 3. Narrowed back to metrics: text and tags are purged, from the files too.
        policy.set(mentorMember, [Grant(channel: patientMember, projection: .metrics)])
        let narrowed = try await Syncer(store: mentor).sync()
        #expect(narrowed.purged >= 1)
        shared = try #require(try mentor.record(entry))
        #expect(shared.register("text") == nil)
        #expect(shared.value("mood") == .int(5))
        #expect(try !filesContain(dir, prefix: "mentor", secret))
        #expect(try !filesContain(dir, prefix: "mentor", "secrettag"))

        // 4. Covered by two subscriptions, the record survives losing one.
        policy.set(mentorMember, [Grant(channel: patientMember, projection: .metrics), Grant(channel: patientMember, projection: .journal)])
        _ = try await Syncer(store: mentor).sync()
        policy.set(mentorMember, [Grant(channel: patientMember, projection: .metrics)])
        _ = try await Syncer(store: mentor).sync()
        #expect(try mentor.record(entry)?.value("mood") == .int(5))

        // 5. The grant ends while the mentor is offline: the next pull's subscription list
        // alone (no leave event was ever delivered) purges the journal, not the own note.
        policy.set(mentorMember, [])
        let left = try await Syncer(store: mentor).sync()
        #expect(left.purged >= 1)
        #expect(try mentor.record(entry) == nil)
        #expect(try mentor.record(ownNote) != nil)
        #expect(try mentor.journal().isEmpty)
        #expect(try mentor.cursors().keys.sorted() == ["own"])

        // The patient's own device never loses anything.
        #expect(try patient.record(entry)?.register("text")?.frontier.map(\.value) == [.string(secret)])
    }
}
