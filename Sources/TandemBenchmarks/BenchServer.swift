import Foundation
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
func spawnServer(db: String, echo: Bool = false) throws -> (process: Process, port: Int) {
    let server = Process()
    server.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    server.arguments = ["server-child", "--db", db] + (echo ? ["--echo"] : [])
    let pipe = Pipe()
    server.standardOutput = pipe
    try server.run()
    var line = Data()
    while !line.contains(UInt8(ascii: "\n")) {
        let chunk = pipe.fileHandleForReading.availableData
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
