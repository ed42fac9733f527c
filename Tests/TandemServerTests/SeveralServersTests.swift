import Foundation
import TandemServer
import TandemTestSupport
import Testing

/// Several `tandem serve` started at once on one store (issue 15): each migrates it under
/// the store's migration lock, so all of them start, on a new store as on an existing one.
/// Real processes on a SQLite file (the CLI serves that store; PostgreSQL has its own lock).
///
/// On SQLite only: the file store's migration lock; PostgreSQL's advisory lock is `PostgresSchemaTests`'.
@Suite("Several servers on one store")
struct SeveralServersTests {
    @Test func serversStartedTogetherOnANewStore_allStart_andMigrateItOnce() async throws {
        let dir = try TemporaryDirectory("several-servers")
        for round in 0..<3 {
            let path = dir.path("center-\(round).sqlite")
            let servers = try await withThrowingTaskGroup(of: LiveServer.self) { group in
                for _ in 0..<4 { group.addTask { try await LiveServer(dbPath: path) } }
                var started: [LiveServer] = []
                for try await server in group { started.append(server) }
                return started
            }
            #expect(servers.count == 4, "round \(round)")
            #expect(Set(servers.map(\.url)).count == 4)
            for server in servers { await server.stop() }
            // The store is whole: every migration applied once, and it serves an initialized center.
            let store = try SQLiteServerStorage(path: path)
            _ = try await store.initialize(staffName: "Admin", nowMillis: 1)
            #expect(try await store.members().count == 1)
        }
    }
}
