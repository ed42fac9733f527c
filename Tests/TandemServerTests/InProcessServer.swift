import Hummingbird
import TandemClient
import TandemCore
import TandemProtocol
import TandemStore
import Logging
import ServiceLifecycle
import TandemServer
import TandemTestSupport

/// The real server, in this process, on a free loopback port: for tests that inject a
/// sharing policy or a fault through the server's public extension points.
final class InProcessServer: @unchecked Sendable {
    // @unchecked: set once in init; the task is only cancelled.
    let url: String
    /// The loopback port it listens on.
    let port: Int
    /// The store, reached only through the protocols every store implements.
    let storage: any CenterStore
    let server: SyncServer
    let task: Task<Void, any Error>
    /// The service group the application runs in, as `tandem serve` runs it under SIGTERM.
    private let group: ServiceGroup

    /// `serving`: a wrapper of `storage` the server uses instead (a test's fault or hook);
    /// `storage` stays the tests' way in to the store.
    init(
        storage: any CenterStore, serving: (any ServerStorage)? = nil, policy: (any SharingPolicy)? = nil, limits: SyncServer.Limits = .init(),
        middleware: [any MiddlewareProtocol<Request, Response, TandemRequestContext>] = [],
        wallClock: any WallClock = SyncServer.SystemClock()
    ) async throws {
        self.storage = storage
        var logger = Logger(label: "tandem-test")
        logger.logLevel = .critical
        let server = SyncServer(storage: serving ?? storage, policy: policy, limits: limits, wallClock: wallClock, logger: logger)
        self.server = server
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = server.application(host: "127.0.0.1", port: 0, middleware: middleware) { continuation.yield($0) }
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        self.group = group
        // On threads of its own, as a server process would be: see `ThreadsExecutor`.
        task = Task(executorPreference: ThreadsExecutor.servers) { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw LiveServerError.didNotStart("no port") }
        self.port = port
        url = "http://127.0.0.1:\(port)"
    }

    /// The store as the embedded SQLite store, for tests of that store's own mechanics.
    var sqlite: SQLiteServerStorage {
        get throws {
            guard let store = storage as? SQLiteServerStorage else { throw LiveServerError.didNotStart("not a SQLite store") }
            return store
        }
    }

    /// Stops the server as SIGTERM stops `tandem serve` (a graceful shutdown: every connection
    /// is told to wind down, and closed after the shutdown grace), and returns once it has.
    ///
    /// Cancelling the task is not the same: a cancelled server never tells its connections to
    /// wind down, so a connection that has not sent its first request head yet holds it until
    /// that head's deadline (a CI run once waited over 20 s).
    func stop() async {
        await group.triggerGracefulShutdown()
        _ = await task.result
    }

    deinit { task.cancel() }
}

extension InProcessServer {
    /// A new center (its store initialized) served in this process, in a directory of its own.
    static func center(
        _ prefix: String, store: ServerStoreKind = .sqlite, limits: SyncServer.Limits = .init(),
        middleware: [any MiddlewareProtocol<Request, Response, TandemRequestContext>] = []
    ) async throws -> (TemporaryDirectory, InProcessServer) {
        let dir = try TemporaryDirectory(prefix)
        let storage = try await store.center(in: dir)
        return (dir, try await InProcessServer(storage: storage, limits: limits, middleware: middleware))
    }

    /// A device enrolled here: a new member's first device (a patient named Sam unless
    /// told otherwise), or, `linkedTo` another device, one more of that member's.
    func device(
        _ dir: TemporaryDirectory, _ name: String, linkedTo other: ReplicaStore? = nil, role: Role = .patient, member: String = "Sam"
    ) async throws -> ReplicaStore {
        let now = SystemWallClock().nowMillis()
        let code = try await {
            if let other { return try await Syncer(store: other).link().code }
            return try await storage.invite(role: role, name: member, nowMillis: now)
        }()
        let store = try ReplicaStore.create(at: dir.path("\(name).sqlite"), name: name, role: role, wallMillis: now)
        _ = try await Syncer.enroll(store: store, server: url, code: code, deviceName: name, role: nil, allowInsecure: false)
        return store
    }
}

/// A journal entry with a mood of `value` (and a craving of 1).
func moodEntry(_ value: Int) throws -> RecordEdit {
    var edit = JournalEdit()
    edit.mood = value
    edit.craving = 1
    return try edit.recordEdit()
}
