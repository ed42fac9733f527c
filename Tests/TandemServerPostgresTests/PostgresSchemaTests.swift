import Foundation
import GRDB
import TandemServer
import TandemServerPostgres
import TandemTestSupport
import Testing

/// The PostgreSQL cluster the tests use: `scripts/test` starts a throwaway one
/// (`scripts/postgres`) and sets `TANDEM_TEST_POSTGRES_URL`; it also sets
/// `TANDEM_REQUIRE_POSTGRES=1`, under which a missing cluster fails instead of skipping.
enum TestCluster {
    static let url = ProcessInfo.processInfo.environment["TANDEM_TEST_POSTGRES_URL"]
    static let required = ProcessInfo.processInfo.environment["TANDEM_REQUIRE_POSTGRES"] == "1"

    /// A new, empty database of its own, dropped after `body`.
    static func withDatabase<T>(_ body: (PostgresLocation) throws -> T) throws -> T {
        let (location, drop) = try create()
        defer { drop() }
        return try body(location)
    }

    /// Created and dropped off the concurrency pool (both block on the cluster).
    static func withDatabase<T>(_ body: (PostgresLocation) async throws -> T) async throws -> T {
        let (location, drop) = try await offThePool { try create() }
        defer { Thread.detachNewThread { drop() } }
        return try await body(location)
    }

    private static func create() throws -> (PostgresLocation, @Sendable () -> Void) {
        let admin = try PostgresLocation(url: try #require(url))
        let name = "tandem_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let connection = try BlockingConnection.open(admin)
        do { try connection.execute("CREATE DATABASE \(name)") } catch {
            connection.close()
            throw error
        }
        var location = admin
        location.database = name
        return (location, {
            _ = try? connection.execute("DROP DATABASE \(name) WITH (FORCE)")
            connection.close()
        })
    }

    static func tables(_ connection: BlockingConnection) throws -> Set<String> {
        Set(try connection.texts("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'"))
    }
}

@Suite("PostgreSQL schema")
struct PostgresSchemaTests {
    @Test func theClusterIsThere_whenTheTestCommandRuns() throws {
        guard TestCluster.required else { return }
        let url = try #require(TestCluster.url, "scripts/test starts PostgreSQL and sets TANDEM_TEST_POSTGRES_URL")
        let connection = try BlockingConnection.open(try PostgresLocation(url: url))
        defer { connection.close() }
        #expect(try connection.texts("SELECT current_setting('synchronous_commit')") == ["on"])
    }

    @Test(.enabled(if: TestCluster.url != nil))
    func instancesStartingAtOnce_migrateOnce_andAllSucceed() throws {
        try TestCluster.withDatabase { location in
            let results = Locked<[Result<[String], any Error>]>([])
            let group = DispatchGroup()
            for _ in 0..<4 {
                group.enter()
                Thread.detachNewThread {
                    defer { group.leave() }
                    let result = Result<[String], any Error> {
                        let connection = try BlockingConnection.open(location)
                        defer { connection.close() }
                        return try PostgresSchema.migrate(connection)
                    }
                    results.withLock { $0.append(result) }
                }
            }
            group.wait()
            let applied = try results.withLock { $0 }.map { try $0.get() }
            // One of them applied every migration; the others found nothing to do.
            #expect(applied.filter { !$0.isEmpty } == [PostgresSchema.migrations.map(\.name)])
            let connection = try BlockingConnection.open(location)
            defer { connection.close() }
            #expect(try connection.texts("SELECT count(*)::text FROM tandem_migration") == ["\(PostgresSchema.migrations.count)"])
            #expect(try TestCluster.tables(connection).isSuperset(of: ["center", "tandem_migration"]))
        }
    }

    /// One set of rules reads and writes both stores: every table and column of the
    /// embedded store is in the PostgreSQL store, of the same kind and nullability.
    @Test(.enabled(if: TestCluster.url != nil))
    func theTables_areTheEmbeddedStoresColumnForColumn() throws {
        let dir = try TemporaryDirectory("pg-parity")
        let path = dir.path("center.sqlite")
        _ = try SQLiteServerStorage(path: path)
        let sqlite = try DatabaseQueue(path: path).read { db -> Set<String> in
            let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'grdb_migrations'")
            var columns = Set<String>()
            for table in tables {
                for row in try Row.fetchAll(db, sql: "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?)", arguments: [table]) {
                    let kind = ["INTEGER": "integer", "BLOB": "bytes", "TEXT": "text"][(row["type"] as String).uppercased()] ?? "other"
                    let nullable = (row["notnull"] as Int) == 0 && (row["pk"] as Int) == 0
                    columns.insert("\(table).\(row["name"] as String) \(kind)\(nullable ? " null" : "")")
                }
            }
            return columns
        }
        let postgres = try TestCluster.withDatabase { location in
            let connection = try BlockingConnection.open(location)
            defer { connection.close() }
            try PostgresSchema.migrate(connection)
            return Set(try connection.texts("""
                SELECT table_name || '.' || column_name || ' ' ||
                    CASE data_type WHEN 'bigint' THEN 'integer' WHEN 'integer' THEN 'integer' WHEN 'bytea' THEN 'bytes' WHEN 'text' THEN 'text' ELSE 'other' END ||
                    CASE is_nullable WHEN 'YES' THEN ' null' ELSE '' END
                FROM information_schema.columns WHERE table_schema = 'public' AND table_name != 'tandem_migration'
                """))
        }
        #expect(sqlite.count > 60)
        #expect(postgres.subtracting(sqlite).sorted() == [], "in PostgreSQL only")
        #expect(sqlite.subtracting(postgres).sorted() == [], "in SQLite only")
    }

    @Test(.enabled(if: TestCluster.url != nil))
    func aMigrationThatFails_leavesTheDatabaseAsItWas() throws {
        try TestCluster.withDatabase { location in
            let connection = try BlockingConnection.open(location)
            defer { connection.close() }
            try PostgresSchema.migrate(connection)
            let before = try TestCluster.tables(connection)
            let broken = PostgresSchema.migrations + [
                .init("v90-a-table", ["CREATE TABLE a_table (x integer)"]),
                .init("v91-broken", ["CREATE TABLE b_table (x integer)", "SELECT no_such_column FROM center"]),
            ]
            #expect(throws: PostgresStoreError.self) { try PostgresSchema.migrate(connection, migrations: broken) }
            #expect(try TestCluster.tables(connection) == before)
            #expect(try connection.texts("SELECT name FROM tandem_migration ORDER BY name") == PostgresSchema.migrations.map(\.name).sorted())
            // The connection is usable after the rollback, and a later good run applies.
            #expect(try PostgresSchema.migrate(connection, migrations: PostgresSchema.migrations + [broken[broken.count - 2]]) == ["v90-a-table"])
        }
    }

    /// What `SharingMemo` relies on: a write to any table the sharing policy reads changes
    /// the sharing version, in both stores. A migration that rebuilt one of those tables
    /// without its trigger would let a pull use grants of an older state.
    @Test(.enabled(if: TestCluster.url != nil))
    func everyTableTheSharingPolicyReads_changesTheSharingVersion_inBothStores() throws {
        let dir = try TemporaryDirectory("sharing-triggers")
        let path = dir.path("center.sqlite")
        _ = try SQLiteServerStorage(path: path)
        let sqlite = try DatabaseQueue(path: path).read { db in
            try String.fetchAll(db, sql: "SELECT tbl_name || ' ' || name FROM sqlite_master WHERE type = 'trigger' AND sql LIKE '%sharing_version%'")
        }
        #expect(Set(sqlite) == Set(SharingMemo.inputTables.flatMap { table in ["insert", "update", "delete"].map { "\(table) \(table)_\($0)_sharing" } }))
        let postgres = try TestCluster.withDatabase { location in
            let connection = try BlockingConnection.open(location)
            defer { connection.close() }
            try PostgresSchema.migrate(connection)
            return try connection.texts("""
                SELECT c.relname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
                WHERE NOT t.tgisinternal AND p.proname = 'tandem_sharing_changed'
                  AND t.tgtype & 28 = 28 -- fires on INSERT (4), DELETE (8) and UPDATE (16)
                """)
        }
        #expect(Set(postgres) == Set(SharingMemo.inputTables))
    }

    /// `pg_restore --clean` drops only what its archive creates: a backup an older tandem
    /// took, restored over a database a newer one migrated, must not leave the newer tables
    /// behind (the migrations after the restore would fail on them, or keep their rows).
    @Test(.enabled(if: TestCluster.url != nil))
    func aBackupAnOlderTandemTook_restoresOverANewerDatabase_andIsMigrated() throws {
        let dir = try TemporaryDirectory("pg-older-backup")
        let archive = dir.path("older.dump")
        let older = Array(PostgresSchema.migrations.prefix { $0.name != "v6-caseload-history" })
        try TestCluster.withDatabase { location in
            let connection = try BlockingConnection.open(location, applicationName: "tandem-test")
            defer { connection.close() }
            try PostgresSchema.migrate(connection, migrations: older)
            try connection.execute("INSERT INTO center (singleton, epoch, created_at) VALUES (1, '\\x00112233445566778899aabbccddeeff'::bytea, 0)")
            try PostgresBackup.backup(location, to: archive)
        }
        try TestCluster.withDatabase { location in
            let connection = try BlockingConnection.open(location, applicationName: "tandem-test")
            defer { connection.close() }
            try PostgresSchema.migrate(connection)
            try connection.execute("INSERT INTO center (singleton, epoch, created_at) VALUES (1, '\\xffeeddccbbaa99887766554433221100'::bytea, 0)")
            let mentor = "'\\x0102030405060708090a0b0c0d0e0f10'::bytea", patient = "'\\x1112131415161718191a1b1c1d1e1f20'::bytea"
            try connection.execute("INSERT INTO caseload_span (mentor, patient, since) VALUES (\(mentor), \(patient), 5)")

            try PostgresBackup.restore(backup: archive, to: location)
            #expect(Set(try connection.texts("SELECT name FROM tandem_migration")) == Set(PostgresSchema.migrations.map(\.name)))
            #expect(try connection.texts("SELECT count(*)::text FROM caseload_span") == ["0"], "no row of the state the restore replaced")
            #expect(try connection.texts("SELECT count(*)::text FROM sharing_version") == ["1"])
            #expect(try connection.texts("SELECT count(*)::text FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid WHERE p.proname = 'tandem_sharing_changed'")
                == ["\(SharingMemo.inputTables.count)"])
        }
    }

    @Test(.enabled(if: TestCluster.url != nil))
    func aDatabaseANewerTandemMigrated_isRefused_andLeftAlone() throws {
        try TestCluster.withDatabase { location in
            let connection = try BlockingConnection.open(location)
            defer { connection.close() }
            try PostgresSchema.migrate(connection)
            try connection.execute("INSERT INTO tandem_migration (name) VALUES ('v99-from-the-future')")
            #expect(throws: NewerDatabaseError(migrations: ["v99-from-the-future"])) { try PostgresSchema.migrate(connection) }
            #expect(try connection.texts("SELECT count(*)::text FROM tandem_migration") == ["\(PostgresSchema.migrations.count + 1)"])
        }
    }

    @Test(.enabled(if: TestCluster.url != nil))
    func anUnreachableServer_isSaidPlainly() throws {
        // Port 1 on loopback: privileged, and nothing of the tests listens there.
        var location = try PostgresLocation(url: try #require(TestCluster.url))
        location.port = 1
        #expect {
            _ = try BlockingConnection.open(location)
        } throws: { error in
            guard case .unreachable(let message) = error as? PostgresStoreError else { return false }
            return message.contains("Cannot connect to PostgreSQL at postgres://tandem@127.0.0.1:\(location.port)/")
        }
    }
}

@Suite("PostgreSQL location")
struct PostgresLocationTests {
    @Test func aURL_isReadIntoItsParts() throws {
        let location = try PostgresLocation(url: "postgres://tandem:s%40cret@db.example:6543/center")
        #expect(location == PostgresLocation(host: "db.example", port: 6543, user: "tandem", password: "s@cret", database: "center"))
        #expect(location.description == "postgres://tandem:***@db.example:6543/center", "the password is never shown")
        #expect(try PostgresLocation(url: "postgresql://me@[::1]/db") == PostgresLocation(host: "::1", user: "me", database: "db"))
        #expect(try PostgresLocation(url: "postgres://me@localhost/db").port == 5432)
    }

    /// Another host is reached over verified TLS unless the URL says otherwise; this
    /// machine's loopback in plain text unless it asks for TLS. The options survive the
    /// round trip through `url` (a child process's arguments).
    @Test func tls_isVerifiedByDefaultOffThisMachine_andTheURLsOptionsAreKept() throws {
        #expect(try PostgresLocation(url: "postgres://me@db.example/center").tls == .verifyFull)
        #expect(try PostgresLocation(url: "postgres://me@10.0.0.7/center").tls == .verifyFull)
        for loopback in ["127.0.0.1", "localhost", "[::1]"] {
            #expect(try PostgresLocation(url: "postgres://me@\(loopback)/center").tls == .disable, "\(loopback)")
        }
        for mode in PostgresLocation.TLSMode.allCases {
            let root = mode == .verifyCA ? "&sslrootcert=/etc/tandem/ca.crt" : ""
            let location = try PostgresLocation(url: "postgres://me@db.example/center?sslmode=\(mode.rawValue)\(root)")
            #expect(location.tls == mode)
            #expect(try PostgresLocation(url: location.url) == location)
        }
        let verified = try PostgresLocation(url: "postgres://me:pw@db.example:6543/center?sslmode=verify-ca&sslrootcert=/etc/tandem/ca%20root.crt")
        #expect(verified.tls == .verifyCA && verified.rootCertificates == "/etc/tandem/ca root.crt")
        #expect(try PostgresLocation(url: verified.url) == verified)
        #expect(verified.description == "postgres://me:***@db.example:6543/center?sslmode=verify-ca&sslrootcert=/etc/tandem/ca%20root.crt")
        #expect(try PostgresLocation(url: "postgres://me@db.example/center").description == "postgres://me@db.example:5432/center")
        // A name that starts like a loopback address is another host.
        for remote in ["127.db.example", "127.0.0.1.example", "[::2]"] {
            #expect(try PostgresLocation(url: "postgres://me@\(remote)/center").tls == .verifyFull, "\(remote)")
        }
        #expect(try PostgresLocation(url: "postgres://me@127.8.9.10/center").tls == .disable)
        // A root certificate means verified, even on the loopback; an @ in its path names no user.
        let rooted = try PostgresLocation(url: "postgres://me@localhost/center?sslrootcert=/home/a@b/ca.crt")
        #expect(rooted.tls == .verifyFull && rooted.rootCertificates == "/home/a@b/ca.crt" && rooted.user == "me" && rooted.host == "localhost")
        #expect(try PostgresLocation(url: rooted.url) == rooted)
    }

    @Test(arguments: [
        "mysql://me@host/db", "postgres://host/db", "postgres://me@host", "postgres://me@host/", "postgres://me@host:0/db",
        "postgres://me@host:99999/db", "postgres://me@host:port/db", "postgres://me@:5432/db", "postgres://me@host/db?sslmode=prefer",
        "postgres://me@host/db?sslmode=allow", "postgres://me@host/db?connect_timeout=3", "postgres://me@host/db?sslrootcert=",
        "postgres://me@host/db?sslmode=require&sslrootcert=/etc/ca.crt", "postgres://me@host/?sslmode=require",
        "postgres://me@host/db?sslmode=verify-ca",
        "postgres://m%zz@host/db", "postgres://@host/db",
    ])
    func aURLThatCannotBeUsed_isRefused_withTheReason(url: String) {
        #expect(throws: PostgresLocationError.self) { try PostgresLocation(url: url) }
    }
}
