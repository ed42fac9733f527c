import Foundation
import TandemProcess

/// The real `tandem serve` process on a free loopback port, stopped when released.
public final class LiveServer: Sendable {
    public let url: String
    /// The store it serves: a SQLite file's path, or a PostgreSQL URL.
    public let dbPath: String
    let child: ChildProcess

    /// Starts a server on `dbPath` and waits until it listens, on `port` (0: any free one).
    /// With `logPath`, its log (at info) goes to that file; otherwise warnings are dropped.
    /// The wait for its first line happens off the concurrency pool (`offThePool`).
    public convenience init(dbPath: String, port: Int = 0, logPath: String? = nil) async throws {
        try await self.init(store: ["--db", dbPath], named: dbPath, port: port, logPath: logPath)
    }

    /// Starts a server on a PostgreSQL database (`tandem serve --postgres URL`): several may
    /// serve one database at once.
    public convenience init(postgres url: String, port: Int = 0, logPath: String? = nil) async throws {
        try await self.init(store: ["--postgres", url], named: url, port: port, logPath: logPath)
    }

    private init(store: [String], named: String, port: Int, logPath: String?) async throws {
        self.dbPath = named
        let started = try await offThePool { try Self.start(store: store, port: port, logPath: logPath) }
        child = ChildProcess(running: started.process)
        url = started.url
    }

    private struct Started: Sendable {
        let process: Subprocess
        let url: String
    }

    private static func start(store: [String], port: Int, logPath: String?) throws -> Started {
        var env = ProcessInfo.processInfo.environment
        env["LOG_LEVEL"] = logPath == nil ? "warning" : "info"
        let process = try Subprocess(
            TandemExecutable.url.path, ["serve"] + store + ["--port", String(port)], environment: env,
            output: .pipe, error: logPath.map { .file($0) } ?? .null)
        // The first line names the port.
        var line = Data()
        let handle = process.standardOutput!
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let range = text.range(of: "http://"), let end = text[range.lowerBound...].firstIndex(of: " ") else {
            process.terminate()
            process.waitUntilExit()
            throw LiveServerError.didNotStart(text)
        }
        return Started(process: process, url: String(text[range.lowerBound..<end]))
    }

    /// The port it listens on.
    public var port: Int { Int(url.split(separator: ":").last ?? "") ?? 0 }

    /// SIGKILL: the server dies mid-request, as in a crash. Waits for it off the pool.
    public func kill9() async { await child.kill9() }

    /// SIGTERM, and waits (off the pool) for the server to finish what it was doing.
    public func stop() async { await child.stop() }
}

public enum LiveServerError: Error {
    case didNotStart(String)
}
