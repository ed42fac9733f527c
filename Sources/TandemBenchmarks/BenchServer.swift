import Hummingbird
import Logging
import ServiceLifecycle
import TandemServer

/// The sync server on `storage`, in this process, on a free loopback port, logging
/// nothing; cancel the task to stop it.
func startServer(_ storage: SQLiteServerStorage) async throws -> (port: Int, task: Task<Void, any Error>) {
    let (ports, portSink) = AsyncStream<Int>.makeStream()
    var quiet = Logger(label: "tandem-bench")
    quiet.logLevel = .critical
    let app = SyncServer(storage: storage, logger: quiet).application(host: "127.0.0.1", port: 0) { portSink.yield($0) }
    let task = Task { try await app.run() }
    var iterator = ports.makeAsyncIterator()
    guard let port = await iterator.next() else {
        task.cancel()
        throw BenchError.childFailed("server did not start")
    }
    return (port, task)
}
