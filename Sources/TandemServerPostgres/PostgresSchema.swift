import PostgresNIO

/// The PostgreSQL store's tables, as named migrations, and how they are applied.
///
/// Several `tandem serve` instances may start at once on one database: each applies the
/// migrations it knows and the database lacks in one transaction that first takes a
/// transaction-level advisory lock, so they run one after another, and the later ones find
/// nothing to do. PostgreSQL's DDL is transactional: a migration that fails rolls back with
/// the whole run, and the database is as it was. A database that holds migrations this
/// `tandem` does not know was migrated by a newer one and is refused.
public enum PostgresSchema {
    public struct Migration: Sendable {
        public var name: String
        /// One statement each (PostgreSQL's extended protocol runs one per query).
        public var statements: [String]

        public init(_ name: String, _ statements: [String]) {
            self.name = name
            self.statements = statements
        }
    }

    /// The key of the advisory lock migrations hold ("Tandem" in ASCII).
    static let lockKey: Int64 = 0x54_61_6E_64_65_6D

    /// Every migration, oldest first. The tables of the store's data come with the store
    /// (issue 15); this first one holds what every store has: the center and its epoch.
    public static let migrations: [Migration] = [
        Migration("v1-center", [
            """
            CREATE TABLE center (
                singleton integer PRIMARY KEY CHECK (singleton = 1),
                epoch bytea NOT NULL CHECK (length(epoch) = 16),
                created_at bigint NOT NULL
            )
            """,
        ]),
    ]

    /// Applies what is missing; returns the names applied (empty: the database was up to date).
    /// - Throws: `NewerDatabaseError` for a database a newer `tandem` migrated;
    ///   `PostgresStoreError` when a statement fails (nothing is then changed).
    @discardableResult
    public static func migrate(_ connection: BlockingConnection, migrations: [Migration] = migrations) throws -> [String] {
        try connection.transaction { db in
            try db.run("SELECT pg_advisory_xact_lock(\(lockKey))")
            try db.execute("CREATE TABLE IF NOT EXISTS tandem_migration (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
            let applied = Set(try db.texts("SELECT name FROM tandem_migration"))
            let known = Set(migrations.map(\.name))
            let unknown = applied.subtracting(known)
            guard unknown.isEmpty else { throw NewerDatabaseError(migrations: unknown.sorted()) }
            var done: [String] = []
            for migration in migrations where !applied.contains(migration.name) {
                for statement in migration.statements { try db.execute(statement) }
                try db.run("INSERT INTO tandem_migration (name) VALUES (\(migration.name))")
                done.append(migration.name)
            }
            return done
        }
    }
}

/// The database was migrated by a newer `tandem` (it holds migrations this one does not
/// know): serving it could number changes below devices' cursors.
public struct NewerDatabaseError: Error, Equatable, CustomStringConvertible {
    public var migrations: [String]

    public init(migrations: [String]) { self.migrations = migrations }

    public var description: String {
        "This database was migrated by a newer tandem (\(migrations.joined(separator: ", "))); run that version or newer."
    }
}
