public import Foundation
import GRDB
import TandemSQLite
public import TandemCore
import TandemProtocol

extension ReplicaStore {
    /// One subscription's page of a pull.
    public struct PulledPage: Sendable {
        public var key: String
        public var changes: [Change]
        public var cursor: String
        public init(key: String, changes: [Change], cursor: String) {
            self.key = key
            self.changes = changes
            self.cursor = cursor
        }
    }

    /// Merges the pages of a pull, records which subscription brought each record, saves
    /// the cursors and the server's clock offset, and purges what no active subscription
    /// carries any more, all in one transaction (PROTOCOL.md §9.4). `active` maps each
    /// subscription key the server listed to its projection (nil: every field).
    ///
    /// Never purged: the replica's own records (created by this replica, or in the `own`
    /// channel) and anything in the outbox.
    ///
    /// `until` holds when a listed subscription ends by itself (a consent's expiry): the
    /// store keeps it, and `purgeExpired` purges at that time without the server. A
    /// subscription already past its end at the server's time is purged now.
    ///
    /// - Returns: how many changes altered the state, and how many records were purged.
    @discardableResult
    public func applyPulled(
        _ pages: [PulledPage], active listed: [String: Projection?], until: [String: UInt64] = [:], mark: HybridTimestamp? = nil,
        serverTimeMillis: UInt64, localMillis: UInt64
    ) throws -> (changed: Int, purged: Int) {
        let active = listed.filter { key, _ in until[key].map { $0 > serverTimeMillis } ?? true }
        do {
            for page in pages { for change in page.changes { try change.validateShape() } }
            let result = try queue.write { db -> (Int, Int) in
                var changed = 0
                var clock = try Self.clock(db)
                for page in pages {
                    changed += try Self.merge(page.changes, db)
                    // The member's own records are the ones no row names (`SubscriptionKey.own`):
                    // a patient's device would otherwise keep a row per record (in two B-trees
                    // keyed by random ids, rewritten at every page of a sync), and a record of
                    // the member's own channel is never brought by another subscription.
                    var seen = Set<RecordID>()
                    for change in page.changes where page.key != SubscriptionKey.own && seen.insert(change.record).inserted {
                        try db.run("INSERT OR IGNORE INTO record_source (record, key) VALUES (?, ?)") {
                            $0.blob(change.record.bytes)
                            $0.text(page.key)
                        }
                    }
                    for change in page.changes { clock.observe(change.timestamp) }
                    try db.execute(sql: "INSERT OR REPLACE INTO sync_cursor (key, value) VALUES (?, ?)", arguments: [page.key, page.cursor])
                }
                // Never stamp at or below what the server accepted from this replica.
                if let mark { clock.observe(mark) }
                try Self.saveClock(clock, db)
                try db.execute(sql: "UPDATE replica SET server_offset = ?", arguments: [try Self.offset(serverTimeMillis, localMillis)])
                try db.execute(sql: "DELETE FROM subscription_until")
                for (key, end) in until where active[key] != nil {
                    try db.execute(sql: "INSERT INTO subscription_until (key, until) VALUES (?, ?)", arguments: [key, Int64(clamping: end)])
                }
                let purged = try purgeDropped(active: active, db)
                return (changed, purged)
            }
            if result.1 > 0 { try checkpointTruncate() }
            return result
        } catch {
            throw map(error)
        }
    }

    /// Purges what only subscriptions past their end carried (a consent's expiry, at the
    /// server's clock as this device last learned it), without asking the server: a device
    /// enforces an expiry offline too. Returns how many records were purged.
    @discardableResult
    public func purgeExpired(localMillis: UInt64) throws -> Int {
        do {
            // Read first, in one statement: a store with nothing expired is not written.
            let due = try queue.read { db -> Bool in
                try Bool.fetchOne(db.cachedStatement(sql: """
                    SELECT EXISTS (SELECT 1 FROM subscription_until WHERE until <= ? + (SELECT server_offset FROM replica))
                    """), arguments: [Int64(clamping: localMillis)]) ?? false
            }
            guard due else { return 0 }
            let purged = try queue.write { db -> Int in
                let offset = try Int64.fetchOne(db, sql: "SELECT server_offset FROM replica") ?? 0
                let now = Int64(clamping: localMillis) &+ offset
                let expired = Set(try String.fetchAll(db, sql: "SELECT key FROM subscription_until WHERE until <= ?", arguments: [now]))
                var active: [String: Projection?] = [:]
                for key in try String.fetchAll(db, sql: Self.storedKeys) where !expired.contains(key) {
                    // A key of no known projection is dropped too: it is read again at the next pull.
                    if let projection = SubscriptionKey.projection(of: key) { active[key] = projection }
                }
                try db.execute(sql: "DELETE FROM subscription_until WHERE until <= ?", arguments: [now])
                return try purgeDropped(active: active, db)
            }
            if purged > 0 { try checkpointTruncate() }
            return purged
        } catch {
            throw map(error)
        }
    }

    /// When the next subscription ends by itself, in this device's clock (nil: none does).
    public func nextExpiry() throws -> UInt64? {
        do {
            return try queue.read { db in
                let offset = try Int64.fetchOne(db, sql: "SELECT server_offset FROM replica") ?? 0
                return try Int64.fetchOne(db, sql: "SELECT min(until) FROM subscription_until").map { UInt64(max(0, $0 &- offset)) }
            }
        } catch {
            throw map(error)
        }
    }

    /// Drops subscriptions the server no longer lists, and the data only they carried.
    private func purgeDropped(active: [String: Projection?], _ db: Database) throws -> Int {
        let stored = Set(try String.fetchAll(db, sql: Self.storedKeys))
        let dropped = stored.subtracting(active.keys)
        guard !dropped.isEmpty else { return 0 }
        let protected = Set(try Data.fetchAll(db, sql: "SELECT change FROM outbox").map { try Change(canonicalBytes: Array($0)).record })
        var purged = 0
        for key in dropped {
            let records = try Data.fetchAll(db, sql: "SELECT record FROM record_source WHERE key = ?", arguments: [key]).map { try RecordID(bytes: $0) }
            try db.execute(sql: "DELETE FROM record_source WHERE key = ?", arguments: [key])
            try db.execute(sql: "DELETE FROM sync_cursor WHERE key = ?", arguments: [key])
            for record in records where try purge(record, protected: protected, active: active, db) {
                purged += 1
            }
        }
        return purged
    }

    /// Every subscription key the store knows: its cursors' and those `record_source` names.
    /// The distinct keys of `record_source` are found by hopping through its key index (a
    /// handful of keys over as many rows as records): `SELECT DISTINCT` read every row, on
    /// every page of a pull.
    static let storedKeys = """
        WITH RECURSIVE source(key) AS (
            SELECT min(key) FROM record_source
            UNION ALL
            SELECT (SELECT min(key) FROM record_source WHERE key > source.key) FROM source WHERE source.key IS NOT NULL
        )
        SELECT key FROM source WHERE key IS NOT NULL UNION SELECT key FROM sync_cursor
        """

    /// Purges one record a dropped subscription brought: whole when nothing else carries
    /// it, or down to the fields the remaining projections carry. Returns whether it did.
    /// (Kept apart from `purgeDropped`: Swift 6.3's optimizer crashed on the inlined form.)
    private func purge(_ record: RecordID, protected: Set<RecordID>, active: [String: Projection?], _ db: Database) throws -> Bool {
        if protected.contains(record) { return false }
        let remaining = try String.fetchAll(db, sql: "SELECT key FROM record_source WHERE record = ?", arguments: [Data(record.bytes)])
        guard let state = try Self.load([record], db)[record] else {
            if remaining.isEmpty { try Self.deleteRecord(record, db) }
            return remaining.isEmpty
        }
        if Self.createdBy(state, identity.replica) { return false }
        if remaining.isEmpty {
            try Self.deleteRecord(record, db)
            return true
        }
        // Narrowed: keep only the fields some remaining subscription carries.
        var projections: [Projection] = []
        for key in remaining {
            guard let granted = active[key] else { continue }
            guard let projection = granted else { return false }
            projections.append(projection)
        }
        guard let collection = state.collection else { return false }
        var kept = RecordState(id: record)
        var removed = false
        for change in state.heldChanges {
            if projections.contains(where: { Schema.carries($0, collection, field: change.field) }) {
                _ = kept.applyForRestore(change)
            } else {
                removed = true
            }
        }
        guard removed else { return false }
        try Self.deleteRecord(record, db)
        var refs = try ReplicaRefs(db)
        try Self.persist(old: nil, new: kept, refs: &refs, db)
        return true
    }

    /// Every change held for this member's own records (those no shared subscription
    /// brought, those created by this replica, and those in the outbox): what a device
    /// re-pushes to a restored server.
    public func ownRecordChanges() throws -> [Change] {
        do {
            return try queue.read { try ownRecordChanges($0) }
        } catch {
            throw map(error)
        }
    }

    /// After a restore (a new epoch): forgets every cursor and what others' subscriptions
    /// brought, so it is read again from the restored server; keeps the member's own records
    /// and the outbox.
    public func startNewEpoch(_ epoch: String) throws {
        do {
            let removed = try queue.write { db -> Int in
                let keep = Set(try ownRecordChanges(db).map(\.record))
                let shared = try Data.fetchAll(db, sql: "SELECT DISTINCT record FROM record_source").map { try RecordID(bytes: $0) }
                var removed = 0
                for record in shared where !keep.contains(record) {
                    try Self.deleteRecord(record, db)
                    removed += 1
                }
                try db.execute(sql: "DELETE FROM record_source")
                try db.execute(sql: "DELETE FROM sync_cursor")
                try db.execute(sql: "UPDATE sync_binding SET epoch = ?", arguments: [epoch])
                return removed
            }
            if removed > 0 { try checkpointTruncate() }
        } catch {
            throw map(error)
        }
    }

    private func ownRecordChanges(_ db: Database) throws -> [Change] {
        let all = try Data.fetchAll(db, sql: "SELECT record FROM record_state").map { try RecordID(bytes: $0) }
        let shared = Set(try Data.fetchAll(db, sql: "SELECT record FROM record_source").map { try RecordID(bytes: $0) })
        let outbox = Set(try Data.fetchAll(db, sql: "SELECT change FROM outbox").map { try Change(canonicalBytes: Array($0)).record })
        let state = try Self.load(all, db)
        var changes: [Change] = []
        for id in all {
            guard let record = state[id] else { continue }
            if !shared.contains(id) || outbox.contains(id) || Self.createdBy(record, identity.replica) {
                changes += record.heldChanges
            }
        }
        return changes
    }

    /// Whether `replica` wrote the record's create. Not inlined: Swift 6.3's optimizer
    /// (CopyPropagation) crashed on `state[id]?.creator == replica` in release builds.
    @inline(never)
    static func createdBy(_ record: RecordState, _ replica: ReplicaID) -> Bool {
        record.create?.replica == replica
    }

    static func deleteRecord(_ record: RecordID, _ db: Database) throws {
        let key = Data(record.bytes)
        try db.execute(sql: "DELETE FROM record_state WHERE record = ?", arguments: [key])
        for table in ["journal_entry", "mentor_note", "consent"] {
            try db.execute(sql: "DELETE FROM \(table) WHERE id = ?", arguments: [key])
        }
    }

    func checkpointTruncate() throws {
        try queue.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
    }
}

extension RecordState {
    /// Merges one held change into a fresh state (used when rebuilding a narrowed record).
    mutating func applyForRestore(_ change: Change) -> Bool {
        var state = ReplicaState()
        state.apply(heldChanges + [change])
        guard let rebuilt = state[id] else { return false }
        self = rebuilt
        return true
    }
}
