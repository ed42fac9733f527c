public import Foundation
import GRDB
public import TandemCore

extension ReplicaStore {
    /// The server a replica is enrolled with.
    public struct Binding: Sendable, Equatable {
        public var server: String
        public var token: String
        public var member: MemberID
        public var epoch: String
        public var lastSyncMillis: UInt64?

        public init(server: String, token: String, member: MemberID, epoch: String, lastSyncMillis: UInt64?) {
            self.server = server
            self.token = token
            self.member = member
            self.epoch = epoch
            self.lastSyncMillis = lastSyncMillis
        }
    }

    /// The server binding, once enrolled.
    public func binding() throws -> Binding? {
        try selectOne { db in
            guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT server, token, member, epoch, last_sync FROM sync_binding")) else { return nil }
            return Binding(
                server: row["server"], token: row["token"], member: try MemberID(bytes: row["member"] as Data),
                epoch: row["epoch"], lastSyncMillis: (row["last_sync"] as Int64?).map(UInt64.init))
        }
    }

    /// Binds this replica to a member of a server. What was written before stays and syncs
    /// as that member's: ownership follows the replica, so nothing is rewritten.
    ///
    /// - Throws: `StoreError.alreadyEnrolled` when bound to another member.
    public func bind(_ binding: Binding, role: Role, name: String, nowMillis: UInt64) throws {
        do {
            try queue.write { db in
                if let existing = try Data.fetchOne(db, sql: "SELECT member FROM sync_binding"), Array(existing) != binding.member.bytes {
                    throw StoreError.alreadyEnrolled
                }
                try db.execute(sql: """
                    INSERT OR REPLACE INTO sync_binding (singleton, server, token, member, epoch, enrolled_at) VALUES (1, ?, ?, ?, ?, ?)
                    """, arguments: [binding.server, binding.token, Data(binding.member.bytes), binding.epoch, Int64(nowMillis)])
                try db.execute(sql: "UPDATE replica SET member_id = ?, role = ?, name = ?", arguments: [Data(binding.member.bytes), role.rawValue, name])
            }
        } catch {
            throw map(error)
        }
    }

    /// Outbox entries in order, each with its position.
    public func outboxEntries(limit: Int) throws -> [(position: Int64, change: Change)] {
        try selectOne { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT seq, change FROM outbox ORDER BY seq LIMIT ?"), arguments: [limit]).map { row in
                (row["seq"] as Int64, try Change(canonicalBytes: Array(row["change"] as Data)))
            }
        }
    }

    /// A number that changes whenever another connection (another `tandem` command, another
    /// process) commits to this store, and never for this store's own commits
    /// (`PRAGMA data_version`): `sync --watch` reads the outbox only when it moved.
    public func othersCommits() throws -> Int {
        try selectOne { try Int.fetchOne($0.cachedStatement(sql: "PRAGMA data_version")) ?? 0 }
    }

    /// Returns once no other connection is writing this store (at once when none is). A
    /// writer holds SQLite's write lock from its first write until its commit is visible,
    /// fsync included, so a commit whose file writes were seen before this call is visible
    /// after it. It writes nothing (no file event of its own), and waits on GRDB's queue,
    /// never on the concurrency pool; a writer holding the lock past the busy timeout
    /// (10 s) makes it throw.
    public func awaitOtherWriters() async throws {
        do {
            try await queue.writeWithoutTransaction { db in
                try db.execute(sql: "BEGIN IMMEDIATE")
                try db.execute(sql: "ROLLBACK")
            }
        } catch { throw map(error) }
    }

    /// How many changes wait in the outbox.
    public func outboxCount() throws -> Int {
        try selectOne { try Int.fetchOne($0.cachedStatement(sql: "SELECT count(*) FROM outbox")) ?? 0 }
    }

    /// Drops outbox entries up to `position`: the server acknowledged them. Each cursor in
    /// `advancing` that still stands at its `from` moves to its `to` in the same transaction:
    /// the server said that what lies between is what was just acknowledged. With
    /// `ifAbsent` (a `from` at the channel's very start), a subscription with no cursor yet
    /// gets `to` as well: a device's first push into its member's empty channel need not
    /// pull it back. The clock's
    /// floor rises to the replica's `mark` (the highest id the server accepted from it), so
    /// this replica never stamps at or below it (PROTOCOL.md §9.3).
    public func acknowledge(
        through position: Int64, advancing: [(key: String, from: String, to: String, ifAbsent: Bool)] = [], mark: HybridTimestamp? = nil
    ) throws {
        do {
            try queue.write { db in
                try db.execute(sql: "DELETE FROM outbox WHERE seq <= ?", arguments: [position])
                if let mark { try Self.raiseFloor(to: mark, db) }
                for cursor in advancing {
                    try db.execute(
                        sql: "UPDATE sync_cursor SET value = ? WHERE key = ? AND value = ?", arguments: [cursor.to, cursor.key, cursor.from])
                    if cursor.ifAbsent {
                        try db.execute(sql: "INSERT OR IGNORE INTO sync_cursor (key, value) VALUES (?, ?)", arguments: [cursor.key, cursor.to])
                    }
                }
            }
        } catch {
            throw map(error)
        }
    }

    /// The cursor of each subscription.
    public func cursors() throws -> [String: String] {
        try selectOne { db in
            Dictionary(uniqueKeysWithValues: try Row.fetchAll(db.cachedStatement(sql: "SELECT key, value FROM sync_cursor")).map { ($0["key"] as String, $0["value"] as String) })
        }
    }

    /// Forgets every cursor: the next pull reads from zero (a new epoch).
    public func resetCursors() throws {
        do { try queue.write { try $0.execute(sql: "DELETE FROM sync_cursor") } } catch { throw map(error) }
    }

    public func recordSync(nowMillis: UInt64) throws {
        do { try queue.write { try $0.execute(sql: "UPDATE sync_binding SET last_sync = ?", arguments: [Int64(nowMillis)]) } } catch { throw map(error) }
    }
}
