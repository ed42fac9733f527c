import Foundation
import Logging

/// The connections a PostgreSQL store runs its transactions on, opened when first needed
/// (up to `capacity`), each driven from a thread of the pool's own: a transaction's
/// statements block until PostgreSQL answers, and never on Swift's cooperative threads
/// (two on this machine) or NIO's event loops.
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
    private let queue: DispatchQueue

    init(location: PostgresLocation, capacity: Int, label: String, logger: Logger) {
        precondition(capacity > 0)
        self.location = location
        self.capacity = capacity
        self.logger = logger
        queue = DispatchQueue(label: label, attributes: .concurrent)
    }

    /// Runs `body` on a connection of the pool, on one of the pool's threads.
    func run<T: Sendable>(_ body: @escaping @Sendable (BlockingConnection) throws -> T) async throws -> T {
        let connection = await acquire()
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
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
    static func open(_ location: PostgresLocation, logger: Logger) throws -> BlockingConnection {
        let connection = try BlockingConnection.open(location, logger: logger)
        do { try connection.execute("SET synchronous_commit TO on") } catch {
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
