import Foundation
import GRDB
import TandemCore
@testable import TandemServer
import TandemServerPostgres
import TandemStore
import TandemTestSupport
import Testing

/// A store written before the center's statistics (`v15-journal-metrics`,
/// `v16-dashboard-sign-in`, `v17-note-written`, `v18-caseload-history`; PostgreSQL
/// `v3`–`v6`) opens with the journal's numbers, the notes' writing times and the caseloads
/// filled from what it held, on every store: the same population as a store that kept them
/// from the start.
@Suite("Outcome index migrations")
struct OutcomeIndexMigrationTests {
    /// A patient who journaled and consents to be counted, and their mentor's notes.
    func fill(_ storage: any CenterStore) async throws {
        let now = SystemWallClock().nowMillis()
        _ = try await storage.initialize(staffName: "Rae", nowMillis: now)
        var people: [Principal] = []
        for (role, name) in [(Role.patient, "Sam"), (.mentor, "Mia")] {
            let code = try await storage.invite(role: role, name: name, nowMillis: now - 20 * 86_400_000)
            let token = Secrets.newToken()
            _ = try await storage.enroll(
                codeHash: Secrets.hashCode(code), replica: .random(), deviceName: "phone", tokenHash: Secrets.hash(token), expectedRole: nil,
                expectedMember: nil, nowMillis: now - 20 * 86_400_000)
            people.append(try await storage.authenticate(tokenHash: Secrets.hash(token)))
        }
        let (sam, mia) = (people[0], people[1])
        _ = try await storage.assign(
            .mentor, carer: Member(id: mia.member, name: "Mia", role: .mentor), member: Member(id: sam.member, name: "Sam", role: .patient), nowMillis: now)
        var writer = ChangeWriter(replica: sam.replica!)
        var changes = try writer.write(
            ConsentEdit.grant(patient: sam.member, recipient: .center, scope: .aggregate, expiresMillis: nil, purpose: nil),
            to: .random(), current: nil, wallMillis: now - 19 * 86_400_000)
        for day in 0..<10 {
            var edit = JournalEdit()
            edit.at = try LocalDateTime(date: LocalDate(daysSince1970: Int(now / 86_400_000) - 15 + day), hour: 20, minute: 0, offsetMinutes: -300)
            edit.craving = 9 - day / 2
            edit.mood = day % 3 == 0 ? nil : 4
            edit.addSymptoms = day < 3 ? [.tremor, .nausea] : []
            changes += try writer.write(try edit.recordEdit(), to: .random(), current: nil, wallMillis: now - UInt64(15 - day) * 86_400_000)
        }
        _ = try await storage.push(changes, from: sam, repush: false, nowMillis: now, maxSkewMillis: 60_000)
        var mentor = ChangeWriter(replica: mia.replica!)
        var notes: [Change] = []
        for day in [12, 5, 1] {
            var note = NoteEdit()
            note.patient = sam.member
            note.text = "note"
            notes += try mentor.write(try note.recordEdit(), to: .random(), current: nil, wallMillis: now - UInt64(day) * 86_400_000)
        }
        _ = try await storage.push(notes, from: mia, repush: false, nowMillis: now, maxSkewMillis: 60_000)
    }

    typealias Counted = (entries: [JournalMetrics], notes: [Int], enrolled: [MemberID: Int], caseloads: [CaseloadSpan])

    func population(_ storage: any CenterStore) async throws -> Counted {
        let now = Int64(SystemWallClock().nowMillis())
        let population = try await storage.read { store in try OutcomePopulation.read(in: store, nowMillis: now) }
        return (population.entries.sorted { $0.day < $1.day }, population.notes.map(\.day).sorted(), population.enrolled, population.caseloads)
    }

    @Test func anEmbeddedStoreFromBeforeTheStatistics_fillsThemFromWhatItHeld() async throws {
        let dir = try TemporaryDirectory("outcome-migration")
        let path = dir.path("center.sqlite")
        let before: Counted
        do {
            let storage = try SQLiteServerStorage(path: path)
            try await fill(storage)
            before = try await population(storage)
        }
        #expect(before.entries.count == 10 && before.notes.count == 3 && before.enrolled.count == 1 && before.caseloads.count == 1)
        // Back to v14: no index of numbers, no dashboard tables, notes without their time.
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(sql: """
                DROP TABLE journal_metric; DROP TABLE dashboard_password; DROP TABLE sign_in_code; DROP TABLE dashboard_session;
                DROP INDEX note_written; ALTER TABLE note DROP COLUMN written; DROP TABLE caseload_span;
                DELETE FROM grdb_migrations WHERE identifier IN ('v15-journal-metrics', 'v16-dashboard-sign-in', 'v17-note-written', 'v18-caseload-history');
                """)
        }
        try queue.close()
        let migrated = try await population(try SQLiteServerStorage(path: path))
        #expect(migrated.entries == before.entries)
        #expect(migrated.notes == before.notes)
        #expect(migrated.enrolled == before.enrolled)
        #expect(migrated.caseloads == before.caseloads)
    }

    @Test(.enabled(if: TestCluster.url != nil || TestCluster.required))
    func aPostgreSQLDatabaseFromBeforeTheStatistics_fillsThemFromWhatItHeld() async throws {
        let location = try TestCluster.newDatabase()
        let before: Counted
        do {
            let storage = try await offThePool { try PostgresServerStorage(location: location, connections: 2) }
            try await fill(storage)
            before = try await population(storage)
        }
        #expect(before.entries.count == 10 && before.notes.count == 3 && before.caseloads.count == 1)
        try await offThePool {
            let connection = try BlockingConnection.open(location)
            defer { connection.close() }
            for statement in [
                "DROP TABLE journal_metric", "DROP TABLE dashboard_password", "DROP TABLE sign_in_code", "DROP TABLE dashboard_session",
                "ALTER TABLE note DROP COLUMN written", "DROP TABLE caseload_span",
                "DELETE FROM tandem_migration WHERE name IN ('v3-journal-metrics', 'v4-dashboard-sign-in', 'v5-note-written', 'v6-caseload-history')",
            ] { try connection.execute(statement) }
        }
        let migrated = try await population(try await offThePool { try PostgresServerStorage(location: location, connections: 2) })
        #expect(migrated.entries == before.entries)
        #expect(migrated.notes == before.notes)
        #expect(migrated.enrolled == before.enrolled)
        #expect(migrated.caseloads == before.caseloads)
    }
}
