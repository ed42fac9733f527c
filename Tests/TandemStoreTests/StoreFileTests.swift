import Foundation
import GRDB
import TandemCore
@testable import TandemStore
import TandemTestSupport
import TandemWorkload
import Testing

@Suite("Store files")
struct StoreFileTests {
    /// A purge removes the bytes from disk: no trace of a planted text in the database,
    /// its WAL or any journal file.
    @Test func purge_leavesNoTraceOfAPlantedText() throws {
        let dir = try TemporaryDirectory()
        let store = try ReplicaStore.create(at: dir.path("replica.sqlite"), name: "Mentor", role: .mentor, wallMillis: 1)
        let planted = "PLANTED-relapse-story-7d1f"
        let tag = "PLANTEDTAG-9c2e"
        let changes = try Notation.changes("""
            1000.0@P create shared1 - = {collection: "journal"}
            1001.0@P mv shared1 text = "\(planted) and more words" ctx{}
            1002.0@P lww shared1 mood = 3
            1003.0@P lww shared1 tag.0123456789abcdef0123456789abcdef = "\(tag)"
            1000.0@P create keep1 - = {collection: "journal"}
            1001.0@P lww keep1 mood = 6
            """)
        try store.apply(changes)
        // Rewrite the text a few times so old copies sit in many WAL frames and pages.
        for round in 0..<5 {
            let record: RecordID = try Notation.id("shared1")
            let context = CausalContext([.init(replica: try Notation.id("P"), timestamp: HybridTimestamp(wallMillis: 1001 + UInt64(round)))])
            try store.apply([Change(
                id: ChangeID(timestamp: HybridTimestamp(wallMillis: 1002 + UInt64(round)), replica: try Notation.id("P")),
                record: record, field: "text", kind: .mv, value: .string("\(planted) v\(round)"), context: context)])
        }
        func filesContain(_ needle: String) throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: dir.url.path).filter { name in
                let bytes = try Data(contentsOf: dir.url.appendingPathComponent(name))
                return bytes.range(of: Data(needle.utf8)) != nil
            }
        }
        #expect(try !filesContain(planted).isEmpty, "the planted text is on disk before the purge")
        try store.purge([try Notation.id("shared1")])
        #expect(try filesContain(planted).isEmpty)
        #expect(try filesContain(tag).isEmpty)
        #expect(try store.record(try Notation.id("keep1"))?.value("mood") == .int(6))
        #expect(try store.record(try Notation.id("shared1")) == nil)
        #expect(try store.integrityCheck() == ["ok"])
        let wal = dir.path("replica.sqlite-wal")
        if FileManager.default.fileExists(atPath: wal) {
            #expect(try FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int == 0)
        }
    }

    /// The owner's own edits and deletes remove text from the files too: an overwritten
    /// text and a deleted entry's text and tags are in no file of the store (the WAL is
    /// checkpointed and truncated after such a write).
    @Test func ownEditsAndDeletes_leaveNoTraceOfTheTextTheyRemove() throws {
        let dir = try TemporaryDirectory()
        let store = try ReplicaStore.create(at: dir.path("replica.sqlite"), name: "Pat", role: .patient, wallMillis: 1)
        func filesContain(_ needle: String) throws -> Bool {
            try FileManager.default.contentsOfDirectory(atPath: dir.url.path).contains { name in
                try Data(contentsOf: dir.url.appendingPathComponent(name)).range(of: Data(needle.utf8)) != nil
            }
        }
        var first = JournalEdit()
        first.mood = 2
        first.text = "PLANTED-first-draft-51c0"
        first.addTags = ["PLANTEDTAG-a8e4"]
        let (id, _) = try store.write(try first.recordEdit(), to: nil, clock: SystemWallClock())
        #expect(try filesContain("PLANTED-first-draft-51c0"), "on disk once written")
        var second = JournalEdit()
        second.text = "PLANTED-second-draft-77d2"
        try store.write(try second.recordEdit(), to: id, clock: SystemWallClock())
        #expect(try !filesContain("PLANTED-first-draft-51c0"), "the overwritten text left every file")
        #expect(try filesContain("PLANTED-second-draft-77d2"))
        var deletion = RecordEdit(collection: .journal)
        deletion.deletes = true
        try store.write(deletion, to: id, clock: SystemWallClock())
        #expect(try !filesContain("PLANTED-second-draft-77d2"))
        #expect(try !filesContain("PLANTEDTAG-a8e4"))
        #expect(try store.integrityCheck() == ["ok"])
    }

    /// `Fixtures/stores/v1.sqlite` was written by schema v1; it opens, migrates and keeps
    /// its data. `TANDEM_REGENERATE_FIXTURES=1` rewrites it.
    /// The keys a pull checks for dropped subscriptions are found through the key index,
    /// not by reading every `record_source` row, and include keys whose cursors are gone:
    /// a subscription dropped after the cursors were reset is still purged.
    /// `sync --watch` reads its outbox only when `othersCommits()` moved: it must move for a
    /// write by another process's connection, and not for the store's own.
    @Test func othersCommits_movesForAnotherConnectionsWrite_notForItsOwn() throws {
        let dir = try TemporaryDirectory()
        let watching = try ReplicaStore.create(at: dir.path("replica.sqlite"), name: "Pat", role: .patient, wallMillis: 1)
        let before = try watching.othersCommits()
        var edit = JournalEdit()
        edit.mood = 4
        _ = try watching.write(try edit.recordEdit(), to: nil, clock: FixedWallClock(millis: 2))
        #expect(try watching.othersCommits() == before, "the store's own write")
        #expect(try watching.outboxCount() > 0)

        let other = try ReplicaStore.open(at: dir.path("replica.sqlite"))
        _ = try other.write(try edit.recordEdit(), to: nil, clock: FixedWallClock(millis: 3))
        let after = try watching.othersCommits()
        #expect(after != before, "another connection's write")
        #expect(try watching.othersCommits() == after, "nothing new since")
    }

    @Test func subscriptionKeys_areFoundThroughTheIndex_evenWithoutCursors() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path("replica.sqlite")
        let store = try ReplicaStore.create(at: path, name: "Mentor", role: .mentor, wallMillis: 1)
        let own = try Notation.changes("""
            1000.0@M create mine - = {collection: "note"}
            """)
        let shared = try Notation.changes("""
            1000.0@P create theirs - = {collection: "journal"}
            1001.0@P lww theirs mood = 4
            """)
        let both: [String: Projection?] = ["own": Optional<Projection>.none, "m-p-metrics": .metrics]
        try store.applyPulled(
            [.init(key: "own", changes: own, cursor: "c1"), .init(key: "m-p-metrics", changes: shared, cursor: "c2")],
            active: both, serverTimeMillis: 2_000, localMillis: 2_000)
        try store.resetCursors()

        let queue = try DatabaseQueue(path: path)
        let keys = try queue.read { try String.fetchAll($0, sql: ReplicaStore.storedKeys) }
        #expect(Set(keys) == ["m-p-metrics"], "own records are not named; its cursor is gone")
        let plan = try queue.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + ReplicaStore.storedKeys).map { $0["detail"] as String }
        }
        #expect(!plan.contains { $0.hasPrefix("SCAN record_source") }, "plan: \(plan)")
        try queue.close()

        // The shared channel is no longer listed: what it alone brought goes.
        let result = try store.applyPulled([], active: ["own": Optional<Projection>.none], serverTimeMillis: 3_000, localMillis: 3_000)
        #expect(result.purged == 1)
        #expect(try store.state()[try Notation.id("theirs")] == nil)
        #expect(try store.state()[try Notation.id("mine")] != nil)
    }

    /// A store from before v6 named its own records under `own`; opening it drops those
    /// rows and keeps the shared subscriptions' rows.
    @Test func ownRecordRows_goWhenAnOlderStoreOpens() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path("replica.sqlite")
        _ = try ReplicaStore.create(at: path, name: "Mentor", role: .mentor, wallMillis: 1)
        let older = try DatabaseQueue(path: path)
        try older.write { db in
            try db.execute(sql: "INSERT INTO record_source (record, key) VALUES (x'01', 'own'), (x'02', 'own'), (x'03', 'm-p-metrics')")
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v6-own-records-unnamed'")
        }
        try older.close()

        _ = try ReplicaStore.open(at: path)
        let opened = try DatabaseQueue(path: path)
        let rows = try opened.read { try Row.fetchAll($0, sql: "SELECT hex(record) AS record, key FROM record_source").map { "\($0["record"] as String) \($0["key"] as String)" } }
        #expect(rows == ["03 m-p-metrics"])
        try opened.close()
    }

    @Test func storeWrittenByV1_opensAndMigrates() throws {
        let fixture = FixtureFiles.directory("stores").appendingPathComponent("v1.sqlite")
        // A file of a shipped schema is never written again (Fixtures/stores/README.md):
        // this code no longer writes v1's tables.
        if FixtureFiles.regenerate { Issue.record("v1.sqlite stays as v1 wrote it; add a file for a new schema instead") }
        let dir = try TemporaryDirectory()
        let path = dir.path("replica.sqlite")
        try FileManager.default.copyItem(atPath: fixture.path, toPath: path)
        let before = try DatabaseQueue(path: path)
        #expect(try before.read { try StoreSchema.migrator.appliedIdentifiers($0) } == ["v1-initial"])
        try before.close()

        let store = try ReplicaStore.open(at: path)
        #expect(store.identity.name == "Fixture patient")
        var expected = ReplicaState()
        expected.apply(try Self.fixtureChanges())
        let rows = try store.journal()
        #expect(rows.count == expected.records.values.compactMap(JournalEntry.init).count)
        #expect(rows.count > 5)
        #expect(try store.journal(since: LocalDate(parsing: "2026-01-07")).count < rows.count, "the new column was filled")
        #expect(try store.journal(since: LocalDate(parsing: "2026-01-07")).count > 0)
        #expect(try store.integrityCheck() == ["ok"])
        #expect(try store.canonicalDump() == expected.canonicalDump())
    }

    /// A store of v10 kept a row per field (`field_state`) and per text value (`text_value`);
    /// opening it moves each record into one `record_state` row and drops those tables,
    /// keeping the whole state: texts in conflict, deleted records, every winner.
    @Test(arguments: [4, 5])
    func storeWithARowPerField_opensWithARowPerRecord_andTheSameState(seed: UInt64) throws {
        let dir = try TemporaryDirectory()
        let path = dir.path("replica.sqlite")
        var rng = SeededGenerator(seed: seed)
        // Two devices' changes, each delivered apart and shuffled: texts conflict.
        let workload = try Workload.generate(.init(patients: 4, days: 14, seed: seed))
        // Beside the workload, a text two devices edited at once, and a record deleted.
        let pinned = try Notation.changes("""
            1000.0@A create r - = {collection: "journal"}
            1001.0@A mv r text = "first" ctx{}
            2000.0@A mv r text = "phone" ctx{A=1001.0}
            2001.0@B mv r text = "laptop" ctx{A=1001.0}
            1000.0@A create gone - = {collection: "journal"}
            1001.0@A mv gone text = "deleted words" ctx{}
            3000.0@B tombstone gone - = null
            """)
        let changes = (workload.changes + workload.changes.prefix(40) + pinned).shuffled(using: &rng)
        var expected = ReplicaState()
        expected.apply(changes)
        #expect(expected.records.values.contains { $0.isDeleted }, "the workload deletes some records")
        #expect(expected.records.values.contains { $0.register("text") != nil }, "the workload writes texts")
        let store = try ReplicaStore.create(at: path, name: "Sam", role: .patient, wallMillis: 1)
        try store.apply(changes)
        let conflicts = try store.conflicts()
        #expect(!conflicts.isEmpty, "texts in conflict")
        try store.queue.close()

        // The v10 layout, written the way v10 wrote it, from the expected state.
        let older = try DatabaseQueue(path: path)
        try older.write { db in
            try db.execute(sql: """
                CREATE TABLE field_state (
                    record BLOB NOT NULL, field TEXT NOT NULL, kind INTEGER NOT NULL,
                    wall INTEGER NOT NULL, counter INTEGER NOT NULL, replica INTEGER NOT NULL,
                    value BLOB NOT NULL,
                    PRIMARY KEY (record, field, kind)
                ) WITHOUT ROWID;
                CREATE TABLE text_value (
                    record BLOB NOT NULL, field TEXT NOT NULL,
                    wall INTEGER NOT NULL, counter INTEGER NOT NULL, replica INTEGER NOT NULL,
                    value BLOB NOT NULL, context BLOB NOT NULL,
                    PRIMARY KEY (record, field, wall, counter, replica)
                ) WITHOUT ROWID;
                DROP TABLE record_state;
                DELETE FROM grdb_migrations WHERE identifier = 'v11-record-state';
                """)
            var refs: [ReplicaID: Int64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT ref, replica FROM replica_ref") {
                refs[try ReplicaID(bytes: Array(row["replica"] as Data))] = row["ref"]
            }
            func field(_ record: RecordID, _ change: Change) throws {
                try db.execute(sql: "INSERT INTO field_state VALUES (?, ?, ?, ?, ?, ?, ?)", arguments: [
                    Data(record.bytes), change.field.rawValue, Int64(change.kind.rawValue), Int64(change.timestamp.wallMillis),
                    Int64(change.timestamp.counter), refs[change.replica], Data(change.value.encoded),
                ])
            }
            for (id, record) in expected.records {
                if let create = record.create { try field(id, create) }
                if let tombstone = record.tombstone { try field(id, tombstone) }
                for (key, state) in record.fields {
                    switch state {
                    case .winner(let change):
                        try field(id, change)
                    case .multiValue(let register):
                        try db.execute(sql: "INSERT INTO field_state VALUES (?, ?, 2, 0, 0, 0, ?)", arguments: [
                            Data(id.bytes), key.field.rawValue, Data(register.covered.encoded),
                        ])
                        for change in register.frontier {
                            try db.execute(sql: "INSERT INTO text_value VALUES (?, ?, ?, ?, ?, ?, ?)", arguments: [
                                Data(id.bytes), key.field.rawValue, Int64(change.timestamp.wallMillis), Int64(change.timestamp.counter),
                                refs[change.replica], Data(change.value.encoded), Data(change.context.encoded),
                            ])
                        }
                    }
                }
            }
        }
        try older.close()

        let opened = try ReplicaStore.open(at: path)
        #expect(try opened.canonicalDump() == expected.canonicalDump())
        #expect(try opened.conflicts() == conflicts)
        let ids = Array(expected.records.keys)
        #expect(try opened.collections(of: ids).count == expected.records.values.filter { $0.collection != nil }.count)
        let tables = try opened.queue.read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type = 'table'") }
        #expect(!tables.contains("field_state") && !tables.contains("text_value") && tables.contains("record_state"))
        #expect(try opened.integrityCheck() == ["ok"])
        // It merges on from there.
        #expect(try opened.apply(workload.changes) == 0)
    }

    @Test func storeWrittenByANewerVersion_isRefused() throws {
        let dir = try TemporaryDirectory()
        let store = try ReplicaStore.create(at: dir.path("replica.sqlite"), name: "Sam", role: .patient, wallMillis: 1)
        try DatabaseQueue(path: store.path).write { db in
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')")
        }
        #expect(throws: StoreError.newerVersion(path: store.path)) { try ReplicaStore.open(at: store.path) }
    }

    static func fixtureChanges() throws -> [Change] {
        try Workload.generate(.init(patients: 1, days: 6, seed: 11, metricsOnly: true)).changes
    }
}
