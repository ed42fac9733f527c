import Foundation
import TandemCore
import GRDB

/// The store's tables, as named migrations (never edited once released: add a new one).
///
/// - `replica`: this replica's identity and clock floor (one row).
/// - `replica_ref`: a small integer for each replica id that wrote a stored change, so
///   rows carry 1–2 bytes instead of 16.
/// - `record_state` (v11): one row per record, its whole merged state in one value
///   (`RecordState.stored`: the winning create and tombstone, each field's winner, and each
///   `mv` field's covered context and frontier). Until v11, `field_state` held a row per
///   field and `text_value` a row per text value.
/// - `journal_entry`, `mentor_note`, `consent`: typed rows, recomputed from the merged
///   state whenever a record changes; they hold no free text.
/// - `outbox`: this replica's own changes not yet acknowledged by a server.
enum StoreSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-initial") { db in
            try db.execute(sql: """
                CREATE TABLE replica (
                    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
                    replica_id BLOB NOT NULL,
                    name TEXT NOT NULL,
                    role TEXT NOT NULL,
                    member_id BLOB,
                    clock_wall INTEGER NOT NULL,
                    clock_counter INTEGER NOT NULL,
                    server_offset INTEGER NOT NULL DEFAULT 0,
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE replica_ref (ref INTEGER PRIMARY KEY, replica BLOB NOT NULL UNIQUE);
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
                CREATE TABLE journal_entry (
                    id BLOB PRIMARY KEY, at TEXT, at_utc INTEGER, mood INTEGER, craving INTEGER,
                    slept INTEGER, symptoms TEXT NOT NULL, tags INTEGER NOT NULL, texts INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX journal_entry_at ON journal_entry (at_utc);
                CREATE TABLE mentor_note (
                    id BLOB PRIMARY KEY, patient BLOB NOT NULL, date TEXT, shared INTEGER NOT NULL,
                    follow_ups INTEGER NOT NULL, texts INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX mentor_note_patient ON mentor_note (patient, date);
                CREATE TABLE consent (
                    id BLOB PRIMARY KEY, patient BLOB NOT NULL, recipient BLOB NOT NULL, scope TEXT NOT NULL,
                    expires INTEGER, revoked INTEGER
                ) WITHOUT ROWID;
                CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, change BLOB NOT NULL);
                """)
        }
        // Journal rows clustered by local date and time, keyed (local_date, at_utc, id):
        // `journal list --since` reads one range, and entries, which arrive roughly in
        // time order, are appended instead of scattered by their random ids, so a batch of
        // received changes dirties a few pages of this table rather than one per entry.
        migrator.registerMigration("v2-journal-by-local-time") { db in
            try db.execute(sql: """
                CREATE TABLE journal_entry_v2 (
                    local_date TEXT NOT NULL, at_utc INTEGER NOT NULL, id BLOB NOT NULL,
                    at TEXT, mood INTEGER, craving INTEGER, slept INTEGER,
                    symptoms TEXT NOT NULL, tags INTEGER NOT NULL, texts INTEGER NOT NULL,
                    PRIMARY KEY (local_date, at_utc, id)
                ) WITHOUT ROWID;
                INSERT INTO journal_entry_v2 (local_date, at_utc, id, at, mood, craving, slept, symptoms, tags, texts)
                    SELECT coalesce(substr(at, 1, 10), ''), coalesce(at_utc, 0), id, at, mood, craving, slept, symptoms, tags, texts
                    FROM journal_entry;
                DROP TABLE journal_entry;
                ALTER TABLE journal_entry_v2 RENAME TO journal_entry;
                """)
        }
        // The server this replica syncs with, and a cursor per subscription.
        migrator.registerMigration("v3-sync") { db in
            try db.execute(sql: """
                CREATE TABLE sync_binding (
                    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
                    server TEXT NOT NULL, token TEXT NOT NULL, member BLOB NOT NULL, epoch TEXT NOT NULL,
                    enrolled_at INTEGER NOT NULL, last_sync INTEGER
                );
                CREATE TABLE sync_cursor (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
                """)
        }
        // Changes the server refused for good, set aside so the rest of the outbox syncs.
        migrator.registerMigration("v4-quarantine") { db in
            try db.execute(sql: """
                CREATE TABLE quarantine (seq INTEGER PRIMARY KEY, change BLOB NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL);
                """)
        }
        // Which subscription brought each record, so losing a subscription purges exactly
        // what no remaining one carries.
        migrator.registerMigration("v5-record-source") { db in
            try db.execute(sql: """
                CREATE TABLE record_source (record BLOB NOT NULL, key TEXT NOT NULL, PRIMARY KEY (record, key)) WITHOUT ROWID;
                CREATE INDEX record_source_key ON record_source (key);
                """)
        }
        // The member's own records are the ones `record_source` does not name.
        migrator.registerMigration("v6-own-records-unnamed") { db in
            try db.execute(sql: "DELETE FROM record_source WHERE key = 'own'")
        }
        // Each outbox entry names its record, field and kind, so a write finds the entries
        // it supersedes (the outbox is compacted: `ReplicaStore.compactOutbox`).
        migrator.registerMigration("v7-outbox-keys") { db in
            try db.execute(sql: """
                ALTER TABLE outbox ADD COLUMN record BLOB;
                ALTER TABLE outbox ADD COLUMN field TEXT;
                ALTER TABLE outbox ADD COLUMN kind INTEGER;
                """)
            let update = try db.makeStatement(sql: "UPDATE outbox SET record = ?, field = ?, kind = ? WHERE seq = ?")
            for row in try Row.fetchAll(db, sql: "SELECT seq, change FROM outbox") {
                let change = try Change(canonicalBytes: Array(row["change"] as Data))
                try update.execute(arguments: [Data(change.record.bytes), change.field.rawValue, Int64(change.kind.rawValue), row["seq"] as Int64])
            }
            try db.execute(sql: "CREATE INDEX outbox_key ON outbox (record, field, kind)")
        }
        // When a subscription ends by itself (a consent's expiry, as the server last listed
        // it): the device purges at that time, online or not.
        migrator.registerMigration("v8-subscription-until") { db in
            try db.execute(sql: "CREATE TABLE subscription_until (key TEXT PRIMARY KEY, until INTEGER NOT NULL) WITHOUT ROWID")
        }
        // The names and roles of the people this member deals with, as the server last
        // sent them (PROTOCOL.md §7.2), and the digest that names that list.
        migrator.registerMigration("v9-directory") { db in
            try db.execute(sql: """
                CREATE TABLE directory (member BLOB PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL) WITHOUT ROWID;
                CREATE TABLE directory_digest (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), digest TEXT NOT NULL);
                """)
        }
        // The member's own accounting of disclosures, as the server answered it (each entry
        // checked against the one before), and every head of that chain a pull showed.
        migrator.registerMigration("v10-disclosures") { db in
            try db.execute(sql: """
                CREATE TABLE disclosure (sequence INTEGER PRIMARY KEY, entry TEXT NOT NULL);
                CREATE TABLE disclosure_head (sequence INTEGER NOT NULL, hash TEXT NOT NULL, seen INTEGER NOT NULL, PRIMARY KEY (sequence, hash)) WITHOUT ROWID;
                """)
        }
        // One row per record instead of one per field (`record_state`): a merge reads and
        // writes each record it touches once, not each of its fields (about ten for a journal
        // entry). `collection` is what the create names ('' for none, NULL before the create
        // arrives); `conflicts` counts the text fields holding more than one value.
        migrator.registerMigration("v11-record-state") { db in
            try db.execute(sql: """
                CREATE TABLE record_state (
                    record BLOB PRIMARY KEY, collection TEXT, conflicts INTEGER NOT NULL, state BLOB NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX record_state_conflicts ON record_state (record) WHERE conflicts > 0;
                """)
            var refs = try ReplicaRefs(db)
            let ids = try Data.fetchAll(db, sql: "SELECT DISTINCT record FROM field_state").map { try RecordID(bytes: $0) }
            let insert = try db.makeStatement(sql: "INSERT INTO record_state (record, collection, conflicts, state) VALUES (?, ?, ?, ?)")
            for id in ids {
                guard let record = try v10State(of: id, refs: refs, db) else { continue }
                let stored = try record.stored { UInt64(try refs.ref($0, db)) }
                try insert.execute(arguments: [
                    Data(id.bytes), record.create.map { _ in record.collection?.rawValue ?? "" }, record.conflictedFields, Data(stored),
                ])
            }
            try db.execute(sql: "DROP TABLE field_state; DROP TABLE text_value")
        }
        return migrator
    }

    /// A record's state as the tables before v11 kept it: a row per field in `field_state`,
    /// and each text field's values in `text_value`.
    static func v10State(of id: RecordID, refs: ReplicaRefs, _ db: Database) throws -> RecordState? {
        var state = ReplicaState()
        let key = Data(id.bytes)
        for row in try Row.fetchAll(db, sql: "SELECT field, kind, wall, counter, replica, value FROM field_state WHERE record = ?", arguments: [key]) {
            guard let kind = MergeKind(rawValue: UInt8(clamping: row["kind"] as Int64)) else { continue }
            let name: String = row["field"]
            let field = name.isEmpty ? FieldName.record : try FieldName(name)
            let value = Array(row["value"] as Data)
            if kind == .mv {
                state.joinCovered(try CausalContext(encoded: value), record: id, field: field)
                continue
            }
            let timestamp = HybridTimestamp(wallMillis: UInt64(row["wall"] as Int64), counter: UInt16(clamping: row["counter"] as Int64))
            state.apply(Change(
                id: ChangeID(timestamp: timestamp, replica: try refs.replica(row["replica"] as Int64)), record: id, field: field, kind: kind,
                value: try Value(encoded: value)))
        }
        for row in try Row.fetchAll(db, sql: "SELECT field, wall, counter, replica, value, context FROM text_value WHERE record = ?", arguments: [key]) {
            let timestamp = HybridTimestamp(wallMillis: UInt64(row["wall"] as Int64), counter: UInt16(clamping: row["counter"] as Int64))
            state.apply(Change(
                id: ChangeID(timestamp: timestamp, replica: try refs.replica(row["replica"] as Int64)), record: id,
                field: try FieldName(row["field"] as String), kind: .mv, value: try Value(encoded: Array(row["value"] as Data)),
                context: try CausalContext(encoded: Array(row["context"] as Data))))
        }
        return state[id]
    }
}
