public import Logging
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

/// One connection to PostgreSQL whose calls block until PostgreSQL answers. The server's
/// rules are synchronous code over a store's capabilities (`PushReads`, `PullReads`), run
/// inside one transaction; on PostgreSQL that transaction lives on a connection driven
/// from a thread of the store's own, which may block (never from Swift's cooperative pool
/// in the serving path). Start-up (migrations) uses it too.
public final class BlockingConnection: @unchecked Sendable {
    // @unchecked: `connection` is immutable and PostgresNIO's connection is thread-safe;
    // `transactionLock` makes whole transactions take turns, so two threads never
    // interleave their statements in one transaction.
    let connection: PostgresConnection
    let logger: Logger
    private let transactionLock = NSLock()

    private init(connection: PostgresConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
        watchClose()
    }

    /// Connects, over TLS as `location.tls` says (PostgresLocation).
    /// `applicationName` is what `pg_stat_activity` shows: `tandem` for a store's connections
    /// (a restore refuses to run while any is open), something else for tools and tests.
    ///
    /// A connection that fails before PostgreSQL said anything (no answer within the 5 s
    /// connect timeout, a reset) is tried once more after a quarter second: a process
    /// that stalled for a moment (a CI run saw 17 s with the suite under ThreadSanitizer)
    /// finds every connect it had started timed out at once when it resumes. What
    /// PostgreSQL refused (a password, a database) is not tried again.
    public static func open(
        _ location: PostgresLocation, applicationName: String = "tandem", logger: Logger = Logger(label: "tandem.postgres")
    ) throws -> BlockingConnection {
        let settings = try Self.configuration(location, applicationName: applicationName)
        var attempt = 1
        while true {
            do {
                let connection = try PostgresConnection.connect(
                    on: MultiThreadedEventLoopGroup.singleton.any(), configuration: settings, id: 1, logger: logger
                ).wait()
                return BlockingConnection(connection: connection, logger: logger)
            } catch {
                if attempt == 1, let error = error as? PSQLError, error.code == .connectionError, error.serverInfo == nil,
                   !(error.underlying is NIOSSLError || error.underlying is NIOSSLExtraError) {
                    attempt += 1
                    usleep(250_000)
                    continue
                }
                throw PostgresStoreError.unreachable("Cannot connect to PostgreSQL at \(location): \(Self.reason(error, tls: location.tls))")
            }
        }
    }

    /// How PostgresNIO connects to `location`: over TLS unless `location.tls` is `disable`,
    /// verifying the server's certificate as it says (`sslrootcert`'s certificates, or the
    /// system's roots). Named `tandem` in `pg_stat_activity`; a host that does not answer
    /// within 5 s is said to be unreachable rather than waited on.
    /// - Throws: `PostgresStoreError.unreachable` when `sslrootcert` cannot be read.
    static func configuration(_ location: PostgresLocation, applicationName: String = "tandem") throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch location.tls {
        case .disable:
            tls = .disable
        case .require, .verifyCA, .verifyFull:
            var settings = TLSConfiguration.makeClientConfiguration()
            settings.minimumTLSVersion = .tlsv12
            switch location.tls {
            case .require: settings.certificateVerification = .none
            case .verifyCA: settings.certificateVerification = .noHostnameVerification
            default: settings.certificateVerification = .fullVerification
            }
            if let file = location.rootCertificates {
                do {
                    settings.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(file))
                } catch {
                    throw PostgresStoreError.unreachable("Cannot read sslrootcert \(file): it must be a readable PEM file of certificates.")
                }
            }
            do {
                tls = .require(try NIOSSLContext(configuration: settings))
            } catch {
                throw PostgresStoreError.unreachable("Cannot set up TLS to PostgreSQL: \(error)")
            }
        }
        var configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: tls)
        configuration.options.additionalStartupParameters = [("application_name", applicationName)]
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }

    /// Runs one statement (no parameters; SQL of this module or of an operator's tools).
    public func execute(_ sql: String) throws {
        _ = try rows(sql)
    }

    /// Runs statements separated by `;` (no parameters, no `;` inside them), one at a time.
    func executeScript(_ sql: String) throws {
        for statement in sql.split(separator: ";") where !statement.allSatisfy(\.isWhitespace) { try execute(String(statement)) }
    }

    /// Runs one statement and returns its first column as text (`SELECT x::text …`).
    public func texts(_ sql: String) throws -> [String] {
        do { return try rows(sql).map { try $0.decode(String.self) } } catch let error as PostgresStoreError { throw error } catch {
            throw PostgresStoreError.statementFailed("a value is not text: \(Self.reason(error))")
        }
    }

    /// Runs one statement (no parameters) and returns its rows.
    @discardableResult
    func rows(_ sql: String) throws -> [PostgresRow] {
        try run(PostgresQuery(unsafeSQL: sql))
    }

    /// Runs one statement with parameters (`$1`, `$2`…) and returns its rows, after every
    /// statement `send` queued.
    @discardableResult
    func run(_ query: PostgresQuery) throws -> [PostgresRow] {
        try flush()
        precondition(buffers.allSatisfy(\.isEmpty))
        do {
            return Array(try answer(connection.query(query, logger: logger)).rows)
        } catch {
            throw Self.classified(error)
        }
    }

    /// Runs several statements at once (after every statement `send` queued): all are sent
    /// before the first answer is waited for, so they cost one round trip, not one each.
    func runAll(_ queries: [PostgresQuery]) throws -> [[PostgresRow]] {
        try flush()
        precondition(buffers.allSatisfy(\.isEmpty))
        let futures = queries.map { connection.query($0, logger: logger) }
        var answers: [[PostgresRow]] = []
        var failure: (any Error)?
        for future in futures {
            do { answers.append(Array(try answer(future).rows)) } catch { if failure == nil { failure = error } }
        }
        if let failure { throw Self.classified(failure) }
        return answers
    }

    /// Statements sent and not yet waited for, in the order sent (used by the one thread that
    /// holds the transaction).
    private var pending: [EventLoopFuture<PostgresQueryResult>] = []

    /// Sends a statement whose rows nobody reads (a push's inserts) without waiting for it:
    /// PostgreSQL runs the statements of a connection in the order sent, and the next `run`,
    /// or the commit, first waits for all of them and throws the first one's error. A push
    /// of 250 changes then waits for a few answers instead of a thousand.
    func send(_ query: PostgresQuery) {
        sendBuffered()
        pending.append(connection.query(query, logger: logger))
    }

    /// Rows collected for one multi-row statement each (`buffer(_:)`).
    private var buffers: [any BufferedRows] = []

    /// The buffer of rows of type `B` in this transaction: rows added to it are sent as one
    /// statement before any other statement (or the commit), so statements still run in the
    /// order the rules made them.
    func buffer<B: BufferedRows>(_ type: B.Type) -> B {
        if let found = buffers.first(where: { $0 is B }) as? B { return found }
        let made = B()
        buffers.append(made)
        return made
    }

    /// Before rolling back to a savepoint: drops the rows collected and not sent, and waits
    /// for the statements sent, whose errors the rollback undoes (only a lost connection is
    /// thrown: then nothing can be rolled back).
    func discardBuffered() throws {
        for buffer in buffers where !buffer.isEmpty { _ = buffer.takeStatement() }
        do { try flush() } catch PostgresStoreError.unreachable(let message) { throw PostgresStoreError.unreachable(message) } catch {}
    }

    private func sendBuffered() {
        for buffer in buffers where !buffer.isEmpty {
            pending.append(connection.query(buffer.takeStatement(), logger: logger))
        }
    }

    /// Waits for every statement sent (buffered rows first sent); throws the first one's error.
    func flush() throws {
        sendBuffered()
        guard !pending.isEmpty else { return }
        let sent = pending
        pending = []
        var failure: (any Error)?
        for future in sent {
            do { _ = try answer(future) } catch { if failure == nil { failure = error } }
        }
        if let failure { throw Self.classified(failure) }
    }

    /// Waits for a statement's answer, or for the connection to close: PostgresNIO does not
    /// always fail a statement sent on a connection PostgreSQL has just closed (seen when
    /// PostgreSQL restarts: the push connection's next `BEGIN` waited forever).
    private func answer<T: Sendable>(_ future: EventLoopFuture<T>) throws -> T {
        let answered = future.eventLoop.makePromise(of: T.self)
        future.cascade(to: answered)
        let closed = PostgresStoreError.unreachable("PostgreSQL closed the connection.")
        let id: Int? = inFlightLock.withLock {
            guard !connectionGone else { return nil }
            nextInFlight += 1
            inFlight[nextInFlight] = { answered.fail(closed) }
            return nextInFlight
        }
        if id == nil { answered.fail(closed) }
        defer { if let id { inFlightLock.withLock { _ = inFlight.removeValue(forKey: id) } } }
        return try answered.futureResult.wait()
    }

    // The statements waited for, failed all at once when the connection closes (one
    // callback on `closeFuture` for the connection's life, not one per statement).
    private let inFlightLock = NSLock()
    private var inFlight: [Int: @Sendable () -> Void] = [:]
    private var nextInFlight = 0
    private var connectionGone = false

    private func watchClose() {
        connection.closeFuture.whenComplete { [weak self] _ in
            guard let self else { return }
            let waiting = self.inFlightLock.withLock {
                self.connectionGone = true
                defer { self.inFlight.removeAll() }
                return Array(self.inFlight.values)
            }
            for fail in waiting { fail() }
        }
    }

    /// Whether the connection is gone (PostgreSQL stopped, the network failed, or it was
    /// closed after a failed rollback): the store opens another one.
    public var isClosed: Bool { inFlightLock.withLock { closing } || connection.isClosed }

    /// `close()` was called (the connection may still be closing).
    private var closing = false

    /// A lost connection, or PostgreSQL shutting down or in recovery, is `unreachable`
    /// (the server answers 503 and the client tries again); any other error is a statement
    /// that failed.
    static func classified(_ error: any Error) -> PostgresStoreError {
        if let error = error as? PostgresStoreError { return error }
        if let error = error as? PSQLError {
            switch error.code {
            case .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .connectionError:
                return .unreachable("The connection to PostgreSQL was lost (\(error.code)).")
            default:
                // Class 08: connection exceptions; 57P01-57P03: shut down, or starting up.
                if let state = error.serverInfo?[.sqlState], state.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(state) {
                    return .unreachable("PostgreSQL is not available: \(reason(error))")
                }
            }
        }
        return .statementFailed(reason(error))
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    /// A transaction that ended in an error is answered `ROLLBACK` to a `COMMIT`, without an
    /// error: the commit's tag is checked, so nothing is reported written that was not.
    /// A connection whose `ROLLBACK` fails is closed: it is never used again half-way.
    public func transaction<T>(isolation: String = "READ COMMITTED", _ body: (BlockingConnection) throws -> T) throws -> T {
        transactionLock.lock()
        defer { transactionLock.unlock() }
        try execute("BEGIN ISOLATION LEVEL \(isolation)")
        do {
            let result = try body(self)
            try flush()
            let tag: String
            do { tag = try answer(connection.query("COMMIT", logger: logger)).metadata.command } catch {
                throw Self.classified(error)
            }
            guard tag == "COMMIT" else { throw PostgresStoreError.statementFailed("the transaction was rolled back (\(tag))") }
            return result
        } catch {
            try? discardBuffered()
            if (try? execute("ROLLBACK")) == nil { close() }
            throw error
        }
    }

    /// Closes the connection without waiting for it to close: a store is often released on
    /// one of NIO's event loops (the last request that held it), where waiting would deadlock.
    /// The connection is kept until it has closed (PostgresNIO requires it).
    public func close() {
        inFlightLock.withLock { closing = true }
        let connection = connection
        connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
    }

    /// PostgreSQL's own message and SQLSTATE for an error, when there are (never the query's
    /// values); else what the connection reports, by its code.
    static func reason(_ error: any Error, tls: PostgresLocation.TLSMode? = nil) -> String {
        if let error = error as? NIOSSLExtraError, error == .failedToValidateHostname {
            return "its TLS certificate could not be verified for this host: with sslmode=verify-full, connect by a host name the "
                + "certificate names (not an address), or use sslmode=verify-ca with sslrootcert"
        }
        if let error = error as? NIOSSLError, case .handshakeFailed(let inner) = error, "\(inner)".contains("CERTIFICATE_VERIFY_FAILED") {
            return "its TLS certificate could not be verified (give the certificate of the authority that signed it with sslrootcert=PATH)"
        }
        if error is NIOSSLError || error is NIOSSLExtraError {
            return "TLS with it failed (\(error))"
        }
        guard let error = error as? PSQLError else { return String(describing: type(of: error)) }
        if let message = error.serverInfo?[.message] {
            return error.serverInfo?[.sqlState].map { "\(message) (SQLSTATE \($0))" } ?? message
        }
        if error.code == .sslUnsupported {
            return "it does not offer TLS (turn ssl on in its postgresql.conf; or, on a network you trust, add sslmode=disable to the URL)"
        }
        if let underlying = error.underlying, underlying is NIOSSLError || underlying is NIOSSLExtraError {
            return reason(underlying, tls: tls)
        }
        return "the connection failed (\(error.code))"
    }
}

/// Rows a transaction inserts many of (a push's held changes), collected and sent as one
/// statement (`BlockingConnection.buffer`).
protocol BufferedRows: AnyObject {
    init()
    var isEmpty: Bool { get }
    /// The statement that inserts the rows collected; empties the buffer.
    func takeStatement() -> PostgresQuery
}

/// Why the PostgreSQL store could not do something.
public enum PostgresStoreError: Error, Equatable, CustomStringConvertible {
    case unreachable(String)
    case statementFailed(String)

    public var description: String {
        switch self {
        case .unreachable(let message): message
        case .statementFailed(let message): "PostgreSQL refused a statement: \(message)"
        }
    }
}
