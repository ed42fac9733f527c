import Foundation
import TandemProcess

/// A child process the suite started, ended by a signal and waited for off the
/// concurrency pool (`offThePool`); when released still running, it is sent its release
/// signal and reaped on a thread of its own, so releasing it never blocks the releasing
/// thread.
final class ChildProcess: Sendable {
    let process: Subprocess
    /// What ends it when released: SIGTERM, or SIGKILL for a helper that must not outlive
    /// a test and has nothing to finish.
    let releaseSignal: Int32

    init(running process: Subprocess, releaseSignal: Int32 = SIGTERM) {
        self.process = process
        self.releaseSignal = releaseSignal
    }

    var isRunning: Bool { process.isRunning }

    /// How it ended (call once it is not running): the exit code, or the signal.
    var terminationStatus: Int32 { process.termination?.status ?? -1 }
    var pid: Int32 { process.pid }

    /// SIGKILL, as a crash or a pulled battery would end it; waits for it to end.
    func kill9() async {
        process.signal(SIGKILL)
        let process = process
        _ = try? await offThePool { process.waitUntilExit() }
    }

    /// SIGTERM; waits for it to finish what it was doing and end. A SIGTERM that arrives
    /// while a server is still starting can be lost (pending, then discarded when the
    /// server's lifecycle takes the signal over by ignoring it): once seen, a local run of
    /// the suite waited on such a server for 12 minutes. After `patience` the child is
    /// sent SIGKILL and this is said on standard error; tests of how a process ends on
    /// SIGTERM check that themselves (`ConnectionDeadlineTests`, `CLIDurabilityTests`).
    func stop(patience: Duration = .seconds(30)) async {
        guard process.isRunning else { return }
        process.terminate()
        let process = process
        _ = try? await offThePool { () -> Subprocess.Termination in
            let deadline = ContinuousClock.now + patience
            while ContinuousClock.now < deadline {
                if let ended = process.termination { return ended }
                usleep(20_000)
            }
            FileHandle.standardError.write(Data("ChildProcess: pid \(process.pid) did not end on SIGTERM within \(patience); sent SIGKILL\n".utf8))
            process.signal(SIGKILL)
            return process.waitUntilExit()
        }
    }

    deinit {
        guard process.isRunning else { return }
        process.signal(releaseSignal)
        // The last reference is most often dropped by a test on the concurrency pool.
        // A process that does not end on SIGTERM is a bug the shutdown tests look for
        // (`ConnectionDeadlineTests`, `CLIDurabilityTests`), not something to wait on here.
        let process = process
        Thread.detachNewThread { process.waitUntilExit() }
    }
}
