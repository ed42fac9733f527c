import Foundation
import GRDB
import TandemCore
@testable import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// A store written before records were numbered (`v3-records-numbered`) opens with the
/// same state, answers the same pulls and takes pushes; one it cannot migrate whole is
/// left as it was.
///
/// On SQLite only: the file store's own migrations; PostgreSQL's are `PostgresSchemaTests`'.
@Suite("Server store migrations")
struct ServerMigrationTests {
    var now: UInt64 { SystemWallClock().nowMillis() }

    /// Puts a store back in its v2 layout: `held` keyed by record id, owners in `record_owner`.
    static func downgradeToV2(_ path: String) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(sql: """
                CREATE TABLE record_owner (record BLOB PRIMARY KEY, owner BLOB NOT NULL, collection TEXT NOT NULL) WITHOUT ROWID;
                INSERT INTO record_owner SELECT id, owner, collection FROM record;
                CREATE TABLE held_v2 (
                    record BLOB NOT NULL, field TEXT NOT NULL, kind INTEGER NOT NULL,
                    wall INTEGER NOT NULL, counter INTEGER NOT NULL, replica BLOB NOT NULL,
                    seq INTEGER NOT NULL, channel BLOB NOT NULL, change BLOB NOT NULL,
                    PRIMARY KEY (record, field, kind, wall, counter, replica)
                ) WITHOUT ROWID;
                INSERT INTO held_v2 SELECT r.id, h.field, h.kind, h.wall, h.counter, h.replica, h.seq, h.channel, h.change
                    FROM held h JOIN record r ON r.number = h.record;
                DROP TABLE held;
                DROP TABLE record;
                ALTER TABLE held_v2 RENAME TO held;
                CREATE INDEX held_channel_seq ON held (channel, seq);
                CREATE INDEX held_seq ON held (seq);
                DELETE FROM grdb_migrations WHERE identifier = 'v3-records-numbered';
                """)
        }
    }

    /// A member with a device, and a store holding some of their journal entries (edited,
    /// one deleted), pushed through the real push path.
    func filledStore(_ dir: TemporaryDirectory) async throws -> (path: String, principal: Principal, device: ReplicaStore, records: [RecordID]) {
        let path = dir.path("center.sqlite")
        let storage = try SQLiteServerStorage(path: path)
        _ = try storage.initialize(staffName: "Admin", nowMillis: now)
        let code = try await storage.invite(role: .patient, name: "Pat", nowMillis: now)
        let device = try ReplicaStore.create(at: dir.path("phone.sqlite"), name: "phone", role: .patient, wallMillis: now)
        _ = try await storage.enroll(
            codeHash: Secrets.hashCode(code), replica: device.identity.replica, deviceName: "phone", tokenHash: Secrets.hash("token"),
            expectedRole: nil, expectedMember: nil, nowMillis: now)
        let principal = try await storage.authenticate(tokenHash: Secrets.hash("token"))
        var ids: [RecordID] = []
        for mood in 0..<12 {
            var edit = JournalEdit()
            edit.mood = mood % 11
            edit.text = "entry \(mood)"
            ids.append(try device.write(try edit.recordEdit(), to: nil, clock: SystemWallClock()).0)
        }
        var edit = JournalEdit()
        edit.craving = 7
        _ = try device.write(try edit.recordEdit(), to: ids[3], clock: SystemWallClock())
        var deletion = RecordEdit(collection: .journal)
        deletion.deletes = true
        _ = try device.write(deletion, to: ids[5], clock: SystemWallClock())
        let outbox = try device.outboxEntries(limit: 1_000)
        _ = try await storage.push(outbox.map(\.change), from: principal, repush: false, nowMillis: now, maxSkewMillis: 60_000)
        try device.acknowledge(through: outbox.last?.position ?? 0)
        return (path, principal, device, ids)
    }

    func page(_ storage: SQLiteServerStorage, _ principal: Principal) async throws -> [[UInt8]] {
        let snapshot = try await storage.pull(for: principal, policy: OwnRecordsPolicy(), limit: 1_000, check: nil) { _, _, _ in [0] }
        return snapshot.pages[0].changes.map(\.canonicalBytes)
    }

    @Test func aV2Store_keepsItsState_itsPulls_andTakesPushes() async throws {
        let dir = try TemporaryDirectory()
        let (path, principal, device, records) = try await filledStore(dir)
        let stateBefore = try SQLiteServerStorage(path: path).state(of: principal.member)
        let pullBefore = try await page(try SQLiteServerStorage(path: path), principal)
        #expect(pullBefore.count > 12)

        try Self.downgradeToV2(path)
        let migrated = try SQLiteServerStorage(path: path)
        #expect(try migrated.state(of: principal.member) == stateBefore)
        #expect(try await page(migrated, principal) == pullBefore)

        // An edit of a migrated record and a new record, through the migrated store.
        var edit = JournalEdit()
        edit.mood = 9
        _ = try device.write(try edit.recordEdit(), to: records[0], clock: SystemWallClock())
        _ = try device.write(try edit.recordEdit(), to: nil, clock: SystemWallClock())
        let outbox = try device.outboxEntries(limit: 1_000)
        let outcome = try await migrated.push(outbox.map(\.change), from: principal, repush: false, nowMillis: now, maxSkewMillis: 60_000)
        #expect(outcome.accepted == outbox.count)
        var expected = stateBefore
        for entry in outbox { expected.apply(entry.change) }
        #expect(try migrated.state(of: principal.member) == expected)
    }

    @Test func aStoreThatCannotBeMigratedWhole_isLeftAsItWas() async throws {
        let dir = try TemporaryDirectory()
        let (path, _, _, _) = try await filledStore(dir)
        try Self.downgradeToV2(path)
        // A held change whose record has no owner row: the migration would drop it.
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(sql: """
                INSERT INTO held (record, field, kind, wall, counter, replica, seq, channel, change)
                SELECT randomblob(16), field, kind, wall, counter, replica, seq, channel, change FROM held LIMIT 1
                """)
        }
        let heldBefore = try await queue.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM held") }
        try queue.close()

        #expect(throws: (any Error).self) { _ = try SQLiteServerStorage(path: path) }
        let after = try DatabaseQueue(path: path)
        let (held, v2Table, v3Table) = try await after.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM held"), try db.tableExists("record_owner"), try db.tableExists("record"))
        }
        #expect(held == heldBefore)
        #expect(v2Table && !v3Table)
    }

    /// A store from before channels were numbered apart (`v8-channel-sequences`): its held
    /// changes counted every channel together, so a channel's numbers had gaps where other
    /// channels' changes went. Migrated, each channel counts 1, 2, 3… in the same order,
    /// the feed knows its head, and pulls bring the same changes.
    @Test func aStoreNumberedAcrossChannels_isNumberedPerChannel() async throws {
        let dir = try TemporaryDirectory()
        let (path, principal, _, _) = try await filledStore(dir)
        let pullBefore = try await page(try SQLiteServerStorage(path: path), principal)
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(sql: """
                DROP TABLE channel_head;
                UPDATE held SET seq = seq * 3 + 7;
                UPDATE sequence SET value = (SELECT max(seq) + 5 FROM held);
                CREATE INDEX held_seq ON held (seq, channel);
                DELETE FROM grdb_migrations WHERE identifier = 'v8-channel-sequences';
                """)
        }
        try queue.close()

        let migrated = try SQLiteServerStorage(path: path)
        let numbers = try await migrated.pool.read { db in
            try Int64.fetchAll(db, sql: "SELECT seq FROM held WHERE channel = ? ORDER BY seq", arguments: [Data(principal.member.bytes)])
        }
        #expect(numbers == Array(1...Int64(pullBefore.count)))
        #expect(try await page(migrated, principal) == pullBefore)
        #expect(try await migrated.commits(after: 0).channels[principal.member] == Int64(pullBefore.count))
        let snapshot = try await migrated.pull(for: principal, policy: OwnRecordsPolicy(), limit: 10, check: nil) { _, _, heads in heads }
        #expect(snapshot.heads == [Int64(pullBefore.count)] && snapshot.pages[0].changes.isEmpty)
    }

    /// An older `tandem` never serves a store a newer one migrated (it would number new
    /// changes as the old schema did, below devices' cursors): it refuses it, unchanged.
    @Test func aStoreFromANewerTandem_isRefused() async throws {
        let dir = try TemporaryDirectory()
        let path = dir.path("center.sqlite")
        _ = try SQLiteServerStorage(path: path)
        let queue = try DatabaseQueue(path: path)
        try await queue.write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')") }
        try queue.close()
        #expect(throws: NewerStoreError.self) { _ = try SQLiteServerStorage(path: path) }
    }
}
