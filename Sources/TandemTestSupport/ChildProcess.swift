import Foundation

/// A child process the suite started, ended by a signal and waited for off the
/// concurrency pool (`offThePool`); when released still running, it is sent SIGTERM and
/// reaped on a thread of its own, so releasing it never blocks the releasing thread.
final class ChildProcess: @unchecked Sendable {
    // @unchecked: `process` is running when handed over and is only signalled and waited for.
    let process: Process
    /// What ends it when released: SIGTERM, or SIGKILL for a helper that must not outlive
    /// a test and has nothing to finish (a proxy started with signals blocked ignores
    /// SIGTERM: Foundation's `Process` hands the child its spawning thread's mask).
    let releaseSignal: Int32

    init(running process: Process, releaseSignal: Int32 = SIGTERM) {
        self.process = process
        self.releaseSignal = releaseSignal
    }

    /// Set once this class reaped the child itself (`stop`, `kill9`): Foundation then never
    /// learns that it ended, and `process.isRunning` stays true.
    private let reapedHere = Locked(false)

    var isRunning: Bool { !reapedHere.withLock { $0 } && process.isRunning }
    var pid: Int32 { process.processIdentifier }

    /// SIGKILL, as a crash or a pulled battery would end it; waits for it to end.
    func kill9() async {
        guard isRunning else { return }
        let pid = process.processIdentifier
        kill(pid, SIGKILL)
        _ = try? await offThePool { while !Self.reaped(pid) { usleep(20_000) } }
        reapedHere.withLock { $0 = true }
    }

    /// SIGTERM; waits for it to finish what it was doing and end. A SIGTERM that arrives
    /// while a server is still starting can be lost (pending, then discarded when the
    /// server's lifecycle takes the signal over by ignoring it): once seen, a local run of
    /// the suite waited on such a server for 12 minutes. After `patience` the child is
    /// sent SIGKILL and this is said on standard error; tests of how a process ends on
    /// SIGTERM check that themselves (`ConnectionDeadlineTests`, `CLIDurabilityTests`).
    func stop(patience: Duration = .seconds(30)) async {
        guard isRunning else { return }
        process.terminate()
        let pid = process.processIdentifier
        _ = try? await offThePool {
            // Not `Process.waitUntilExit()`: under load Foundation can miss a child's exit
            // and spin forever beside its zombie (seen in a CI clone run under TSan, and
            // locally). The child is reaped here, or found reaped already.
            let deadline = ContinuousClock.now + patience
            while !Self.reaped(pid), ContinuousClock.now < deadline { usleep(20_000) }
            guard !Self.reaped(pid) else { return }
            FileHandle.standardError.write(Data("ChildProcess: pid \(pid) did not end on SIGTERM within \(patience); sent SIGKILL\n".utf8))
            kill(pid, SIGKILL)
            while !Self.reaped(pid) { usleep(20_000) }
        }
        reapedHere.withLock { $0 = true }
    }

    /// Whether the child has ended: reaped now, or already (by Foundation).
    private static func reaped(_ pid: Int32) -> Bool {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        return result == pid || (result == -1 && errno == ECHILD)
    }

    deinit {
        guard isRunning else { return }
        kill(process.processIdentifier, releaseSignal)
        // The last reference is most often dropped by a test on the concurrency pool.
        // A process that does not end on SIGTERM is a bug the shutdown tests look for
        // (`ConnectionDeadlineTests`, `CLIDurabilityTests`), not something to wait on here.
        let process = process
        let reaper = Thread { process.waitUntilExit() }
        reaper.start()
    }
}
