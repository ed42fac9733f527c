internal import CSpawn
public import Foundation

/// A child process, started with `posix_spawn`, signalled and waited for by its pid.
///
///     let tool = try Subprocess("/usr/bin/env", ["pg_dump", "--version"], output: .pipe)
///     let printed = tool.standardOutput!.readDataToEndOfFile()
///     let ended = tool.waitUntilExit()   // .exited(0)
///
/// Not Foundation's `Process`: on Linux its `run()` reads past the end of a directory
/// entry while it looks for descriptors to close, and crashes at random under a suite that
/// starts many processes (swift-corelibs-foundation PR 5472, fixed after Swift 6.3.1);
/// under load it could also miss a child's exit and spin beside the zombie.
///
/// The child gets descriptors 0 to 2 as asked and no other, each signal at its default and
/// none blocked. It is reaped by `waitUntilExit`, `isRunning` or `termination`, whichever
/// first sees it end; after that `signal` does nothing, so a reused pid is never signalled.
public final class Subprocess: @unchecked Sendable {
    // @unchecked: `pid` and the handles never change; the termination is behind `lock`.

    /// Where the child's standard input comes from.
    public enum Input: Sendable {
        /// The parent's own.
        case inherit
        /// `/dev/null`: reading gives end of file at once.
        case null
        /// A pipe; its writing end is `standardInput`.
        case pipe
    }

    /// Where the child's standard output or error goes.
    public enum Output: Sendable {
        /// The parent's own.
        case inherit
        /// `/dev/null`.
        case null
        /// A pipe; its reading end is `standardOutput` or `standardError`.
        case pipe
        /// A file, created (0600) or emptied.
        case file(String)
        /// Standard error only: wherever standard output goes.
        case sameAsOutput
    }

    /// How a child ended.
    public enum Termination: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)

        /// The exit code, or the number of the signal that ended it.
        public var status: Int32 {
            switch self {
            case .exited(let code): code
            case .signalled(let signal): signal
            }
        }
    }

    public let pid: Int32
    /// The writing end of the child's standard input, with `Input.pipe`.
    public let standardInput: FileHandle?
    /// The reading end of the child's standard output, with `Output.pipe`.
    public let standardOutput: FileHandle?
    /// The reading end of the child's standard error, with `Output.pipe`.
    public let standardError: FileHandle?

    private let lock = NSLock()
    private var ended: Termination?

    /// Starts `executable` (a path; `/usr/bin/env` finds a tool on `PATH`) with `arguments`,
    /// in `environment` (nil: this process's).
    ///
    /// - Throws: `SubprocessError` when a pipe or file cannot be opened or the executable
    ///   cannot be started.
    public init(
        _ executable: String, _ arguments: [String] = [], environment: [String: String]? = nil,
        input: Input = .null, output: Output = .inherit, error: Output = .inherit
    ) throws(SubprocessError) {
        // Descriptors opened here for the child, closed once it has them.
        var forChild: [Int32] = []
        defer { for fd in forChild { close(fd) } }
        func pipeEnds() throws(SubprocessError) -> (read: Int32, write: Int32) {
            var fds: [Int32] = [-1, -1]
            guard tandem_pipe(&fds) == 0 else { throw .cannotOpen("a pipe", errno) }
            return (fds[0], fds[1])
        }
        func open(_ path: String, _ flags: Int32) throws(SubprocessError) -> Int32 {
            let fd = Foundation.open(path, flags | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw .cannotOpen(path, errno) }
            return fd
        }
        var inFD: Int32 = -1
        var input_: FileHandle?
        switch input {
        case .inherit: break
        case .null: inFD = try open("/dev/null", O_RDONLY); forChild.append(inFD)
        case .pipe:
            let ends = try pipeEnds()
            inFD = ends.read; forChild.append(ends.read)
            input_ = FileHandle(fileDescriptor: ends.write, closeOnDealloc: true)
        }
        func place(_ output: Output, same: Int32) throws(SubprocessError) -> (Int32, FileHandle?) {
            switch output {
            case .inherit: return (-1, nil)
            case .sameAsOutput: return (same, nil)
            case .null:
                let fd = try open("/dev/null", O_WRONLY); forChild.append(fd)
                return (fd, nil)
            case .file(let path):
                let fd = try open(path, O_WRONLY | O_CREAT | O_TRUNC); forChild.append(fd)
                return (fd, nil)
            case .pipe:
                let ends = try pipeEnds()
                forChild.append(ends.write)
                return (ends.write, FileHandle(fileDescriptor: ends.read, closeOnDealloc: true))
            }
        }
        let (outFD, output_) = try place(output, same: 1)
        let (errFD, error_) = try place(error, same: outFD == -1 ? 1 : outFD)
        standardInput = input_
        standardOutput = output_
        standardError = error_

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var envp = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { for pointer in envp ?? [] { free(pointer) } }
        var child: pid_t = 0
        let result =
            if envp != nil { tandem_spawn(&child, executable, argv, &envp!, inFD, outFD, errFD) }
            else { tandem_spawn(&child, executable, argv, environ, inFD, outFD, errFD) }
        guard result == 0 else { throw SubprocessError.cannotStart(executable, result) }
        pid = child
    }

    /// False once the child has ended (and is reaped).
    public var isRunning: Bool { reap() == nil }

    /// How it ended; nil while it runs.
    public var termination: Termination? { reap() }

    /// Sends `signal`, unless it has been reaped already.
    public func signal(_ signal: Int32) {
        lock.lock()
        defer { lock.unlock() }
        if ended == nil { kill(pid, signal) }
    }

    /// SIGTERM.
    public func terminate() { signal(SIGTERM) }

    /// Blocks until it ends, and says how.
    @discardableResult
    public func waitUntilExit() -> Termination {
        while true {
            if let ended = reap() { return ended }
            // Waits without reaping, so that any thread may reap under the lock.
            var info = siginfo_t()
            if waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) == -1 && errno == ECHILD {
                // Reaped by another thread of ours (under the lock, seen next time round),
                // or by someone else who did not tell us how it ended.
                if let ended = reap() { return ended }
                lock.lock()
                defer { lock.unlock() }
                let lost = self.ended ?? .exited(-1)
                self.ended = lost
                return lost
            }
        }
    }

    /// Reaps it if it has ended; how it ended, or nil while it runs.
    private func reap() -> Termination? {
        lock.lock()
        defer { lock.unlock() }
        if let ended { return ended }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        guard result == pid else { return nil }
        let signal = status & 0x7F
        ended = signal == 0 ? .exited((status >> 8) & 0xFF) : .signalled(signal)
        return ended
    }
}

/// Why a child process could not be started.
public enum SubprocessError: Error, CustomStringConvertible {
    case cannotOpen(String, Int32)
    case cannotStart(String, Int32)

    /// The errno value: ENOENT when the executable does not exist.
    public var code: Int32 {
        switch self {
        case .cannotOpen(_, let code), .cannotStart(_, let code): code
        }
    }

    public var description: String {
        switch self {
        case .cannotOpen(let what, let code): "Cannot open \(what) for a child process: \(String(cString: strerror(code)))."
        case .cannotStart(let path, let code): "Cannot start \(path): \(String(cString: strerror(code)))."
        }
    }
}
