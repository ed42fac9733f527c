public import Foundation
import GRDB
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
            return try queue.write { db in
                let id = record ?? RecordID.random()
                let current = try Self.load([id], db)[id]
                if record != nil {
                    guard let current, current.create != nil else { throw StoreError.unknownRecord(id.hex) }
                    guard current.collection == edit.collection else {
                        throw StoreError.wrongCollection(id: id.hex, expected: edit.collection.rawValue)
                    }
                }
                var writer = ChangeWriter(replica: identity.replica, clock: try Self.clock(db))
                let changes = try writer.write(edit, to: id, current: current, wallMillis: wall.nowMillis())
                _ = try Self.merge(changes, db)
                let outbox = try db.cachedStatement(sql: "INSERT INTO outbox (change) VALUES (?)")
                for change in changes { try outbox.execute(arguments: [Data(change.canonicalBytes)]) }
                try Self.saveClock(writer.clock, db)
                return (id, changes)
            }
        } catch {
            throw map(error)
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
        let before = try load(ids, db)
        var after = before
        var changed = 0
        for change in changes where after.apply(change) { changed += 1 }
        guard changed > 0 else { return 0 }
        for id in ids {
            guard let new = after[id], new != before[id] else { continue }
            try persist(old: before[id], new: new, db)
        }
        return changed
    }

    /// Reads the merged state of the given records.
    static func load(_ ids: [RecordID], _ db: Database) throws -> ReplicaState {
        var state = ReplicaState()
        let fields = try db.cachedStatement(sql: "SELECT field, kind, wall, counter, replica, value FROM field_state WHERE record = ?")
        let texts = try db.cachedStatement(sql: "SELECT field, wall, counter, replica, value, context FROM text_value WHERE record = ?")
        let covered = try db.cachedStatement(sql: "SELECT field, context FROM text_covered WHERE record = ?")
        for id in ids {
            let key = Data(id.bytes)
            let rows = try Row.fetchCursor(fields, arguments: [key])
            while let row = try rows.next() {
                guard let kind = MergeKind(rawValue: UInt8(clamping: row[1] as Int64)) else { continue }
                state.apply(try change(id, field: row[0], kind: kind, row: row, valueColumn: 5, context: nil))
            }
            let textRows = try Row.fetchCursor(texts, arguments: [key])
            while let row = try textRows.next() {
                let context = try CausalContext(encoded: Array(row[5] as Data))
                state.apply(try change(id, field: row[0], kind: .mv, row: row, timeColumn: 1, valueColumn: 4, context: context))
            }
            let coveredRows = try Row.fetchCursor(covered, arguments: [key])
            while let row = try coveredRows.next() {
                state.joinCovered(try CausalContext(encoded: Array(row[1] as Data)), record: id, field: try FieldName(row[0]))
            }
        }
        return state
    }

    private static func change(
        _ record: RecordID, field: String, kind: MergeKind, row: Row, timeColumn: Int = 2, valueColumn: Int, context: CausalContext?
    ) throws -> Change {
        let timestamp = HybridTimestamp(wallMillis: UInt64(row[timeColumn] as Int64), counter: UInt16(clamping: row[timeColumn + 1] as Int64))
        let replica = try ReplicaID(bytes: row[timeColumn + 2] as Data)
        return Change(
            id: ChangeID(timestamp: timestamp, replica: replica), record: record,
            field: field.isEmpty ? .record : try FieldName(field), kind: kind,
            value: try Value(encoded: Array(row[valueColumn] as Data)), context: context ?? CausalContext())
    }

    /// Writes the difference between a record's old and new state.
    static func persist(old: RecordState?, new: RecordState, _ db: Database) throws {
        let key = Data(new.id.bytes)
        let upsert = try db.cachedStatement(sql: """
            INSERT OR REPLACE INTO field_state (record, field, kind, wall, counter, replica, value) VALUES (?, ?, ?, ?, ?, ?, ?)
            """)
        func write(_ change: Change) throws {
            try upsert.execute(arguments: [
                key, change.field.rawValue, Int64(change.kind.rawValue), Int64(change.timestamp.wallMillis),
                Int64(change.timestamp.counter), Data(change.replica.bytes), Data(change.value.encoded),
            ])
        }
        if let create = new.create, create != old?.create { try write(create) }
        if let tombstone = new.tombstone, tombstone != old?.tombstone {
            try write(tombstone)
            if old?.tombstone == nil {
                try db.execute(sql: "DELETE FROM field_state WHERE record = ? AND kind NOT IN (0, 4)", arguments: [key])
                try db.execute(sql: "DELETE FROM text_value WHERE record = ?", arguments: [key])
                try db.execute(sql: "DELETE FROM text_covered WHERE record = ?", arguments: [key])
            }
        }
        for (fieldKey, state) in new.fields where old?.fields[fieldKey] != state {
            switch state {
            case .winner(let change):
                try write(change)
            case .multiValue(let register):
                try db.cachedStatement(sql: "DELETE FROM text_value WHERE record = ? AND field = ?")
                    .execute(arguments: [key, fieldKey.field.rawValue])
                let insert = try db.cachedStatement(sql: """
                    INSERT OR REPLACE INTO text_value (record, field, wall, counter, replica, value, context) VALUES (?, ?, ?, ?, ?, ?, ?)
                    """)
                for change in register.frontier {
                    try insert.execute(arguments: [
                        key, fieldKey.field.rawValue, Int64(change.timestamp.wallMillis), Int64(change.timestamp.counter),
                        Data(change.replica.bytes), Data(change.value.encoded), Data(change.context.encoded),
                    ])
                }
                try db.cachedStatement(sql: "INSERT OR REPLACE INTO text_covered (record, field, context) VALUES (?, ?, ?)")
                    .execute(arguments: [key, fieldKey.field.rawValue, Data(register.covered.encoded)])
            }
        }
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO record (id, collection, creator, deleted) VALUES (?, ?, ?, ?)")
            .execute(arguments: [key, new.collection?.rawValue, new.creator.map { Data($0.bytes) }, new.isDeleted])
        try TypedRows.write(new, db)
    }
}
