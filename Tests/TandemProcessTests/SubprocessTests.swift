import Foundation
import TandemProcess
import Testing

@Suite("Child processes")
struct SubprocessTests {
    @Test func output_error_andExitCode_reachTheParent() throws {
        let child = try Subprocess("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"], output: .pipe, error: .pipe)
        #expect(String(decoding: child.standardOutput!.readDataToEndOfFile(), as: UTF8.self) == "out\n")
        #expect(String(decoding: child.standardError!.readDataToEndOfFile(), as: UTF8.self) == "err\n")
        #expect(child.waitUntilExit() == .exited(3))
        #expect(!child.isRunning)
    }

    @Test func errorSameAsOutput_mergesBothInOrder() throws {
        let child = try Subprocess("/bin/sh", ["-c", "echo one; echo two >&2; echo three"], output: .pipe, error: .sameAsOutput)
        #expect(String(decoding: child.standardOutput!.readDataToEndOfFile(), as: UTF8.self) == "one\ntwo\nthree\n")
        #expect(child.waitUntilExit() == .exited(0))
    }

    @Test func input_isWhatTheParentWrites_andNullIsEmpty() throws {
        let piped = try Subprocess("/bin/cat", input: .pipe, output: .pipe)
        piped.standardInput!.write(Data("typed\n".utf8))
        try piped.standardInput!.close()
        #expect(String(decoding: piped.standardOutput!.readDataToEndOfFile(), as: UTF8.self) == "typed\n")
        #expect(piped.waitUntilExit() == .exited(0))

        let empty = try Subprocess("/bin/cat", output: .pipe)
        #expect(empty.standardOutput!.readDataToEndOfFile().isEmpty)
        #expect(empty.waitUntilExit() == .exited(0))
    }

    @Test func environment_isExactlyTheOneGiven_orElseThisProcesses() throws {
        let given = try Subprocess("/usr/bin/env", environment: ["ONLY": "this"], output: .pipe)
        #expect(String(decoding: given.standardOutput!.readDataToEndOfFile(), as: UTF8.self) == "ONLY=this\n")
        given.waitUntilExit()

        let inherited = try Subprocess("/usr/bin/env", output: .pipe)
        let printed = String(decoding: inherited.standardOutput!.readDataToEndOfFile(), as: UTF8.self)
        inherited.waitUntilExit()
        #expect(printed.contains("PATH="))
    }

    @Test func file_isCreatedPrivate_andEmptiedFirst() throws {
        let path = NSTemporaryDirectory() + "subprocess-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("an older and longer content\n".utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        try Subprocess("/bin/echo", ["new"], output: .file(path)).waitUntilExit()
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "new\n")

        let fresh = path + "-fresh"
        defer { try? FileManager.default.removeItem(atPath: fresh) }
        try Subprocess("/bin/echo", ["x"], output: .file(fresh)).waitUntilExit()
        let permissions = try FileManager.default.attributesOfItem(atPath: fresh)[.posixPermissions] as? Int
        #expect(permissions == 0o600)
    }

    /// A descriptor the parent opened without close-on-exec (a store file, a socket) is
    /// not the child's.
    @Test func theChild_getsNoOtherDescriptorOfTheParents() throws {
        let leaky = open("/dev/null", O_RDONLY)
        try #require(leaky > 2)
        defer { close(leaky) }
        // sh's `test` looks at sh's own descriptors.
        let child = try Subprocess("/bin/sh", ["-c", "test -e /proc/self/fd/\(leaky) && echo open || echo closed; test -e /proc/self/fd/1 && echo stdout"], output: .pipe)
        #expect(String(decoding: child.standardOutput!.readDataToEndOfFile(), as: UTF8.self) == "closed\nstdout\n")
        child.waitUntilExit()
    }

    /// The spawning thread's blocked signals are not the child's: a server started from a
    /// thread that blocks SIGTERM still ends on SIGTERM.
    @Test func aChildStartedWithSIGTERMBlocked_stillEndsOnSIGTERM() throws {
        var blocked = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGTERM)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &blocked, &previous)
        let child: Subprocess
        do {
            defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
            child = try Subprocess("/bin/sleep", ["30"])
        }
        child.terminate()
        #expect(child.waitUntilExit() == .signalled(SIGTERM))
    }

    @Test func aMissingExecutable_isAClearError() {
        let error = #expect(throws: SubprocessError.self) {
            try Subprocess("/nonexistent/tandem-\(UUID().uuidString)")
        }
        #expect(error?.code == ENOENT)
        #expect("\(error.map { "\($0)" } ?? "")".contains("No such file"))
    }

    /// Many threads start, read and wait for children at once while the parent holds many
    /// descriptors: the load under which Foundation's `Process.run()` crashed the suite.
    /// Each child is reaped once, and every waiter learns how it ended.
    @Test func manyThreadsAtOnce_eachChildEndsAndIsReapedOnce() async throws {
        let held = (0..<700).map { _ in open("/dev/null", O_RDONLY) }
        defer { for fd in held { close(fd) } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    try await Self.offThePool {
                        for round in 0..<40 {
                            let child = try Subprocess("/bin/sh", ["-c", "echo \(worker)-\(round); exit \(round % 7)"], output: .pipe)
                            // Two waiters and a poller on one child.
                            let other = Thread.detached { child.waitUntilExit() }
                            while child.isRunning { usleep(1_000) }
                            let printed = String(decoding: child.standardOutput!.readDataToEndOfFile(), as: UTF8.self)
                            guard printed == "\(worker)-\(round)\n", child.waitUntilExit() == .exited(Int32(round % 7)), other.value == .exited(Int32(round % 7))
                            else { throw SubprocessTestFailure(description: "child \(worker)-\(round) printed \(printed), ended \(child.waitUntilExit())") }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    @Test func signal_afterTheChildIsReaped_doesNothing() throws {
        let child = try Subprocess("/bin/true")
        #expect(child.waitUntilExit() == .exited(0))
        child.signal(SIGKILL)
        #expect(child.termination == .exited(0))
    }

    private static func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }
}

struct SubprocessTestFailure: Error, CustomStringConvertible {
    var description: String
}

extension Thread {
    /// Runs `body` on a new thread; `value` waits for what it returned.
    final class Detached<T: Sendable>: @unchecked Sendable {
        // @unchecked: `result` is written once before `done` is signalled and read after.
        private let done = DispatchSemaphore(value: 0)
        private var result: T?
        init(_ body: @escaping @Sendable () -> T) {
            Thread.detachNewThread { [self] in
                result = body()
                done.signal()
            }
        }
        var value: T {
            done.wait()
            done.signal()
            return result!
        }
    }

    static func detached<T: Sendable>(_ body: @escaping @Sendable () -> T) -> Detached<T> { Detached(body) }
}
