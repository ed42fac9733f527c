public import Foundation
import GRDB
import TandemSQLite
import GRDBSQLite
public import TandemCore

extension ReplicaStore {
    /// Merges changes received from elsewhere, all in one transaction: idempotent, and
    /// the resulting state is the same whatever the order or duplication of delivery.
    ///
    /// - Returns: how many changes altered the state.
    /// - Throws: `StoreError.invalid` for a change that breaks PROTOCOL.md §2.3 (nothing is
    ///   written then), or `.database`.
    @discardableResult
    public func apply(_ changes: [Change]) throws -> Int {
        do {
            for change in changes { try change.validateShape() }
            return try queue.write { db in
                let changed = try Self.merge(changes, db)
                var clock = try Self.clock(db)
                for change in changes { clock.observe(change.timestamp) }
                try Self.saveClock(clock, db)
                return changed
            }
        } catch {
            throw map(error)
        }
    }

    /// Writes a local edit: stamps its changes, merges them, records the typed rows and
    /// appends the changes to the outbox, in one transaction.
    ///
    /// - Parameter record: the record to edit, or nil to create a new one.
    /// - Returns: the record's id and the changes written.
    /// - Throws: `StoreError.invalid` for a value that breaks its rule (nothing is written),
    ///   `.unknownRecord`, `.wrongCollection`, or `.database`.
    @discardableResult
    public func write(_ edit: RecordEdit, to record: RecordID?, clock wall: some WallClock) throws -> (RecordID, [Change]) {
        do {
            // What a person wrote exists nowhere else yet: fsync before reporting it written.
            return try queue.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = FULL")
                defer { try? db.execute(sql: "PRAGMA synchronous = NORMAL") }
                var written: (RecordID, [Change])? = nil
                var removedText = false
                try db.inTransaction(.immediate) {
                    let local = try Self.writeLocal(edit, to: record, replica: identity.replica, wall: wall, db)
                    written = (local.id, local.changes)
                    removedText = local.removedText
                    return .commit
                }
                guard let written else { throw StoreError.database(reason: "the write did not complete") }
                // Overwritten or deleted text leaves the files too, not only the tables
                // (secure_delete clears the main file): its old frames are checkpointed and
                // the WAL truncated. Best effort: a reader holding an old snapshot for more
                // than the busy timeout leaves it to the next such write or purge.
                // A short busy timeout: a reader or writer of another process must not hold
                // up the person's edit for the full 10 s (the next such write tries again).
                if removedText {
                    sqlite3_busy_timeout(db.sqliteConnection, 250)
                    defer { sqlite3_busy_timeout(db.sqliteConnection, 10_000) }
                    _ = try? db.checkpoint(.truncate)
                }
                return written
            }
        } catch {
            throw map(error)
        }
    }

    /// Whether a local write overwrites or deletes text the record held: a string value
    /// (journal or note text, a tag, a follow-up) of a field it writes, or any of a record
    /// it deletes.
    static func removesText(_ changes: [Change], from current: RecordState?) -> Bool {
        guard let current else { return false }
        // Free text, tags and follow-ups; `at` and `date` are strings too, and harmless.
        func holdsText(_ state: FieldState) -> Bool { state.changes.contains { if case .string = $0.value { true } else { false } } }
        for change in changes {
            switch change.kind {
            case .tombstone:
                if current.fields.values.contains(where: holdsText) { return true }
            case .lww, .mv:
                if let state = current.fields[FieldKey(change.field, change.kind)], holdsText(state) { return true }
            case .create, .min:
                break
            }
        }
        return false
    }

    private static func writeLocal(
        _ edit: RecordEdit, to record: RecordID?, replica: ReplicaID, wall: some WallClock, _ db: Database
    ) throws -> (id: RecordID, changes: [Change], removedText: Bool) {
        let id = record ?? RecordID.random()
        let current = try load([id], db)[id]
        if record != nil {
            guard let current, current.create != nil else { throw StoreError.unknownRecord(id.hex) }
            guard current.collection == edit.collection else {
                throw StoreError.wrongCollection(id: id.hex, expected: edit.collection.rawValue)
            }
        }
        var writer = ChangeWriter(replica: replica, clock: try clock(db))
        let changes = try writer.write(edit, to: id, current: current, wallMillis: wall.nowMillis())
        _ = try merge(changes, db)
        try compactOutbox(for: changes, db)
        let outbox = try db.cachedStatement(sql: "INSERT INTO outbox (change, record, field, kind) VALUES (?, ?, ?, ?)")
        for change in changes {
            try outbox.execute(arguments: [Data(change.canonicalBytes), Data(change.record.bytes), change.field.rawValue, Int64(change.kind.rawValue)])
        }
        try saveClock(writer.clock, db)
        return (id, changes, removesText(changes, from: current))
    }

    /// Drops the outbox entries that `changes` (a new local write) supersede, so what was
    /// never pushed and is already overwritten or deleted never leaves the device: a
    /// tombstone supersedes every edit of its record waiting in the outbox (a record
    /// created and deleted offline uploads its create and tombstone only); an `lww` value
    /// supersedes the earlier ones of its field (a newer id always wins); a text value
    /// supersedes the earlier ones its context covers. A `min` value may lose to an earlier
    /// one, so those stay. An entry dropped while a push carries it is harmless: the
    /// server merges it and its successor as it would have.
    static func compactOutbox(for changes: [Change], _ db: Database) throws {
        for change in changes {
            let record = Data(change.record.bytes)
            switch change.kind {
            case .tombstone:
                try db.cachedStatement(sql: "DELETE FROM outbox WHERE record = ? AND kind IN (1, 2, 3)").execute(arguments: [record])
            case .lww:
                try db.cachedStatement(sql: "DELETE FROM outbox WHERE record = ? AND field = ? AND kind = 1").execute(
                    arguments: [record, change.field.rawValue])
            case .mv:
                let rows = try Row.fetchAll(
                    db.cachedStatement(sql: "SELECT seq, change FROM outbox WHERE record = ? AND field = ? AND kind = 2"),
                    arguments: [record, change.field.rawValue])
                for row in rows {
                    let earlier = try Change(canonicalBytes: Array(row["change"] as Data))
                    guard change.context.covers(earlier.id) else { continue }
                    try db.cachedStatement(sql: "DELETE FROM outbox WHERE seq = ?").execute(arguments: [row["seq"] as Int64])
                }
            case .create, .min:
                break
            }
        }
    }

    /// This replica's changes not yet acknowledged, oldest first.
    public func outbox() throws -> [Change] {
        do {
            return try queue.read { db in
                try Data.fetchAll(db, sql: "SELECT change FROM outbox ORDER BY seq").map { try Change(canonicalBytes: Array($0)) }
            }
        } catch {
            throw map(error)
        }
    }

    // MARK: - Merge into the tables

    /// Loads the touched records, merges in memory with `TandemCore`'s rules, and writes
    /// back only what changed.
    static func merge(_ changes: [Change], _ db: Database) throws -> Int {
        var ids: [RecordID] = []
        var seen = Set<RecordID>()
        for change in changes where seen.insert(change.record).inserted { ids.append(change.record) }
        var refs = try ReplicaRefs(db)
        let before = try load(ids, refs: refs, db)
        var after = before
        var changed = 0
        var touched = Set<RecordID>()
        for change in changes where after.apply(change) {
            changed += 1
            touched.insert(change.record)
        }
        for id in ids where touched.contains(id) {
            guard let new = after[id] else { continue }
            try persist(old: before[id], new: new, refs: &refs, db)
        }
        return changed
    }

    /// Reads the merged state of the given records.
    static func load(_ ids: [RecordID], _ db: Database) throws -> ReplicaState {
        try load(ids, refs: try ReplicaRefs(db), db)
    }

    static func load(_ ids: [RecordID], refs: ReplicaRefs, _ db: Database) throws -> ReplicaState {
        var state = ReplicaState()
        state.reserveCapacity(ids.count)
        for id in ids {
            let key = id.bytes
            try db.query("SELECT state FROM record_state WHERE record = ?", { $0.blob(key) }) { row in
                try state.load(stored: row.blob(0), record: id) { try refs.replica(Int64(clamping: $0)) }
            }
        }
        return state
    }

    /// Writes a record's new state: one row (`record_state`), and its typed row.
    static func persist(old: RecordState?, new: RecordState, refs: inout ReplicaRefs, _ db: Database) throws {
        // A record narrowed to nothing (no create, tombstone or field left) keeps no row.
        guard new.create != nil || new.tombstone != nil || !new.fields.isEmpty else {
            try db.run("DELETE FROM record_state WHERE record = ?") { $0.blob(new.id.bytes) }
            try TypedRows.write(new, old: old, db)
            return
        }
        let stored = try new.stored { UInt64(try refs.ref($0, db)) }
        // The collection its create names ('' for a create that names none; NULL before the
        // create arrives), which lookups by collection and by id prefix read.
        let collection = new.create.map { _ in new.collection?.rawValue ?? "" }
        try db.run("INSERT OR REPLACE INTO record_state (record, collection, conflicts, state) VALUES (?, ?, ?, ?)") {
            $0.blob(new.id.bytes)
            $0.text(collection)
            $0.int(Int64(new.conflictedFields))
            $0.blob(stored)
        }
        try TypedRows.write(new, old: old, db)
    }
}

/// The integers that stand for replica ids in stored rows (`replica_ref`), loaded once a
/// transaction; 0 stands for no replica (the id columns of a covered-context row).
struct ReplicaRefs {
    private var refs: [ReplicaID: Int64] = [:]
    private var replicas: [Int64: ReplicaID] = [:]

    init(_ db: Database) throws {
        try db.query("SELECT ref, replica FROM replica_ref", { _ in }) { row in
            let replica = try ReplicaID(bytes: row.blob(1))
            refs[replica] = row.int(0)
            replicas[row.int(0)] = replica
        }
    }

    func replica(_ ref: Int64) throws -> ReplicaID {
        guard let replica = replicas[ref] else { throw StoreError.database(reason: "a stored change names an unknown replica") }
        return replica
    }

    mutating func ref(_ replica: ReplicaID, _ db: Database) throws -> Int64 {
        if let ref = refs[replica] { return ref }
        let ref = Int64(replicas.count + 1)
        try db.run("INSERT INTO replica_ref (ref, replica) VALUES (?, ?)") {
            $0.int(ref)
            $0.blob(replica.bytes)
        }
        refs[replica] = ref
        replicas[ref] = replica
        return ref
    }
}
