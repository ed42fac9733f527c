public import Foundation
import TandemProcess

/// Runs the real `tandem` executable built next to the tests.
public enum TandemExecutable {
    /// The built `tandem` binary beside the test bundle: the one built with the tests
    /// (`swift build --build-tests` builds it there, under any scratch path or sanitizer).
    /// No other place is tried: a binary elsewhere may be of older code. Missing, the
    /// spawn fails naming this path.
    public static var url: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tandem")
    }

    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        /// Standard output then standard error, as a person sees them.
        public var combined: String { stdout + stderr }
    }

    /// Runs `tandem` with `arguments` and waits, off the concurrency pool (`offThePool`).
    /// Standard input is `stdin` when given, else empty. The environment is fixed for
    /// reproducible output: no colour, 80 columns, UTC.
    public static func run(_ arguments: [String], home: String? = nil, stdin: String? = nil, environment: [String: String] = [:]) async throws -> Result {
        try await offThePool { try runBlocking(arguments, home: home, stdin: stdin, environment: environment) }
    }

    private static func runBlocking(_ arguments: [String], home: String?, stdin: String?, environment: [String: String]) throws -> Result {
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = "1"
        env["COLUMNS"] = "80"
        env["TZ"] = "UTC"
        env["TANDEM_HOME"] = home
        for (key, value) in environment { env[key] = value }
        let process = try Subprocess(url.path, arguments, environment: env, input: .pipe, output: .pipe, error: .pipe)
        // Standard error is drained beside standard output, so that neither pipe filling up
        // can block the process while the other is read.
        let errors = Drained(process.standardError!)
        let input = process.standardInput!
        if let stdin { input.write(Data(stdin.utf8)) }
        try input.close()
        let out = process.standardOutput!.readDataToEndOfFile()
        let err = errors.wait()
        let status = process.waitUntilExit().status
        return Result(status: status, stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self))
    }

    /// A pipe read to its end on a thread of its own.
    final class Drained: @unchecked Sendable {
        private let condition = NSCondition()
        private var data: Data?

        init(_ handle: FileHandle) {
            Thread.detachNewThread { [self] in
                let read = handle.readDataToEndOfFile()
                condition.lock()
                data = read
                condition.signal()
                condition.unlock()
            }
        }

        /// The pipe's content, once its writer closed it.
        func wait() -> Data {
            condition.lock()
            defer { condition.unlock() }
            while data == nil { condition.wait() }
            return data!
        }
    }
}
