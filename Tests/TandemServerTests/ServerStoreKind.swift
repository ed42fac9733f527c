import TandemCore
import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// The stores a center can run on. A server test whose body does not depend on one store
/// takes a `ServerStoreKind` argument (`@Test(arguments: ServerStoreKind.allCases)`) and
/// reaches the store only through `CenterStore`, so it runs once against each kind: the
/// PostgreSQL store joins this list and runs the same bodies. Tests of one store's own
/// mechanics (SQLite's files, migrations, group commit, power loss) use that store directly.
enum ServerStoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// The embedded store: one SQLite file.
    case sqlite

    var testDescription: String { rawValue }

    /// A new store of this kind, not yet initialized, kept in (or named after) `dir`.
    func create(in dir: TemporaryDirectory) throws -> any CenterStore {
        switch self {
        case .sqlite: try SQLiteServerStorage(path: dir.path("center.sqlite"))
        }
    }

    /// A new center on a store of this kind: initialized, with its staff member "Admin".
    func center(in dir: TemporaryDirectory) async throws -> any CenterStore {
        let store = try create(in: dir)
        _ = try await store.initialize(staffName: "Admin", nowMillis: SystemWallClock().nowMillis())
        return store
    }
}
