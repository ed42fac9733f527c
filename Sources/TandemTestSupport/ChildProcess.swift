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
    /// Its exit status or signal, as Foundation's `terminationStatus` gives them.
    private let reapedHere = Locked<Int32?>(nil)

    var isRunning: Bool { reapedHere.withLock { $0 } == nil && process.isRunning }

    /// How it ended (call once it is not running).
    var terminationStatus: Int32 { reapedHere.withLock { $0 } ?? process.terminationStatus }
    var pid: Int32 { process.processIdentifier }

    /// SIGKILL, as a crash or a pulled battery would end it; waits for it to end.
    func kill9() async {
        guard isRunning else { return }
        let pid = process.processIdentifier
        kill(pid, SIGKILL)
        let status = try? await offThePool { () -> Int32 in
            while true {
                if let status = Self.reaped(pid) { return status }
                usleep(20_000)
            }
        }
        if status != Self.reapedByFoundation { reapedHere.withLock { $0 = status ?? SIGKILL } }
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
        let status = try? await offThePool { () -> Int32 in
            // Not `Process.waitUntilExit()`: under load Foundation can miss a child's exit
            // and spin forever beside its zombie (seen in a CI clone run under TSan, and
            // locally). The child is reaped here, or found reaped already.
            let deadline = ContinuousClock.now + patience
            while ContinuousClock.now < deadline {
                if let status = Self.reaped(pid) { return status }
                usleep(20_000)
            }
            FileHandle.standardError.write(Data("ChildProcess: pid \(pid) did not end on SIGTERM within \(patience); sent SIGKILL\n".utf8))
            kill(pid, SIGKILL)
            while true {
                if let status = Self.reaped(pid) { return status }
                usleep(20_000)
            }
        }
        if status != Self.reapedByFoundation { reapedHere.withLock { $0 = status ?? SIGTERM } }
    }

    /// `reaped`'s answer when Foundation reaped the child first, and knows its status.
    private static let reapedByFoundation: Int32 = -1

    /// Its status once it has ended: reaped now (the exit code, or the signal that ended
    /// it, as Foundation reports them), or `reapedByFoundation`;
    /// nil while it runs.
    private static func reaped(_ pid: Int32) -> Int32? {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid { return status & 0x7F == 0 ? (status >> 8) & 0xFF : status & 0x7F }
        return result == -1 && errno == ECHILD ? Self.reapedByFoundation : nil
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
