import Foundation
import TandemProcess

/// A `tandem` process left running (such as `sync --watch`), its output collected as it
/// comes; terminated when released.
public final class RunningTandem: Sendable {
    let child: ChildProcess
    /// NSLock rather than Synchronization's Mutex: ThreadSanitizer sees pthread locks, not
    /// the futex under Mutex, and the suite also runs under TSan.
    private final class Output: @unchecked Sendable {
        private let lock = NSLock()
        private var value: (stdout: String, stderr: String) = ("", "")
        func withLock<T>(_ body: (inout (stdout: String, stderr: String)) -> T) -> T {
            lock.lock()
            defer { lock.unlock() }
            return body(&value)
        }
    }
    private let collected = Output()

    public init(_ arguments: [String], home: String? = nil) throws {
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = "1"
        env["TZ"] = "UTC"
        env["TANDEM_HOME"] = home
        let process = try Subprocess(TandemExecutable.url.path, arguments, environment: env, output: .pipe, error: .pipe)
        let sink = collected
        process.standardOutput!.readabilityHandler = { handle in
            let text = String(decoding: handle.availableData, as: UTF8.self)
            sink.withLock { $0.stdout += text }
        }
        process.standardError!.readabilityHandler = { handle in
            let text = String(decoding: handle.availableData, as: UTF8.self)
            sink.withLock { $0.stderr += text }
        }
        child = ChildProcess(running: process)
    }

    public var stdout: String { collected.withLock { $0.stdout } }
    public var stderr: String { collected.withLock { $0.stderr } }
    public var isRunning: Bool { child.isRunning }
    public var pid: Int32 { child.pid }

    /// Waits until `condition` holds for the output so far, or `timeout` passes.
    @discardableResult
    public func wait(timeout: Duration = .seconds(30), until condition: (_ stdout: String, _ stderr: String) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (out, err) = collected.withLock { ($0.stdout, $0.stderr) }
            if condition(out, err) { return true }
            // Checked once more after the deadline: a busy machine may wake us late.
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits for the process to end by itself, up to `timeout`.
    public func waitForExit(timeout: Duration = .seconds(10)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while child.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        return child.isRunning ? nil : child.terminationStatus
    }

    /// SIGKILL, as a crash or a pulled battery would end it, and wait for it (off the pool).
    public func kill9() async { await child.kill9() }

    /// SIGTERM, and wait (off the pool) for it to end.
    public func stop() async { await child.stop() }
}
