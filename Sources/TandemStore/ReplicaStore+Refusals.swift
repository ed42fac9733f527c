public import Foundation
import GRDB
public import TandemCore

extension ReplicaStore {
    /// Sets outbox entries aside: the given positions, and every outbox change of the given
    /// records (a refused create takes its record's later changes with it). They stay in
    /// the store, listed by `quarantined()`, and no longer block the outbox.
    ///
    /// - Returns: how many changes were set aside.
    @discardableResult
    public func quarantine(positions: Set<Int64>, records: Set<RecordID>, reason: String, nowMillis: UInt64) throws -> Int {
        do {
            return try queue.write { db in
                var moved = 0
                for row in try Row.fetchAll(db, sql: "SELECT seq, change FROM outbox ORDER BY seq") {
                    let position: Int64 = row["seq"]
                    let bytes: Data = row["change"]
                    let change = try Change(canonicalBytes: Array(bytes))
                    guard positions.contains(position) || records.contains(change.record) else { continue }
                    try db.execute(sql: "INSERT INTO quarantine (seq, change, reason, at) VALUES (?, ?, ?, ?)",
                                   arguments: [position, bytes, reason, Int64(nowMillis)])
                    try db.execute(sql: "DELETE FROM outbox WHERE seq = ?", arguments: [position])
                    moved += 1
                }
                return moved
            }
        } catch {
            throw map(error)
        }
    }

    /// Changes set aside, with the server's reason.
    public func quarantined() throws -> [(change: Change, reason: String)] {
        do {
            return try queue.read { db in
                try Row.fetchAll(db, sql: "SELECT change, reason FROM quarantine ORDER BY seq").map { row in
                    (try Change(canonicalBytes: Array(row["change"] as Data)), row["reason"] as String)
                }
            }
        } catch {
            throw map(error)
        }
    }

    /// Re-stamps the outbox after a clock-skew refusal (PROTOCOL.md §5.3): every change
    /// above the server's `mark` gets a new id from the clock with its floor lowered to
    /// the mark and the server's offset applied; the outbox, the stored state and every
    /// reference to the old ids are rewritten in one transaction, and the cursors are
    /// forgotten so the next pull reads the server's state again.
    ///
    /// - Returns: how many changes got new ids.
    @discardableResult
    /// With `reused`, the changes at or after it get new ids too, even at or below the mark:
    /// the server accepted other changes under those ids (`id-reused`).
    public func restamp(mark: HybridTimestamp?, reused: HybridTimestamp? = nil, serverTimeMillis: UInt64, localMillis: UInt64) throws -> Int {
        do {
            return try queue.write { db in
                let rows = try Row.fetchAll(db, sql: "SELECT seq, change FROM outbox ORDER BY seq")
                let outbox = try rows.map { try Change(canonicalBytes: Array($0["change"] as Data)) }
                var clock = try Self.clock(db)
                let offset = try Self.offset(serverTimeMillis, localMillis)
                let result = try Restamper.restamp(
                    outbox, replica: identity.replica, mark: mark, reused: reused, clock: &clock, serverOffsetMillis: offset,
                    wallMillis: localMillis)
                guard !result.mapping.isEmpty else { return 0 }
                for (row, change) in zip(rows, result.changes) {
                    try db.execute(sql: "UPDATE outbox SET change = ? WHERE seq = ?", arguments: [Data(change.canonicalBytes), row["seq"] as Int64])
                }
                var ids: [RecordID] = []
                var seen = Set<RecordID>()
                for change in outbox where seen.insert(change.record).inserted { ids.append(change.record) }
                var refs = try ReplicaRefs(db)
                let before = try Self.load(ids, refs: refs, db)
                let after = before.rewriting(replica: identity.replica, result.mapping)
                for id in ids {
                    guard let new = after[id], new != before[id] else { continue }
                    try Self.persist(old: before[id], new: new, refs: &refs, db)
                }
                try Self.saveClock(clock, db)
                try db.execute(sql: "UPDATE replica SET server_offset = ?", arguments: [offset])
                try db.execute(sql: "DELETE FROM sync_cursor")
                return result.mapping.count
            }
        } catch {
            throw map(error)
        }
    }
}
