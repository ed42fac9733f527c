import Foundation
import TandemCore
import TandemServer
import TandemServerPostgres
import TandemStore
import TandemTestSupport
import Testing

/// The stores a center can run on. A server test whose body does not depend on one store
/// takes a `ServerStoreKind` argument (`@Test(arguments: ServerStoreKind.allCases)`) and
/// reaches the store only through `CenterStore`, so it runs once against each kind. Tests
/// of one store's own mechanics (SQLite's files, migrations, group commit, power loss) use
/// that store directly.
enum ServerStoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// The embedded store: one SQLite file.
    case sqlite
    /// PostgreSQL: a new database of its own in the test cluster (`scripts/postgres`, which
    /// `scripts/test` starts), named by `TANDEM_TEST_POSTGRES_URL`.
    case postgres

    /// SQLite always; PostgreSQL when the test cluster is there, or required
    /// (`TANDEM_REQUIRE_POSTGRES=1`, as `scripts/test` sets: then a missing cluster fails).
    static var allCases: [ServerStoreKind] {
        TestCluster.url != nil || TestCluster.required ? [.sqlite, .postgres] : [.sqlite]
    }

    var testDescription: String { rawValue }

    /// A new store of this kind, not yet initialized, kept in (or named after) `dir`. Made
    /// off the concurrency pool: opening a store blocks (PostgreSQL's `CREATE DATABASE` and
    /// migrations wait on the cluster), and the pool has one thread per core, shared by
    /// every test running at once (blocked under ThreadSanitizer, it starved other tests'
    /// 30 s bounds).
    func create(in dir: TemporaryDirectory) async throws -> any CenterStore {
        let path = dir.path("center.sqlite")
        return try await offThePool { () throws -> any CenterStore in
            switch self {
            case .sqlite: try SQLiteServerStorage(path: path)
            case .postgres: try PostgresServerStorage(location: TestCluster.newDatabase(), connections: 4)
            }
        }
    }

    /// A new store of this kind for `tandem serve` and `tandem admin` processes, not yet
    /// created (SQLite) or migrated (PostgreSQL).
    func cliStore(in dir: TemporaryDirectory) async throws -> CLIStore {
        switch self {
        case .sqlite:
            return CLIStore(kind: self, arguments: ["--db", dir.path("center.sqlite")], name: dir.path("center.sqlite"), backup: dir.path("backup.sqlite"))
        case .postgres:
            let location = try await offThePool { try TestCluster.newDatabase() }
            return CLIStore(kind: self, arguments: ["--postgres", location.url], name: location.url, backup: dir.path("backup.dump"))
        }
    }

    /// Another instance on the same store as `store` (another `tandem serve` on the same file
    /// or database), opened in this process.
    func another(on store: any CenterStore) async throws -> any CenterStore {
        try await offThePool { () throws -> any CenterStore in
            switch (self, store) {
            case (.sqlite, let store as SQLiteServerStorage): try SQLiteServerStorage(path: store.path)
            case (.postgres, let store as PostgresServerStorage): try PostgresServerStorage(location: store.location, connections: 2)
            default: throw LiveServerError.didNotStart("a \(type(of: store)) is not a \(self.rawValue) store")
            }
        }
    }

    /// A new center on a store of this kind: initialized, with its staff member "Admin".
    func center(in dir: TemporaryDirectory) async throws -> any CenterStore {
        let store = try await create(in: dir)
        _ = try await store.initialize(staffName: "Admin", nowMillis: SystemWallClock().nowMillis())
        return store
    }
}

/// The PostgreSQL cluster the tests run against.
enum TestCluster {
    static let url = ProcessInfo.processInfo.environment["TANDEM_TEST_POSTGRES_URL"]
    static let required = ProcessInfo.processInfo.environment["TANDEM_REQUIRE_POSTGRES"] == "1"

    /// One connection to the cluster's maintenance database, for `CREATE DATABASE`.
    private static let admin = Locked<BlockingConnection?>(nil)

    /// A new, empty database of the cluster's (left for the cluster's removal to delete).
    static func newDatabase() throws -> PostgresLocation {
        guard let url else {
            throw TestClusterMissing()
        }
        let location = try PostgresLocation(url: url)
        let name = "tandem_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try admin.withLock { connection in
            if connection?.isClosed ?? true { connection = try BlockingConnection.open(location) }
            try connection!.execute("CREATE DATABASE \(name)")
        }
        var database = location
        database.database = name
        return database
    }

    struct TestClusterMissing: Error, CustomStringConvertible {
        var description: String {
            "TANDEM_REQUIRE_POSTGRES=1 but TANDEM_TEST_POSTGRES_URL is not set: run the suite through scripts/test, or start a cluster with scripts/postgres."
        }
    }
}

/// A store as the `tandem` processes name it: `--db PATH` or `--postgres URL`.
struct CLIStore: Sendable {
    var kind: ServerStoreKind
    /// The arguments naming it, for `tandem serve` and `tandem admin`.
    var arguments: [String]
    /// Its path or URL.
    var name: String
    /// Where its backup goes: a SQLite file, or a `pg_dump` archive.
    var backup: String

    /// `tandem serve` on it.
    func server(port: Int = 0) async throws -> LiveServer {
        switch kind {
        case .sqlite: try await LiveServer(dbPath: name, port: port)
        case .postgres: try await LiveServer(postgres: name, port: port)
        }
    }

    /// The center's epoch, read without opening the store as a server would (a PostgreSQL
    /// restore refuses to run while a store's connections are open).
    func epoch() async throws -> String {
        switch kind {
        case .sqlite: return try await SQLiteServerStorage(path: name).epoch()
        case .postgres:
            let name = name
            let epoch = try await offThePool {
                let connection = try BlockingConnection.open(try PostgresLocation(url: name), applicationName: "tandem-test")
                defer { connection.close() }
                return try connection.texts("SELECT encode(epoch, 'hex') FROM center").first
            }
            return try #require(epoch)
        }
    }

    /// The store, opened in this process.
    func open() async throws -> any CenterStore {
        let (kind, name) = (kind, name)
        return try await offThePool { () throws -> any CenterStore in
            switch kind {
            case .sqlite: try SQLiteServerStorage(path: name)
            case .postgres: try PostgresServerStorage(location: try PostgresLocation(url: name), connections: 2)
            }
        }
    }
}
