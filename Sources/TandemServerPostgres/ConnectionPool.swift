import Foundation
import Logging
import NIOPosix

/// The connections a PostgreSQL store runs its transactions on, opened when first needed
/// (up to `capacity`), each driven from a thread of the pool's own (`NIOThreadPool`, one
/// thread per connection: a transaction's statements block until PostgreSQL answers, and
/// never on Swift's cooperative threads, NIO's event loops, or Dispatch's, which add a
/// thread for blocked work only once a second).
///
/// A connection that is lost (PostgreSQL restarted, the network failed) is dropped when its
/// transaction ends, and the next transaction opens a fresh one: while PostgreSQL is away,
/// every transaction fails at once with `PostgresStoreError.unreachable`, and none waits.
final class ConnectionPool: @unchecked Sendable {
    // @unchecked: `idle`, `opened`, `waiting` and `closed` are read and written under `lock`
    // only; `location`, `capacity` and `queue` are immutable.
    let location: PostgresLocation
    let capacity: Int
    private let logger: Logger
    private let lock = NSLock()
    private var idle: [BlockingConnection] = []
    /// Connections open or being opened, idle or in use.
    private var opened = 0
    /// Callers waiting for a connection: each is handed one, or nil with a slot to open one in.
    private var waiting: [CheckedContinuation<BlockingConnection?, Never>] = []
    private var closed = false
    private let threads: NIOThreadPool

    init(location: PostgresLocation, capacity: Int, label: String, logger: Logger) {
        precondition(capacity > 0)
        self.location = location
        self.capacity = capacity
        self.logger = logger
        threads = NIOThreadPool(numberOfThreads: capacity)
        threads.start()
    }

    deinit {
        threads.shutdownGracefully { _ in }
    }

    /// Runs `body` on a connection of the pool, on one of the pool's threads.
    func run<T: Sendable>(_ body: @escaping @Sendable (BlockingConnection) throws -> T) async throws -> T {
        let connection = await acquire()
        return try await withCheckedThrowingContinuation { continuation in
            threads.submit { _ in
                var current = connection
                do {
                    if current == nil { current = try Self.open(self.location, logger: self.logger) }
                    let result = try body(current!)
                    self.release(current)
                    continuation.resume(returning: result)
                } catch {
                    self.release(current)
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    /// Opens a connection as the store's transactions need it: every commit waits for its
    /// WAL flush (`synchronous_commit = on`) whatever the database's default, so an
    /// acknowledged write is durable.
    /// The session's limits: a statement running over a minute is cancelled; a session left
    /// idle inside a transaction for 30 s (an instance that died holding the push lock, its
    /// socket not closed) is ended by PostgreSQL, which releases its locks; PostgreSQL probes
    /// an idle connection after 10 s and drops it after 3 unanswered probes 5 s apart.
    static let sessionSettings = """
        SET synchronous_commit TO on; SET statement_timeout TO '60s'; SET idle_in_transaction_session_timeout TO '30s';
        SET tcp_keepalives_idle TO 10; SET tcp_keepalives_interval TO 5; SET tcp_keepalives_count TO 3
        """

    static func open(_ location: PostgresLocation, logger: Logger) throws -> BlockingConnection {
        let connection = try BlockingConnection.open(location, logger: logger)
        do { try connection.executeScript(sessionSettings) } catch {
            connection.close()
            throw error
        }
        return connection
    }

    /// An idle connection, or nil with a slot reserved to open one in.
    private func acquire() async -> BlockingConnection? {
        await withCheckedContinuation { continuation in
            lock.lock()
            if let connection = idle.popLast() {
                lock.unlock()
                continuation.resume(returning: connection)
            } else if opened < capacity {
                opened += 1
                lock.unlock()
                continuation.resume(returning: nil)
            } else {
                waiting.append(continuation)
                lock.unlock()
            }
        }
    }

    /// Gives a connection back after a transaction (nil: opening one failed). A closed one
    /// frees its slot.
    private func release(_ connection: BlockingConnection?) {
        lock.lock()
        let usable = connection.flatMap { $0.isClosed || closed ? nil : $0 }
        if !waiting.isEmpty {
            let next = waiting.removeFirst()
            lock.unlock()
            if usable == nil { connection?.close() }
            next.resume(returning: usable)
            return
        }
        if let usable { idle.append(usable) } else { opened -= 1 }
        lock.unlock()
        if usable == nil { connection?.close() }
    }

    /// Closes the idle connections, and each busy one once its transaction ends.
    func close() {
        lock.lock()
        closed = true
        let connections = idle
        idle = []
        opened -= connections.count
        lock.unlock()
        for connection in connections { connection.close() }
    }
}
