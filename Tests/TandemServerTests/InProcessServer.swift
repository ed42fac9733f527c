import Hummingbird
import Logging
import TandemServer
import TandemTestSupport

/// The real server, in this process, on a free loopback port: for tests that inject a
/// sharing policy or a fault through the server's public extension points.
final class InProcessServer: @unchecked Sendable {
    // @unchecked: set once in init; the task is only cancelled.
    let url: String
    let storage: SQLiteServerStorage
    let server: SyncServer
    let task: Task<Void, any Error>

    init(
        storage: SQLiteServerStorage, policy: any SharingPolicy = OwnRecordsPolicy(), limits: SyncServer.Limits = .init(),
        middleware: [any MiddlewareProtocol<Request, Response, TandemRequestContext>] = []
    ) async throws {
        self.storage = storage
        var logger = Logger(label: "tandem-test")
        logger.logLevel = .critical
        let server = SyncServer(storage: storage, policy: policy, limits: limits, logger: logger)
        self.server = server
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = server.application(host: "127.0.0.1", port: 0, middleware: middleware) { continuation.yield($0) }
        task = Task { try await app.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw LiveServerError.didNotStart("no port") }
        url = "http://127.0.0.1:\(port)"
    }

    deinit { task.cancel() }
}
