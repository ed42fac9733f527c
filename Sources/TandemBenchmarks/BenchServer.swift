import Foundation
import TandemProcess
import TandemServerPostgres
import Hummingbird
import Logging
import ServiceLifecycle
import TandemServer

/// The sync server on `storage`, in this process, on a free loopback port, logging
/// nothing; cancel the task to stop it.
func startServer(_ storage: any ServerStorage) async throws -> (port: Int, task: Task<Void, any Error>) {
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

/// The sync server on the store at `db`, in a child process of its own (`server-child`), so
/// that a load generator in this process does not share its CPU time. Returns the child and
/// its port; terminate the child to stop it.
func spawnServer(db: String, echo: Bool = false) throws -> (process: Subprocess, port: Int) {
    try spawnServer(store: ["--db", db], echo: echo)
}

/// The sync server on a PostgreSQL database (`url`), in a child process of its own.
func spawnServer(postgres url: String) throws -> (process: Subprocess, port: Int) {
    try spawnServer(store: ["--postgres", url], echo: false)
}

func spawnServer(store: [String], echo: Bool = false) throws -> (process: Subprocess, port: Int) {
    let server = try Subprocess(
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path, ["server-child"] + store + (echo ? ["--echo"] : []),
        output: .pipe)
    var line = Data()
    while !line.contains(UInt8(ascii: "\n")) {
        let chunk = server.standardOutput!.availableData
        if chunk.isEmpty { break }
        line.append(chunk)
    }
    guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
        server.terminate()
        throw BenchError.childFailed("server did not report its port")
    }
    return (server, port)
}

/// Resident memory of another process, in bytes.
func rss(of pid: Int32) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
    else { return 0 }
    return kilobytes * 1024
}

/// Seconds of CPU another process used so far (user + system, from /proc/PID/stat).
func cpuSeconds(of pid: Int32) -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")")
    else { return 0 }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    // After the command: state is field 3; utime and stime are fields 14 and 15.
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// Databases a PostgreSQL run creates in a cluster, named for the run, dropped at its end.
struct BenchDatabases {
    let maintenance: PostgresLocation
    let prefix = "tandem_bench_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(12)

    init(maintenance url: String) throws {
        maintenance = try PostgresLocation(url: url)
    }

    /// Creates the run's database `name` and returns where it is.
    func create(_ name: String) throws -> PostgresLocation {
        let connection = try BlockingConnection.open(maintenance, applicationName: "tandem-bench")
        defer { connection.close() }
        try connection.execute("CREATE DATABASE \(prefix)_\(name)")
        return location(name)
    }

    func location(_ name: String) -> PostgresLocation {
        var location = maintenance
        location.database = "\(prefix)_\(name)"
        return location
    }

    /// The URL of the run's database `name` (with the maintenance URL's password, if any).
    func url(_ name: String) -> String {
        location(name).url
    }

    func drop() {
        guard let connection = try? BlockingConnection.open(maintenance, applicationName: "tandem-bench") else { return }
        defer { connection.close() }
        for name in (try? connection.texts("SELECT datname::text FROM pg_database WHERE datname LIKE '\(prefix)_%'")) ?? [] {
            try? connection.execute("DROP DATABASE \(name) WITH (FORCE)")
        }
    }
}

/// The store a benchmark fills and serves: a SQLite file, or with `--postgres` a database
/// of its own in that cluster, dropped by `remove()`. The same run can then be made on
/// either store with one option.
struct BenchStore {
    let storage: any CenterStore
    /// What `server-child` is given to serve this store.
    let serverArguments: [String]
    /// "SQLite" or "PostgreSQL".
    let kind: String
    private let databases: BenchDatabases?
    private let path: String

    /// A new store at `path` (SQLite), or a database named for the run in the cluster at
    /// `postgres` (its maintenance database's URL).
    init(path: String, postgres: String?) throws {
        self.path = path
        if let postgres {
            let databases = try BenchDatabases(maintenance: postgres)
            let location = try databases.create("server")
            self.databases = databases
            storage = try PostgresServerStorage(location: location)
            serverArguments = ["--postgres", location.url]
            kind = "PostgreSQL"
        } else {
            databases = nil
            storage = try SQLiteServerStorage(path: path)
            serverArguments = ["--db", path]
            kind = "SQLite"
        }
    }

    /// The store's size on disk: the SQLite file with its WAL, or `pg_database_size`.
    func bytes() -> Int {
        guard let databases else { return fileBytes(path) }
        guard let connection = try? BlockingConnection.open(databases.location("server"), applicationName: "tandem-bench") else { return 0 }
        defer { connection.close() }
        return (try? connection.texts("SELECT pg_database_size(current_database())::text"))?.first.flatMap { Int($0) } ?? 0
    }

    func remove() { databases?.drop() }
}
