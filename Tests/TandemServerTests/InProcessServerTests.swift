import Foundation
import Hummingbird
import TandemClient
import TandemCore
import TandemServer
import TandemStore
import TandemTestSupport
import Testing

/// The harness the server tests rely on: an in-process server answers on threads of its
/// own (`ThreadsExecutor`), never on the concurrency pool the tests compute on.
@Suite("In-process server")
struct InProcessServerTests {
    /// Notes the thread each request is handled on.
    final class Threads: RouterMiddleware, Sendable {
        typealias Context = TandemRequestContext
        let names = Locked<[String]>([])

        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            let name = Self.threadName()
            names.withLock { $0.append(name) }
            return try await next(request, context)
        }

        /// The calling thread's name (`Thread.current` is not for async code: a task may
        /// move between threads, which is why this asks at one moment only).
        static func threadName() -> String { Thread.current.name ?? "unnamed" }
    }

    @Test func requestsAreHandled_onTheServersOwnThreads() async throws {
        let threads = Threads()
        let (dir, server) = try await InProcessServer.center("in-process", middleware: [threads])
        let phone = try await server.device(dir, "phone")
        _ = try phone.write(try moodEntry(3), to: nil, clock: SystemWallClock())
        _ = try await Syncer(store: phone).sync()
        let names = threads.names.withLock { $0 }
        #expect(names.count >= 2, "enroll, push and pull went through the middleware")
        #expect(names.allSatisfy { $0.hasPrefix("server-") }, "\(Set(names))")
    }
}
