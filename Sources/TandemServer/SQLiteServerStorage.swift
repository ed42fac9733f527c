import Foundation
import GRDB
public import TandemCore
import TandemSQLite
public import TandemProtocol

/// The embedded server store: one SQLite file through GRDB, WAL with `synchronous=FULL`,
/// so a push is acknowledged only once its commit is on disk.
public final class SQLiteServerStorage: ServerStorage {
    let pool: DatabasePool
    public let path: String
    /// What SQLite opens: `path`, or a URI naming a VFS.
    let location: String
    let commitSignal = CommitSignal()
    let groupCommit = GroupCommit()
    let textScrub = TextScrub()

    /// Opens (creating and migrating if needed) the store at `path`.
    public convenience init(path: String) throws {
        try self.init(path: path, vfs: nil, synchronous: .full)
    }

    /// How a commit reaches the disk. Only `.full` keeps "durable before acknowledged";
    /// `.normal` exists for the power-loss test, to show that it catches the difference.
    enum Synchronous: String {
        case full = "FULL"
        case normal = "NORMAL"
    }

    /// Opens the store through a named SQLite VFS (the power-loss test's) and with a
    /// `synchronous` setting other than FULL: for tests only.
    init(path: String, vfs: String?, synchronous: Synchronous) throws {
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous.rawValue); PRAGMA secure_delete = ON; PRAGMA cache_size = -16384;")
        }
        if !FileManager.default.fileExists(atPath: path) {
            let fd = Foundation.open(path, O_CREAT | O_EXCL | O_WRONLY, 0o600)
            if fd >= 0 { close(fd) }
        }
        // This SQLite reads URI file names (USE_URI); a VFS is chosen with `?vfs=`.
        let location = vfs.map { "file:\(path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? path)?vfs=\($0)" } ?? path
        pool = try DatabasePool(path: location, configuration: config)
        // GRDB's pool turns WAL on after `prepareDatabase` and sets its writer to
        // synchronous=NORMAL, under which a commit returns before its fsync (the power-loss
        // test found it). The writer is the one connection that commits: set it back.
        // The writer's page cache holds a group commit's pages (with 2 MiB it spilled dirty
        // pages to the WAL in mid-transaction and read them back: a third of the writer's
        // time under the ingest benchmark), and checkpoints run every 8,192 WAL pages instead
        // of 1,000 (they run on the writer; fewer, larger ones cut the ingest p99 from 5.9 s
        // to 1.7 s; docs/benchmarks.md). 64 MiB, not more: every commit walks the whole
        // page cache's hash table (`pcache1TruncateUnsafe`, 8 % of the server's CPU with
        // 256 MiB). Savepoint journals stay in memory (`temp_store`): each batch of a group
        // commit has its savepoint, whose journal otherwise spilled to a temporary file that
        // was written, then dropped at every commit.
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous.rawValue); PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 8192; PRAGMA temp_store = MEMORY;")
        }
        self.path = path
        self.location = location
        // A store a newer `tandem` migrated is never served by an older one: it would number
        // new changes below devices' cursors (v8 numbers per channel), and they would never
        // be delivered.
        try MigrationLock.holding(for: path) {
            if try pool.read({ try ServerSchema.migrator.hasBeenSuperseded($0) }) { throw NewerStoreError(path: path) }
            try ServerSchema.migrator.migrate(pool)
        }
    }

    /// Copies the WAL into the database on a connection of its own, every `interval`, so
    /// that the writer's own checkpoints (every 8,192 pages) find the work done and only
    /// finish it (a passive checkpoint alone cannot restart a WAL that keeps growing).
    /// For a store that serves (`tandem serve`); runs until this storage is released.
    ///
    /// Text a commit removed (superseded or deleted; the main file's pages are zeroed by
    /// `secure_delete`) still sits in old WAL frames: after such a commit, within
    /// `scrubWithin`, a TRUNCATE checkpoint copies the WAL into the database and cuts the
    /// WAL file to zero bytes, so the text is gone from every file of the store
    /// (PROTOCOL.md §9.15). A busy store is tried again at the next interval.
    public func checkpointInBackground(every interval: Duration = .milliseconds(250), scrubWithin: Duration = .seconds(10)) throws {
        var config = Configuration()
        config.busyMode = .timeout(1)
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        let checkpointer = try DatabaseQueue(path: location, configuration: config)
        let scrub = textScrub
        Task.detached { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard self != nil else { break }
                if let pending = scrub.pending, ContinuousClock.now - pending.since >= scrubWithin - interval {
                    let done = (try? await checkpointer.writeWithoutTransaction { db in
                        let result = try db.checkpoint(.truncate)
                        return result.walFrameCount == result.checkpointedFrameCount
                    }) ?? false
                    if done { scrub.done(covering: pending.removals) }
                } else {
                    _ = try? await checkpointer.writeWithoutTransaction { db in try db.checkpoint(.passive) }
                }
            }
        }
    }

    // MARK: - ServerStorage

    public func devices(of member: MemberID?) async throws -> [DeviceInfo] {
        try await pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT id, member, name, created_at, revoked FROM device WHERE ? IS NULL OR member = ? ORDER BY created_at, id",
                arguments: [member.map { Data($0.bytes) }, member.map { Data($0.bytes) }]
            ).map { row in
                DeviceInfo(
                    id: hexString(row["id"] as Data), member: hexString(row["member"] as Data), name: row["name"],
                    enrolled: UInt64(row["created_at"] as Int64), revoked: (row["revoked"] as Int) != 0)
            }
        }
    }

    public func epoch() async throws -> String {
        try await pool.read { db in try Self.epoch(db) }
    }

    static func epoch(_ db: Database) throws -> String {
        guard let epoch = try Data.fetchOne(db.cachedStatement(sql: "SELECT epoch FROM center")) else {
            throw ServerError.unavailable("The server store is not initialized: run tandem admin init.")
        }
        return hexString(epoch)
    }

    public func authenticate(tokenHash: [UInt8]) async throws -> Principal {
        try await pool.read { db in try Self.principal(tokenHash: tokenHash, db) }
    }

    /// The member and device a token belongs to, read in `db`'s transaction.
    static func principal(tokenHash: [UInt8], _ db: Database) throws -> Principal {
        // Stepped through the C API: every request of every device checks its token.
        var found: (member: [UInt8], device: [UInt8]?, revoked: Bool, role: String, replica: [UInt8]?)?
        try db.query("""
            SELECT c.member, c.device, c.revoked, m.role, d.replica, d.revoked
            FROM credential c JOIN member m ON m.id = c.member LEFT JOIN device d ON d.id = c.device
            WHERE c.token_hash = ?
            """, { $0.blob(tokenHash) }) { row in
            found = (row.blob(0), row.optionalBlob(1), row.int(2) != 0 || (row.optionalInt(5) ?? 0) != 0, row.text(3), row.optionalBlob(4))
        }
        guard let found else { throw ServerError.unauthorized }
        if found.revoked { throw ServerError.revoked }
        guard let member = try? MemberID(bytes: found.member), let role = Role(rawValue: found.role) else { throw ServerError.unauthorized }
        return Principal(
            member: member, role: role, device: found.device.flatMap { try? RecordID(bytes: $0) },
            replica: found.replica.flatMap { try? ReplicaID(bytes: $0) })
    }

    public func enrollFailures(address: String, sinceMillis: UInt64) async throws -> (fromAddress: Int, total: Int) {
        try await pool.read { db in
            let since = Int64(sinceMillis)
            let fromAddress = try Int.fetchOne(
                db.cachedStatement(sql: "SELECT count(*) FROM enroll_failure WHERE address = ? AND at >= ?"), arguments: [address, since]) ?? 0
            let total = try Int.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM enroll_failure WHERE at >= ?"), arguments: [since]) ?? 0
            return (fromAddress, total)
        }
    }

    public func recordEnrollFailure(address: String, atMillis: UInt64, forgettingBefore cutoff: UInt64) async throws {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM enroll_failure WHERE at < ?", arguments: [Int64(cutoff)])
            try db.execute(sql: "INSERT INTO enroll_failure (at, address) VALUES (?, ?)", arguments: [Int64(atMillis), address])
        }
    }

    public func enroll(
        codeHash: [UInt8], replica: ReplicaID, deviceName: String, tokenHash: [UInt8],
        expectedRole: Role?, expectedMember: MemberID?, nowMillis: UInt64
    ) async throws -> Enrollment {
        let now = Int64(nowMillis)
        return try await pool.write { db in
            guard let invite = try Row.fetchOne(
                db, sql: """
                    SELECT role, name, member FROM invite WHERE code_hash = ? AND used = 0 AND voided = 0 AND expires > ?
                    AND (issuer_token IS NULL OR issuer_token IN (SELECT token_hash FROM credential WHERE revoked = 0))
                    """,
                arguments: [Data(codeHash), now])
            else { throw ServerError.invalidCode }
            let member: MemberID
            var name: String = invite["name"]
            var role: String = invite["role"]
            if let existing = (invite["member"] as Data?).flatMap({ try? MemberID(bytes: $0) }) {
                member = existing
                guard let row = try Row.fetchOne(db, sql: "SELECT name, role FROM member WHERE id = ?", arguments: [Data(member.bytes)]) else {
                    throw ServerError.invalidCode
                }
                name = row["name"]
                role = row["role"]
                if let expectedMember, expectedMember != existing {
                    throw ServerError.conflict("This home is enrolled as another member; enroll it with a code for that member, or use another home.")
                }
            } else {
                if expectedMember != nil {
                    throw ServerError.conflict("This home is enrolled as another member; enroll it with a code for that member, or use another home.")
                }
                member = MemberID.random()
                try db.execute(sql: "INSERT INTO member (id, name, role, created_at) VALUES (?, ?, ?, ?)",
                               arguments: [Data(member.bytes), name, role, now])
            }
            if let expectedRole, expectedRole.rawValue != role {
                throw ServerError.conflict("This code enrolls a \(role), but this home was made for a \(expectedRole.rawValue); use another home.")
            }
            guard try Int.fetchOne(db, sql: "SELECT count(*) FROM device WHERE replica = ?", arguments: [Data(replica.bytes)]) == 0 else {
                throw ServerError.conflict("This replica is already enrolled; a copied home must run tandem init anew.")
            }
            let device = RecordID.random()
            try db.execute(sql: "INSERT INTO device (id, member, replica, name, created_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [Data(device.bytes), Data(member.bytes), Data(replica.bytes), deviceName, now])
            try db.execute(sql: "INSERT INTO credential (token_hash, member, device, created_at) VALUES (?, ?, ?, ?)",
                           arguments: [Data(tokenHash), Data(member.bytes), Data(device.bytes), now])
            try db.execute(sql: "UPDATE invite SET used = 1 WHERE code_hash = ?", arguments: [Data(codeHash)])
            guard let epoch = try Data.fetchOne(db, sql: "SELECT epoch FROM center") else {
                throw ServerError.unavailable("The server store is not initialized.")
            }
            return Enrollment(member: member.hex, name: name, role: role, epoch: hexString(epoch))
        }
    }

    public func link(
        _ principal: Principal, issuerToken: [UInt8], codeHash: [UInt8], nowMillis: UInt64, expiresMillis: UInt64, maxUnused: Int
    ) async throws {
        try await pool.write { db in
            guard let name = try String.fetchOne(db, sql: "SELECT name FROM member WHERE id = ?", arguments: [Data(principal.member.bytes)]) else {
                throw ServerError.unauthorized
            }
            let unused = try Int.fetchOne(db, sql: """
                SELECT count(*) FROM invite WHERE member = ? AND kind = 'link' AND used = 0 AND voided = 0 AND expires > ?
                """, arguments: [Data(principal.member.bytes), Int64(nowMillis)]) ?? 0
            guard unused < maxUnused else { throw ServerError.tooManyCodes(maxUnused) }
            try Self.insertCode(
                db, hash: codeHash, kind: "link", role: principal.role, name: name, member: principal.member, issuer: issuerToken,
                nowMillis: nowMillis, expiresMillis: expiresMillis)
        }
    }
}

extension SQLiteServerStorage {
    /// Writes a consistent copy of the store to `path` (SQLite `VACUUM INTO`), while the
    /// server runs.
    public func backup(to path: String) throws {
        guard !FileManager.default.fileExists(atPath: path) else {
            throw ServerError.conflict("\(path) exists already; choose a new file for the backup.")
        }
        try pool.writeWithoutTransaction { db in try db.execute(sql: "VACUUM INTO ?", arguments: [path]) }
    }

    /// Replaces the store at `path` by a backup and gives it a new epoch: the one supported
    /// restore (docs/operations.md). Stop the server first. Devices notice the new epoch on
    /// their next pull, re-push what they hold of their member's records and read again;
    /// a device enrolled after the backup is told to enroll again and keeps its home.
    ///
    /// - Throws: `ServerError.badRequest` when `backup` is not a Tandem server store.
    public static func restore(backup: String, to path: String) throws {
        guard FileManager.default.fileExists(atPath: backup) else { throw ServerError.badRequest("No backup at \(backup).") }
        // Never under a running server: it would go on with the old store's files open.
        let lock = try ServingLock(store: path, exclusive: true)
        defer { withExtendedLifetime(lock) {} }
        // The backup itself is never opened (opening migrates): a copy beside the store is
        // checked, migrated and given its new epoch, and only then takes the store's place.
        let staging = path + ".restoring"
        let files = FileManager.default
        func removeStaging() { for suffix in ["", "-wal", "-shm"] { try? files.removeItem(atPath: staging + suffix) } }
        removeStaging()
        try files.copyItem(atPath: backup, toPath: staging)
        try files.setAttributes([.posixPermissions: 0o600], ofItemAtPath: staging)
        do {
            let copy = try SQLiteServerStorage(path: staging)
            guard try copy.pool.read({ try Int.fetchOne($0, sql: "SELECT count(*) FROM center") }) == 1 else {
                throw ServerError.badRequest("\(backup) is not an initialized Tandem server store.")
            }
            try copy.pool.write { db in
                try db.execute(sql: "UPDATE center SET epoch = ?", arguments: [Data(RecordID.random().bytes)])
            }
            try copy.pool.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
            try copy.pool.close()
        } catch {
            removeStaging()
            if error is ServerError { throw error }
            throw ServerError.badRequest("\(backup) is not a readable Tandem server store.")
        }
        for suffix in ["", "-wal", "-shm"] { try? files.removeItem(atPath: path + suffix) }
        try files.moveItem(atPath: staging, toPath: path)
        removeStaging()
    }
}

/// The store was written by a newer `tandem` (it holds migrations this one does not know).
public struct NewerStoreError: Error, CustomStringConvertible {
    public var path: String
    public var description: String {
        "The server store \(path) was upgraded by a newer tandem; run that version (or restore the backup taken before the upgrade)."
    }
}
