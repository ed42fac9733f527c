public import Foundation
public import GRDB
public import TandemCore

/// A device's replica: one SQLite file holding the merged records, typed rows for
/// queries, the outbox and the replica's identity.
///
/// ```swift
/// let store = try ReplicaStore.create(at: path, name: "Sam", role: .patient)
/// var edit = JournalEdit(); edit.mood = 4
/// let (id, _) = try store.write(try edit.recordEdit(), to: nil, clock: SystemWallClock())
/// try store.apply(remoteBatch.changes)   // idempotent, one transaction
/// ```
///
/// Durability: WAL. A local `write` commits with `synchronous=FULL`: it returns only after
/// its transaction is fsynced, so what the CLI reported written survives kill -9 of the
/// process and a power cut of the machine. `apply` (changes received from a server)
/// commits with `synchronous=NORMAL`: it survives kill -9 of the process, and a power cut
/// can only roll back the last applied batches, never corrupt the file; a later sync
/// fetches them again (the cursor is saved in the same transaction). `secure_delete` is on,
/// and a purge checkpoints and truncates the WAL, so purged bytes leave the files.
public final class ReplicaStore: Sendable {
    public let path: String
    public let identity: Identity
    let queue: DatabaseQueue

    /// Who this replica is.
    public struct Identity: Sendable, Equatable {
        public var replica: ReplicaID
        public var name: String
        public var role: Role
        /// Set once a server enrolls the replica.
        public var member: MemberID?
    }

    private init(path: String, queue: DatabaseQueue, identity: Identity) {
        self.path = path
        self.queue = queue
        self.identity = identity
    }

    /// Creates a new store for a new replica. The file is created with mode 0600.
    ///
    /// - Throws: `StoreError.alreadyExists`, or `.database`.
    public static func create(
        at path: String, name: String, role: Role, replica: ReplicaID = .random(), wallMillis: UInt64
    ) throws -> ReplicaStore {
        guard !FileManager.default.fileExists(atPath: path) else { throw StoreError.alreadyExists(path: path) }
        let fd = Foundation.open(path, O_CREAT | O_EXCL | O_WRONLY, 0o600)
        guard fd >= 0 else { throw StoreError.database(reason: "cannot create \(path): \(String(cString: strerror(errno)))") }
        close(fd)
        do {
            let queue = try openQueue(path)
            try StoreSchema.migrator.migrate(queue)
            try queue.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO replica (singleton, replica_id, name, role, clock_wall, clock_counter, created_at)
                        VALUES (1, ?, ?, ?, 0, 0, ?)
                        """,
                    arguments: [Data(replica.bytes), name, role.rawValue, Int64(wallMillis)])
            }
            return ReplicaStore(path: path, queue: queue, identity: Identity(replica: replica, name: name, role: role, member: nil))
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw map(error, path: path)
        }
    }

    /// Opens an existing store, migrating it if an older version wrote it.
    ///
    /// - Throws: `StoreError.notFound`, `.newerVersion`, `.unreadable`.
    public static func open(at path: String) throws -> ReplicaStore {
        try open(at: path, vfs: nil)
    }

    /// Opens an existing store through a named SQLite VFS (tests: `Sources/CPowerCut`).
    static func open(at path: String, vfs: String?) throws -> ReplicaStore {
        guard FileManager.default.fileExists(atPath: path) else { throw StoreError.notFound(path: path) }
        do {
            let queue = try openQueue(path, vfs: vfs)
            let migrator = StoreSchema.migrator
            let (superseded, complete) = try queue.read { db in
                (try migrator.hasBeenSuperseded(db), try migrator.hasCompletedMigrations(db))
            }
            if superseded { throw StoreError.newerVersion(path: path) }
            // Reading a current store writes nothing at all.
            if !complete { try migrator.migrate(queue) }
            let identity = try queue.read { db -> Identity? in
                guard let row = try Row.fetchOne(db, sql: "SELECT replica_id, name, role, member_id FROM replica") else { return nil }
                guard let replica = try? ReplicaID(bytes: row["replica_id"] as Data), let role = Role(rawValue: row["role"]) else { return nil }
                let member = (row["member_id"] as Data?).flatMap { try? MemberID(bytes: $0) }
                return Identity(replica: replica, name: row["name"], role: role, member: member)
            }
            guard let identity else { throw StoreError.unreadable(path: path) }
            return ReplicaStore(path: path, queue: queue, identity: identity)
        } catch {
            throw map(error, path: path)
        }
    }

    static func openQueue(_ path: String, vfs: String? = nil) throws -> DatabaseQueue {
        var config = Configuration()
        config.journalMode = .wal
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            try db.execute(sql: ReplicaStore.connectionPragmas)
        }
        // This SQLite reads URI file names (USE_URI); a VFS is chosen with `?vfs=`.
        let location = vfs.map { "file:\(path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? path)?vfs=\($0)" } ?? path
        return try DatabaseQueue(path: location, configuration: config)
    }

    /// Every connection's settings; `apply` runs with exactly these, and the store
    /// benchmark gives its plain-SQLite baseline the same.
    public static let connectionPragmas = "PRAGMA synchronous = NORMAL; PRAGMA secure_delete = ON; PRAGMA cache_size = -65536;"

    static func map(_ error: any Error, path: String) -> StoreError {
        if let error = error as? StoreError { return error }
        if let error = error as? TandemCoreError { return .invalid(error) }
        if let error = error as? DatabaseError {
            switch error.resultCode {
            case .SQLITE_NOTADB, .SQLITE_CORRUPT: return .unreadable(path: path)
            default: return .database(reason: error.message ?? "SQLite error \(error.resultCode.rawValue)")
            }
        }
        return .database(reason: "\(type(of: error))")
    }

    func map(_ error: any Error) -> StoreError { Self.map(error, path: path) }

    /// Runs one SELECT. A single statement is its own read transaction in SQLite, so it
    /// needs none of what `queue.read` wraps around a closure (BEGIN and COMMIT, and two
    /// `PRAGMA query_only` parsed anew each time), which cost more than the small reads
    /// that `sync --watch` makes after every write to the home (docs/benchmarks.md).
    func selectOne<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try queue.unsafeRead(body) } catch { throw map(error) }
    }

    /// SQLite's own check of the file: `["ok"]` when sound.
    public func integrityCheck() throws -> [String] {
        do { return try queue.read { try String.fetchAll($0, sql: "PRAGMA integrity_check") } } catch { throw map(error) }
    }

    /// The clock floor: every new stamp is above it.
    public func clock() throws -> HybridClock {
        do { return try queue.read { try Self.clock($0) } } catch { throw map(error) }
    }

    static func clock(_ db: Database) throws -> HybridClock {
        guard let row = try Row.fetchOne(db, sql: "SELECT clock_wall, clock_counter, server_offset FROM replica") else {
            throw StoreError.database(reason: "the replica row is missing")
        }
        let floor = HybridTimestamp(wallMillis: UInt64(row["clock_wall"] as Int64), counter: UInt16(clamping: row["clock_counter"] as Int64))
        return HybridClock(floor: floor, offsetMillis: row["server_offset"])
    }

    static func saveClock(_ clock: HybridClock, _ db: Database) throws {
        guard let wall = Int64(exactly: clock.floor.wallMillis) else {
            throw StoreError.invalidInput(reason: "a time beyond the clock's range was received")
        }
        try db.execute(
            sql: "UPDATE replica SET clock_wall = ?, clock_counter = ? WHERE singleton = 1",
            arguments: [wall, Int64(clock.floor.counter)])
    }

    /// Raises the persisted clock floor to `mark` (it never goes down here).
    static func raiseFloor(to mark: HybridTimestamp, _ db: Database) throws {
        var clock = try clock(db)
        guard mark > clock.floor else { return }
        clock.observe(mark)
        try saveClock(clock, db)
    }

    /// The server's clock offset, `server − local`, refused when either time is beyond what
    /// the store keeps (a hostile or broken server's answer must not crash the device).
    static func offset(_ serverMillis: UInt64, _ localMillis: UInt64) throws -> Int64 {
        guard let server = Int64(exactly: serverMillis), let local = Int64(exactly: localMillis) else {
            throw StoreError.invalidInput(reason: "the server's time is out of range")
        }
        return server - local
    }
}

/// The system's wall clock.
public struct SystemWallClock: WallClock {
    public init() {}
    public func nowMillis() -> UInt64 { UInt64(max(0, Date().timeIntervalSince1970 * 1000)) }
}
