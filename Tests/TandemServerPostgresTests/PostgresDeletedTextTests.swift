import Foundation
import TandemCore
import TandemServer
import TandemServerPostgres
import TandemStore
import TandemTestSupport
import Testing

/// Text a patient deletes, or replaces by an edit, is gone from every table of the
/// PostgreSQL store at the commit (PROTOCOL.md §9.15; what vacuum and the WAL keep is in
/// docs/operations.md). The tables are read whole, every row as text.
@Suite("PostgreSQL: deleted text")
struct PostgresDeletedTextTests {
    /// How many rows of any table hold `needle`, as text or as hex bytes (`bytea`'s text form).
    static func rowsHolding(_ needle: String, _ connection: BlockingConnection) throws -> Int {
        let hex = needle.utf8.map { String(format: "%02x", $0) }.joined()
        var found = 0
        for table in try TestCluster.tables(connection) {
            found += Int(try connection.texts("""
                SELECT count(*)::text FROM \(table) t WHERE t::text LIKE '%\(needle)%' OR t::text LIKE '%\(hex)%'
                """).first ?? "0") ?? 0
        }
        return found
    }

    @Test func deletedAndReplacedText_isInNoTable() async throws {
        try await TestCluster.withDatabase { location in
            let dir = try TemporaryDirectory("pg-deleted-text")
            let store = try PostgresServerStorage(location: location, connections: 2)
            let clock = SystemWallClock()
            let now = clock.nowMillis()
            _ = try await store.initialize(staffName: "Admin", nowMillis: now)
            let code = try await store.invite(role: .patient, name: "Sam", member: nil, nowMillis: now, validForMillis: 3_600_000)
            let phone = try ReplicaStore.create(at: dir.path("phone.sqlite"), name: "Sam", role: .patient, wallMillis: now)
            let token = Secrets.newToken()
            _ = try await store.enroll(
                codeHash: Secrets.hashCode(code), replica: phone.identity.replica, deviceName: "phone", tokenHash: Secrets.hash(token),
                expectedRole: nil, expectedMember: nil, nowMillis: now)
            let principal = try await store.authenticate(tokenHash: Secrets.hash(token))
            func push(_ changes: [Change]) async throws {
                _ = try await store.push(changes, from: principal, repush: false, nowMillis: clock.nowMillis(), maxSkewMillis: 60_000)
            }

            var entry = JournalEdit()
            entry.mood = 3
            entry.text = "Relapsed near the old bridge"
            let (deleted, first) = try phone.write(try entry.recordEdit(), to: nil, clock: clock)
            entry.text = "Called my sponsor twice"
            let (edited, second) = try phone.write(try entry.recordEdit(), to: nil, clock: clock)
            try await push(first + second)
            let admin = try BlockingConnection.open(location, applicationName: "tandem-test")
            defer { admin.close() }
            // The test can see text at all: both are there before.
            #expect(try Self.rowsHolding("old bridge", admin) > 0)
            #expect(try Self.rowsHolding("sponsor twice", admin) > 0)

            // One entry deleted, the other's text replaced.
            try await push(try phone.write(RecordEdit.delete(.journal), to: deleted, clock: clock).1)
            var edit = JournalEdit()
            edit.text = "A quiet evening"
            try await push(try phone.write(try edit.recordEdit(), to: edited, clock: clock).1)
            #expect(try Self.rowsHolding("old bridge", admin) == 0)
            #expect(try Self.rowsHolding("sponsor twice", admin) == 0)
            #expect(try Self.rowsHolding("quiet evening", admin) > 0)
            withExtendedLifetime(store) {}
        }
    }
}
