import Foundation
import Hummingbird
import TandemClient
import TandemCore
import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// The harness the server tests rely on: an in-process server's requests are handled by
/// tasks that prefer threads of their own (`ThreadsExecutor`), not the concurrency pool the
/// tests compute on.
@Suite("In-process server")
struct InProcessServerTests {
    /// Notes, for each request, the task executor its task prefers.
    final class Preferences: RouterMiddleware, Sendable {
        typealias Context = TandemRequestContext
        let seen = Locked<[String: UnownedTaskExecutor?]>([:])

        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            let preferred = withUnsafeCurrentTask { $0?.unownedTaskExecutor }
            seen.withLock { $0[request.uri.path] = preferred }
            return try await next(request, context)
        }
    }

    /// Asserted on the task's preference, not on the thread a request happened to run on:
    /// a preference is what the runtime promises. It may still run a job on the pool now
    /// and then (a CI run once saw one request of three there), which makes a starved
    /// server unlikely rather than impossible; the 30 s liveness bounds cover the rest.
    @Test(arguments: ServerStoreKind.allCases)
    func requests_areHandledByTasksPreferringTheServersThreads(storeKind: ServerStoreKind) async throws {
        let preferences = Preferences()
        let (dir, server) = try await InProcessServer.center("in-process", store: storeKind, middleware: [preferences])
        let phone = try await server.device(dir, "phone")
        _ = try phone.write(try moodEntry(3), to: nil, clock: SystemWallClock())
        _ = try await Syncer(store: phone).sync()
        let seen = preferences.seen.withLock { $0 }
        #expect(Set(seen.keys) == ["/v1/enroll", "/v1/push", "/v1/pull"])
        let servers = ThreadsExecutor.servers.asUnownedTaskExecutor()
        for (path, preferred) in seen.sorted(by: { $0.key < $1.key }) {
            #expect(preferred == servers, "\(path) was handled by a task without the servers' preference")
        }
    }
}
