import ArgumentParser
import Foundation
import TandemProcess
import HTTPTypes
import Hummingbird
import HummingbirdWSClient
import Logging
import ServiceLifecycle
import Synchronization
import TandemCore
import TandemServer
import TandemServerPostgres

/// Issue 5's idle-connections benchmark: the server's resident memory with N idle live
/// connections open, against the same server with none, per connection. The server runs
/// in a child process (`idle-connections-server`); this process holds the connections.
struct IdleConnectionsBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "idle-connections",
        abstract: "Server RSS per idle live connection (N WebSockets open, none sending)."
    )

    @Option(help: "Live connections to open (4 per device).")
    var connections = 2_000

    @Option(help: ArgumentHelp(
        "Serve PostgreSQL instead of SQLite: a URL of the cluster's maintenance database; the benchmark creates (and drops) its own database.",
        valueName: "postgres://user@host:port/postgres"))
    var postgres: String?

    func run() async throws {
        raiseFileLimit()
        let folder = try BenchFolder()
        defer { folder.remove() }

        // Devices, 4 connections each, enrolled straight into the store.
        let store = try BenchStore(path: folder.path + "/center.sqlite", postgres: postgres)
        defer { store.remove() }
        let devices = (connections + 3) / 4
        var tokens: [String] = []
        _ = try await store.storage.initialize(staffName: "Bench", nowMillis: UInt64(now() * 1000))
        for index in 0..<devices { tokens.append(try await BenchDevice.enroll("p\(index)", into: store.storage).token) }

        let (server, port) = try spawnServer(store: store.serverArguments)
        defer { server.terminate() }
        try await Task.sleep(for: .seconds(1))
        let before = rss(of: server.pid)

        let greeted = Greetings()
        let clientCPU = cpuSeconds()
        let started = now()
        let allTokens = tokens
        let count = connections
        let holders = Task {
            await withTaskGroup(of: Void.self) { group in
                for index in 0..<count {
                    let token = allTokens[index / 4]
                    group.addTask {
                        var configuration = WebSocketClientConfiguration()
                        configuration.additionalHeaders[.authorization] = "Bearer \(token)"
                        var logger = Logger(label: "bench")
                        logger.logLevel = .critical
                        _ = try? await WebSocketClient.connect(url: "http://127.0.0.1:\(port)/v1/live", configuration: configuration, logger: logger) { inbound, _, _ in
                            for try await _ in inbound.messages(maxSize: 1 << 16) {
                                greeted.count.add(1, ordering: .relaxed)
                            }
                        }
                    }
                }
            }
        }
        while greeted.count.load(ordering: .relaxed) < connections, now() - started < 120 {
            try await Task.sleep(for: .milliseconds(100))
        }
        let open = greeted.count.load(ordering: .relaxed)
        try await Task.sleep(for: .seconds(2))
        let after = rss(of: server.pid)
        let perConnection = Double(after - before) / Double(max(open, 1))
        print("""
        Idle live connections (\(store.kind)): \(open) of \(connections) open in \(format(now() - started, 1)) s (load generator CPU \(format(cpuSeconds() - clientCPU, 2)) s)
          server RSS with none   \(before / 1024) KiB
          server RSS with them   \(after / 1024) KiB
          per connection         \(format(perConnection / 1024, 1)) KiB   (target < 64 KiB: \(perConnection < 64 * 1024 ? "met" : "NOT met"))
        """)
        holders.cancel()
    }

}

/// The server side of the load benchmarks (`spawnServer`): `SyncServer` on the given store,
/// printing its port, with the file limit raised and logging off.
struct BenchServerChild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "server-child", shouldDisplay: false)

    @Option var db: String?

    @Option var postgres: String?

    @Flag(help: "Also answer POST /bench/echo with the request's body (the pull benchmark's baseline).")
    var echo = false

    func run() async throws {
        raiseFileLimit()
        var quiet = Logger(label: "tandem-bench")
        quiet.logLevel = .critical
        let middleware: [any MiddlewareProtocol<Request, Response, TandemRequestContext>] = echo ? [EchoMiddleware()] : []
        let storage: any ServerStorage
        if let postgres {
            storage = try PostgresServerStorage(location: try PostgresLocation(url: postgres))
        } else {
            let sqlite = try SQLiteServerStorage(path: db ?? "server.sqlite")
            try sqlite.checkpointInBackground()  // as tandem serve does
            storage = sqlite
        }
        let server = SyncServer(storage: storage, logger: quiet)
        let app = server.application(host: "127.0.0.1", port: 0, middleware: middleware) { port in
            let line = "\(port)\n"
            _ = line.withCString { write(STDOUT_FILENO, $0, strlen($0)) }
        }
        try await app.run()
    }
}

final class Greetings: Sendable {
    let count = Atomic(0)
}

/// Raises this process's open-file limit to its hard maximum.
func raiseFileLimit() {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    limit.rlim_cur = limit.rlim_max
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

/// Answers `POST /bench/echo` with the request's body, past none of the sync routes' work:
/// what the HTTP stack alone costs on the same server.
struct EchoMiddleware: RouterMiddleware {
    typealias Context = TandemRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.uri.path == "/bench/echo" else { return try await next(request, context) }
        let body = try await request.body.collect(upTo: 1 << 20)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
    }
}
