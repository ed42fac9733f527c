import Foundation
public import Logging
import NIOCore
import NIOPosix
import PostgresNIO
public import TandemCore
public import TandemProtocol
public import TandemServer

/// The PostgreSQL store: what several `tandem serve` instances share, behind a load
/// balancer, for a center that outgrows one machine (docs/operations.md). The rules are
/// the embedded store's (`PushRules`, `PullRules`, `AccountingRules`); this holds SQL,
/// connections and the commit feed's notifications only.
///
/// - Pushes: one connection per instance commits them in groups, as on SQLite (one WAL
///   flush for the batches that queued meanwhile, each under its own savepoint). Every push
///   transaction first takes one advisory lock, so pushes take turns across instances
///   too, and numbers become visible in order (PROTOCOL.md §9.4a).
/// - Pulls: one `REPEATABLE READ` read-only transaction each, on a pool of connections.
/// - The commit feed: the `sequence` row and `channel_head` stamps, as on SQLite; an
///   instance hears another's commits through `LISTEN`/`NOTIFY` at once, and polls the
///   feed's head besides, in case a notification was missed while reconnecting.
/// - Every commit waits for its WAL flush (`synchronous_commit = on`).
public final class PostgresServerStorage: CenterStore, @unchecked Sendable {
    // @unchecked: `pushConnection` is used on `pushQueue` only; everything else is
    // immutable or Sendable.
    public let location: PostgresLocation
    let pool: ConnectionPool
    let logger: Logger
    let commitSignal = CommitSignal()
    let poll: Duration
    /// Whether this instance hears the others' notifications now.
    let listening = Listening()
    /// Told when any instance revokes a device, member or token (`awaitRevocation`), and
    /// whose; and when this instance (re)starts listening, since notices may have been missed.
    let revocations = RevocationLog()
    let groupCommit = GroupCommit()
    private let pushQueue = DispatchQueue(label: "tandem.postgres.push")
    private var pushConnection: BlockingConnection?
    private let listener: Task<Void, Never>

    /// The NOTIFY channel every instance listens on: an empty payload for a commit that
    /// advanced a channel, `revoke:` and a member id's hex for a revocation of that member's
    /// credentials (`notifyRevocation`), `revoke` alone for anyone's.
    static let commitChannel = "tandem_commit"
    static let revocationPayload = "revoke"

    /// Connects to `location`, migrating its database first when needed (safe when several
    /// instances start at once, `PostgresSchema.migrate`).
    /// - Throws: `PostgresStoreError.unreachable`, `NewerDatabaseError`.
    /// `poll`: how often the commit feed looks at the store besides its notifications (tests
    /// set it long to show that notifications alone wake it).
    public init(
        location: PostgresLocation, connections: Int = 8, poll: Duration = .seconds(1), logger: Logger = Logger(label: "tandem.postgres")
    ) throws {
        self.location = location
        self.logger = logger
        self.poll = poll
        let first = try ConnectionPool.open(location, logger: logger)
        do { try PostgresSchema.migrate(first) } catch {
            first.close()
            throw error
        }
        first.close()
        pool = ConnectionPool(location: location, capacity: max(1, connections), label: "tandem.postgres.pool", logger: logger)
        listener = Self.listen(location, commits: commitSignal, revocations: revocations, listening: listening, logger: logger)
    }

    deinit {
        listener.cancel()
        pool.close()
        let connection = pushConnection
        pushQueue.async { connection?.close() }
    }

    /// Hears other instances' commits: every notification wakes this instance's commit feed.
    /// A lost connection is opened again; the feed is woken then too, since notifications
    /// sent meanwhile were missed.
    private static func listen(
        _ location: PostgresLocation, commits: CommitSignal, revocations: RevocationLog, listening: Listening, logger: Logger
    ) -> Task<Void, Never> {
        Task.detached {
            while !Task.isCancelled {
                do {
                    let connection = try await PostgresConnection.connect(
                        on: MultiThreadedEventLoopGroup.singleton.any(), configuration: try BlockingConnection.configuration(location), id: 2,
                        logger: logger)
                    do {
                        // Held while this instance runs: `tandem admin restore` refuses while any is.
                        _ = try await connection.query("SELECT pg_advisory_lock_shared(\(PostgresBackup.servingLockKey))", logger: logger)
                        try await connection.listen(on: commitChannel) { notifications in
                            listening.set(true)
                            commits.fire()
                            revocations.heard(nil)
                            for try await notification in notifications {
                                // `revoke:HEX` names whose; a bare `revoke` (an older
                                // instance's) or an id that cannot be read names nobody.
                                if notification.payload.hasPrefix(revocationPayload) {
                                    revocations.heard(revokedMember(notification.payload))
                                } else {
                                    commits.fire()
                                }
                            }
                        }
                    } catch {}
                    listening.set(false)
                    try? await connection.close()
                } catch {}
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    // MARK: - Transactions

    /// Runs `body` in one read-only snapshot (`REPEATABLE READ`): every read of a pull.
    func snapshot<T: Sendable>(_ body: @escaping @Sendable (PostgresTransaction) throws -> T) async throws -> T {
        try await mapped {
            try await pool.run { db in try db.transaction(isolation: "REPEATABLE READ READ ONLY") { try body(PostgresTransaction($0)) } }
        }
    }

    /// Runs `body` in one write transaction at `READ COMMITTED`, durable when this returns.
    func write<T: Sendable>(_ body: @escaping @Sendable (BlockingConnection) throws -> T) async throws -> T {
        try await mapped {
            try await pool.run { db in try db.transaction(isolation: "READ COMMITTED") { try body($0) } }
        }
    }

    /// PostgreSQL out of reach is the server's 503, said plainly to the device; where the
    /// database is (its address) and why goes to the server's log only.
    func mapped<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch PostgresStoreError.unreachable(let message) {
            logger.error("database unreachable", metadata: ["reason": "\(message)"])
            throw ServerError.unavailable("The center's database is unreachable; try again shortly.")
        }
    }

    // MARK: - ServerStorage

    public func epoch() async throws -> String {
        try await snapshot { try $0.epoch() }
    }

    public func authenticate(tokenHash: [UInt8]) async throws -> Principal {
        try await snapshot { try $0.principal(tokenHash: tokenHash) }
    }

    public func read<T: Sendable>(_ body: @escaping @Sendable (any PullReads) throws -> T) async throws -> T {
        try await snapshot { try body($0) }
    }

    public func usage(of member: MemberID) async throws -> Int64 {
        try await snapshot { try $0.usage(of: member) }
    }

    public func devices(of member: MemberID?) async throws -> [DeviceInfo] {
        try await snapshot { tx in
            try tx.db.run("""
                SELECT id, member, name, created_at, revoked FROM device
                WHERE \(member.map { Data($0.bytes) })::bytea IS NULL OR member = \(member.map { Data($0.bytes) })
                ORDER BY created_at, id
                """).map { row in
                let (id, member, name, created, revoked) = try row.decode((Data, Data, String, Int64, Int64).self)
                return DeviceInfo(id: hexString(id), member: hexString(member), name: name, enrolled: UInt64(created), revoked: revoked != 0)
            }
        }
    }

    /// Every pull appends its deliveries to the subjects' chains: appends take turns across
    /// instances (one advisory lock), so two never number one chain's entry alike.
    public func account<T: Sendable>(_ body: @escaping @Sendable (any AccountingWrites) throws -> T) async throws -> T {
        try await write { db in
            try db.run("SELECT pg_advisory_xact_lock(\(Self.accountingLockKey))")
            return try body(PostgresTransaction(db))
        }
    }

    /// The advisory lock appends to the accounting of disclosures hold ("TandemA").
    static let accountingLockKey: Int64 = 0x54_61_6E_64_65_6D_41

    public func setRepushWindow(device: RecordID, epoch: String?) async throws {
        let bytes = try epoch.map { Data(try RecordID(hex: $0).bytes) }
        _ = try await write { db in try db.run("UPDATE device SET repush_epoch = \(bytes) WHERE id = \(Data(device.bytes))") }
    }

    // MARK: Enrollment

    public func enrollFailures(address: String, sinceMillis: UInt64) async throws -> (fromAddress: Int, total: Int) {
        let since = Int64(sinceMillis)
        return try await snapshot { tx in
            let fromAddress = try tx.db.run("SELECT count(*) FROM enroll_failure WHERE address = \(address) AND at >= \(since)")
                .first?.decode(Int64.self) ?? 0
            let total = try tx.db.run("SELECT count(*) FROM enroll_failure WHERE at >= \(since)").first?.decode(Int64.self) ?? 0
            return (Int(fromAddress), Int(total))
        }
    }

    public func recordEnrollFailure(address: String, atMillis: UInt64, forgettingBefore cutoff: UInt64) async throws {
        try await write { db in
            try db.run("DELETE FROM enroll_failure WHERE at < \(Int64(cutoff))")
            try db.run("INSERT INTO enroll_failure (at, address) VALUES (\(Int64(atMillis)), \(address))")
        }
    }

    public func enroll(
        codeHash: [UInt8], replica: ReplicaID, deviceName: String, tokenHash: [UInt8],
        expectedRole: Role?, expectedMember: MemberID?, nowMillis: UInt64
    ) async throws -> Enrollment {
        let now = Int64(nowMillis)
        let anotherMember = "This home is enrolled as another member; enroll it with a code for that member, or use another home."
        return try await write { db in
            // FOR UPDATE: two enrollments with one code take turns, and the second finds it used.
            guard let invite = try db.run("""
                SELECT role, name, member FROM invite WHERE code_hash = \(Data(codeHash)) AND used = 0 AND voided = 0 AND expires > \(now)
                AND (issuer_token IS NULL OR issuer_token IN (SELECT token_hash FROM credential WHERE revoked = 0)) FOR UPDATE
                """).first
            else { throw ServerError.invalidCode }
            var (role, name, existing) = try invite.decode((String, String, Data?).self)
            let member: MemberID
            if let existing = existing.flatMap({ try? MemberID(bytes: $0) }) {
                member = existing
                guard let row = try db.run("SELECT name, role FROM member WHERE id = \(Data(member.bytes))").first else {
                    throw ServerError.invalidCode
                }
                (name, role) = try row.decode((String, String).self)
                if let expectedMember, expectedMember != existing { throw ServerError.conflict(anotherMember) }
            } else {
                if expectedMember != nil { throw ServerError.conflict(anotherMember) }
                member = MemberID.random()
                try db.run("INSERT INTO member (id, name, role, created_at) VALUES (\(Data(member.bytes)), \(name), \(role), \(now))")
            }
            if let expectedRole, expectedRole.rawValue != role {
                throw ServerError.conflict("This code enrolls a \(role), but this home was made for a \(expectedRole.rawValue); use another home.")
            }
            guard try db.run("SELECT 1 FROM device WHERE replica = \(Data(replica.bytes))").isEmpty else {
                throw ServerError.conflict("This replica is already enrolled; a copied home must run tandem init anew.")
            }
            let device = RecordID.random()
            try db.run("""
                INSERT INTO device (id, member, replica, name, created_at)
                VALUES (\(Data(device.bytes)), \(Data(member.bytes)), \(Data(replica.bytes)), \(deviceName), \(now))
                """)
            try db.run("""
                INSERT INTO credential (token_hash, member, device, created_at)
                VALUES (\(Data(tokenHash)), \(Data(member.bytes)), \(Data(device.bytes)), \(now))
                """)
            try db.run("UPDATE invite SET used = 1 WHERE code_hash = \(Data(codeHash))")
            return Enrollment(member: member.hex, name: name, role: role, epoch: try PostgresTransaction(db).epoch())
        }
    }

    public func link(
        _ principal: Principal, issuerToken: [UInt8], codeHash: [UInt8], nowMillis: UInt64, expiresMillis: UInt64, maxUnused: Int
    ) async throws {
        try await write { db in
            // FOR UPDATE on the member: a member's link requests take turns, so the count holds.
            guard let name = try db.run("SELECT name FROM member WHERE id = \(Data(principal.member.bytes)) FOR UPDATE").first?.decode(String.self) else {
                throw ServerError.unauthorized
            }
            let unused = try db.run("""
                SELECT count(*) FROM invite WHERE member = \(Data(principal.member.bytes)) AND kind = 'link' AND used = 0 AND voided = 0
                AND expires > \(Int64(nowMillis))
                """).first?.decode(Int64.self) ?? 0
            guard unused < maxUnused else { throw ServerError.tooManyCodes(maxUnused) }
            try Self.insertCode(
                db, hash: codeHash, kind: "link", role: principal.role, name: name, member: principal.member, issuer: issuerToken,
                nowMillis: nowMillis, expiresMillis: expiresMillis)
        }
    }

    static func insertCode(
        _ db: BlockingConnection, hash: [UInt8], kind: String, role: Role, name: String, member: MemberID?, issuer: [UInt8]?,
        nowMillis: UInt64, expiresMillis: UInt64
    ) throws {
        try db.run("""
            INSERT INTO invite (code_hash, id, kind, role, name, member, issuer_token, created_at, expires)
            VALUES (\(Data(hash)), \(Data(RecordID.random().bytes)), \(kind), \(role.rawValue), \(name), \(member.map { Data($0.bytes) }),
                    \(issuer.map { Data($0) }), \(Int64(nowMillis)), \(Int64(expiresMillis)))
            """)
    }

    // MARK: Pushes

    /// Queues the batch for this instance's next group commit and returns once that commit
    /// is durable (or the batch was refused), as `SQLiteServerStorage.push` does.
    public func push(
        _ changes: [Change], from principal: Principal, repush: Bool, nowMillis: UInt64, maxSkewMillis: UInt64, quotaBytes: Int64
    ) async throws -> PushOutcome {
        guard let replica = principal.replica else { throw ServerError.forbidden("Only an enrolled device pushes changes.") }
        return try await mapped {
            try await withCheckedThrowingContinuation { continuation in
                let request = PushRequest(
                    changes: changes, principal: principal, replica: replica, repush: repush, nowMillis: nowMillis,
                    maxSkewMillis: maxSkewMillis, quotaBytes: quotaBytes)
                if groupCommit.enqueue(GroupCommit.Batch(request: request, continuation: continuation)) { scheduleGroupCommit() }
            }
        }
    }

    /// How many group commits this instance's pushes took, and how many batches they held.
    public var groupCommitStatistics: (groups: Int, batches: Int) { groupCommit.statistics }

    /// Commits the batches waiting, in one transaction on the push connection; schedules the
    /// next group when batches arrived meanwhile.
    private func scheduleGroupCommit() {
        pushQueue.async { [self] in
            let group = groupCommit.takeAll()
            guard !group.isEmpty else {
                if groupCommit.finishGroup() { scheduleGroupCommit() }
                return
            }
            let results = commit(group)
            // Only now, after the commit's WAL flush, is anyone acknowledged.
            var accepted = false
            for (batch, result) in zip(group, results) {
                if case .success(let outcome) = result, outcome.accepted > 0 { accepted = true }
                batch.continuation.resume(with: result)
            }
            if accepted { commitSignal.fire() }
            if groupCommit.finishGroup() { scheduleGroupCommit() }
        }
    }

    /// One group's transaction: the push lock, then each batch under its own savepoint (a
    /// refused batch rolls back alone), and a notification to every instance if a channel
    /// advanced (delivered at the commit, not before).
    private func commit(_ group: [GroupCommit.Batch]) -> [Result<PushOutcome, any Error>] {
        var results: [Result<PushOutcome, any Error>] = []
        results.reserveCapacity(group.count)
        do {
            if pushConnection?.isClosed ?? true {
                pushConnection?.close()
                pushConnection = try ConnectionPool.open(location, logger: logger)
            }
            guard let db = pushConnection else { return group.map { _ in .failure(ServerError.unavailable("No connection.")) } }
            try db.transaction(isolation: "READ COMMITTED") { db in
                let store = PostgresTransaction(db)
                try store.beginPush()
                var accepted = false
                for batch in group {
                    // Sent without waiting, as the rules' first reads are: one round trip for them all.
                    db.send("SAVEPOINT batch")
                    do {
                        let outcome = try PushRules.apply(batch.request, in: store)
                        db.send("RELEASE SAVEPOINT batch")
                        if outcome.accepted > 0 { accepted = true }
                        results.append(.success(outcome))
                    } catch let error as PostgresStoreError {
                        // The connection, not the batch: the whole group fails below.
                        if case .unreachable = error { throw error }
                        try db.discardBuffered()
                        try db.execute("ROLLBACK TO SAVEPOINT batch")
                        results.append(.failure(error))
                    } catch {
                        try db.discardBuffered()
                        try db.execute("ROLLBACK TO SAVEPOINT batch")
                        results.append(.failure(error))
                    }
                }
                if accepted { try db.run("SELECT pg_notify(\(Self.commitChannel), '')") }
            }
        } catch {
            // The commit failed: nothing of the group is stored, none is acknowledged.
            return group.map { _ in .failure(error) }
        }
        return results
    }

    // MARK: The commit feed

    public func head() async throws -> Int64 {
        try await snapshot { try $0.feedHead() }
    }

    public func commits(after position: Int64) async throws -> Commits {
        try await snapshot { tx in
            let head = try tx.feedHead()
            guard head >= position else { return Commits(head: head, channels: [:], reset: true) }
            guard head > position else { return Commits(head: head, channels: [:]) }
            var channels: [MemberID: Int64] = [:]
            for row in try tx.db.run("SELECT channel, seq FROM channel_head WHERE feed > \(position)") {
                let (channel, seq) = try row.decode((Data, Int64).self)
                guard let channel = try? MemberID(bytes: channel) else { continue }
                channels[channel] = seq
            }
            return Commits(head: head, channels: channels)
        }
    }

    /// Returns when the feed's head moved past `position`: woken by this instance's commits
    /// and by every instance's notifications, and looking at the head every `poll` besides.
    public func awaitCommit(after position: Int64, timeout: Duration) async throws {
        try await commitSignal.awaitHead(after: position, timeout: timeout, poll: poll) { try await head() }
    }


    /// The revocations any instance notified (and the listener's reconnections, after which
    /// notifications sent meanwhile may have been missed).
    public var revocationsHeard: Int { revocations.count }

    /// Returns at once if a revocation was heard of since `heard`, else when any instance
    /// revokes something (its notification), or after `timeout`.
    public func awaitRevocation(after heard: Int, timeout: Duration) async {
        await revocations.wait(after: heard, upTo: timeout)
    }

    public func membersRevoked(since heard: Int) -> Set<MemberID>? { revocations.members(since: heard) }

    /// The member a `revoke:HEX` notification names.
    static func revokedMember(_ payload: String) -> MemberID? {
        guard payload.hasPrefix(revocationPayload + ":") else { return nil }
        return try? MemberID(hex: String(payload.dropFirst(revocationPayload.count + 1)))
    }

    /// Tells every instance, at this transaction's commit, that `member`'s credentials were
    /// revoked: their live connections of that member check their tokens at once instead of
    /// at their next look (and no other connection does).
    static func notifyRevocation(of member: MemberID, _ db: BlockingConnection) throws {
        try db.run("SELECT pg_notify(\(commitChannel), \(revocationPayload + ":" + member.hex))")
    }
}

extension PostgresTransaction {
    /// The commit feed's position.
    func feedHead() throws -> Int64 {
        try db.run("SELECT value FROM sequence").first?.decode(Int64.self) ?? 0
    }
}

/// Whether an instance's listening connection is up (tests wait for it).
final class Listening: @unchecked Sendable {
    // @unchecked: `value` is read and written under `lock` only.
    private let lock = NSLock()
    private var value = false

    func set(_ new: Bool) { lock.withLock { value = new } }
    var isOn: Bool { lock.withLock { value } }
}
